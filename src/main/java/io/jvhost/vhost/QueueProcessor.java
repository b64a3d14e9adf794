package io.jvhost.vhost;

import io.jvhost.runtime.CounterRegistry;
import io.jvhost.runtime.LoopClock;
import io.jvhost.runtime.Pollable;
import io.jvhost.runtime.Reactor;
import io.jvhost.memory.GuestMemory;
import io.jvhost.memory.MemoryRegion;
import io.jvhost.sys.EventFd;
import io.jvhost.virtio.ChainError;
import io.jvhost.virtio.Notifier;
import io.jvhost.virtio.VirtQueue;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.concurrent.CompletableFuture;

/**
 * Runs one started virtqueue on a reactor: fetches chains, drives the device logic, publishes
 * completions in batches, and manages kick suppression. Subclasses supply the per-chain logic
 * and the block channel polling. Lives on the reactor thread from {@link #start()} on.
 *
 * <p>Stopping (GET_VRING_BASE, memory-table change, disconnect) stops fetching new chains and
 * completes the stop future once every in-flight request has completed and been published.
 *
 * <p><b>Faults.</b> When the reactor reports that this queue's processing threw (an access to
 * guest memory the front-end truncated, or a bug), the queue is failed ({@link #fail}): it is
 * marked broken with {@link ChainError#GUEST_MEMORY_FAULT} or {@link ChainError#INTERNAL_ERROR},
 * logged once, its kick fd leaves epoll, its error eventfd is signalled and no chain is fetched
 * again. If what vanished is known and holds no part of the rings, requests in flight are
 * still answered with an error where their status lies in surviving memory; everything else
 * is dropped (counted, never written: its memory is gone), and after a fault in the rings'
 * own memory (or of unknown cause) the ring is not touched at all. Requests in the block layer
 * are only awaited for their callbacks, so a stop finishes as soon as the block layer lets go
 * of them (at most {@link #FAULT_DRAIN_GRACE_NANOS}), and an idle faulted queue lets the
 * reactor sleep.
 *
 * <p><b>Changes in place.</b> A new call fd ({@link #swapNotifier}) and a new guest memory
 * snapshot ({@link #swapMemory}) are installed by reactor commands between two polls, without
 * stopping the queue: nothing in flight is lost, nothing is drained. When the new snapshot
 * lacks a region of the old one, the caller learns through a future when every chain popped
 * before the swap has completed; only then is the region unmapped.
 *
 * <p>Code against {@link VirtQueue} only: nothing here assumes a split ring.
 */
public abstract class QueueProcessor implements Pollable, VirtQueue.ChainHandler {
    private static final Logger log = LoggerFactory.getLogger(QueueProcessor.class);
    /** Chains fetched per poll before completions are published (experiment knob {@code jvhost.queue.batch}). */
    protected static final int BATCH = Integer.getInteger("jvhost.queue.batch", 64);
    /**
     * After a fault, how long a stop waits for the block layer to hand back requests before it
     * gives up on them (their callbacks then find the processor gone; nothing is unmapped
     * before the processor has left the reactor).
     */
    static final long FAULT_DRAIN_GRACE_NANOS = 2_000_000_000L;

    protected final VirtQueue queue;
    protected final Reactor reactor;
    protected final String owner;
    /** Per-queue buffers of a processor (headers, responses); closed when the processor leaves the reactor. */
    protected final Arena arena = Arena.ofShared();
    /** Completed once the chains popped before a memory swap that removed a region have completed. */
    private CompletableFuture<Void> swapGrace;
    /** The polling thread's loop clock (the one its channels' statistics read), found at the first poll that took requests. */
    private LoopClock clock;

    /** The controller's name: the {@code ctrlr} label of this queue's published counters. */
    private final String ctrlr;
    /** This queue's counters while published in the registry (reactor thread). */
    private CounterRegistry.Entry published;
    private final int kickFd;
    private int errFd = -1;
    private MemorySegment errScratch;
    private boolean kickFdRegistered;
    private CompletableFuture<Integer> stopFuture;
    private long faultedAt;
    private long loggedErrors;

    protected QueueProcessor(VirtQueue queue, Reactor reactor, int kickFd, String owner) {
        this(queue, reactor, kickFd, owner, owner);
    }

    /** @param ctrlr the controller's name, which labels this queue's counters in the registry */
    protected QueueProcessor(VirtQueue queue, Reactor reactor, int kickFd, String owner, String ctrlr) {
        this.queue = queue;
        this.reactor = reactor;
        this.kickFd = kickFd;
        this.owner = owner;
        this.ctrlr = ctrlr;
    }

    public VirtQueue queue() {
        return queue;
    }

    /** Buffers a chain of a queue of {@code size} may be split into (descriptors crossing region boundaries). */
    static int maxBuffers(int size) {
        return Math.max(size, 256) + 64;
    }

    /** The ring's error eventfd (SET_VRING_ERR), signalled once when the queue faults; before {@link #start()}. */
    void errorFd(int fd) {
        errFd = fd;
        if (fd >= 0 && errScratch == null) errScratch = Arena.ofAuto().allocate(8, 8);
    }

    /**
     * Reactor thread: installs a new call notifier (SET_VRING_CALL on a running ring). A call
     * held back by coalescing goes to the new one; one extra call is sent when the driver may
     * have missed one meanwhile (a spurious interrupt is harmless, a missing one hangs it).
     */
    void swapNotifier(Notifier next) {
        queue.interrupts().notifier(next);
        if (!queue.isFaulted() && queue.anyUsed()) queue.interrupts().signal();
    }

    /** Reactor thread: a new error eventfd (SET_VRING_ERR on a running ring). */
    void swapErrorFd(int fd) {
        errorFd(fd);
    }

    /**
     * Reactor thread: walks chains through {@code next} from now on (ADD_MEM_REG, REM_MEM_REG on
     * a running ring whose own structures stay mapped). With {@code removing}, {@code next} lacks
     * a region of the old snapshot: parked chains are handed back (they may lie in it), and the
     * returned future completes once every chain popped before the swap has completed (at once
     * when none is in flight), or when the processor leaves the reactor.
     */
    CompletableFuture<Void> swapMemory(GuestMemory next, boolean removing) {
        if (removing && !queue.isFaulted() && parkedChains() > 0) releaseParked();
        queue.swapMemory(next);
        CompletableFuture<Void> done = new CompletableFuture<>();
        if (!removing || queue.chainsBeforeSwap() == 0) {
            done.complete(null);
        } else {
            if (swapGrace != null) {
                // An earlier removal still waits: it completes with this one (its chains are among these).
                CompletableFuture<Void> earlier = swapGrace;
                done.whenComplete((v, t) -> earlier.complete(null));
            }
            swapGrace = done;
        }
        return done;
    }

    private void checkSwapGrace() {
        if (queue.chainsBeforeSwap() == 0) {
            CompletableFuture<Void> g = swapGrace;
            swapGrace = null;
            g.complete(null);
        }
    }

    /** Reactor thread: attach to the reactor. */
    public void start() {
        onStart(); // first: if it throws, nothing is attached yet
        // Kicks are counted when the sleeping reactor drains them (while polling, kicks are suppressed).
        if (kickFd >= 0) {
            reactor.addWakeFd(kickFd, n -> queue.stats().addKicks(n));
            kickFdRegistered = true;
        }
        reactor.add(this);
        published = CounterRegistry.global().publish(queue.stats().counters(), "ctrlr", ctrlr, "queue", Integer.toString(queue.index()));
        try {
            queue.disableNotifications();
        } catch (Throwable t) {
            // The ring's memory is gone already: the queue starts failed, and stops at once.
            fail(t);
        }
    }

    /**
     * Reactor thread: stop fetching; {@code done} completes with the last available index once
     * nothing is in flight (at once, or once the block layer has let go, for a faulted queue).
     */
    public void stop(CompletableFuture<Integer> done) {
        stopFuture = done;
        try {
            finishStopIfDrained();
        } catch (Throwable t) {
            fail(t); // publishing into a vanished ring: fail, which finishes the stop
        }
    }

    private boolean drained() {
        if (queue.isFaulted()) {
            return pendingIo() == 0 || System.nanoTime() - faultedAt > FAULT_DRAIN_GRACE_NANOS;
        }
        return queue.inFlight() - parkedChains() == 0 && pendingIo() == 0;
    }

    private void finishStopIfDrained() {
        if (stopFuture == null || !drained()) return;
        if (!queue.isFaulted()) {
            queue.flush();
            queue.interrupts().coalescing(0, 100); // sends a call still held back
            releaseParked();
        } else {
            if (pendingIo() != 0) {
                log.error("{} queue {}: {} request(s) still in the block layer {} ms after the fault; stopping without them",
                        owner, queue.index(), pendingIo(), FAULT_DRAIN_GRACE_NANOS / 1_000_000);
            }
            // Whatever is still in flight was never answered (its answer faulted, or its memory is gone).
            queue.stats().addDroppedRequests(queue.inFlight());
            try {
                queue.flush();
                queue.interrupts().coalescing(0, 100);
            } catch (Throwable t) {
                queue.markFaulted(queue.brokenReason(), false);
            }
        }
        detach();
        CompletableFuture<Integer> f = stopFuture;
        stopFuture = null;
        f.complete(queue.state());
    }

    /** Leaves the reactor: no more polls, no more wake-ups from the kick fd; releases resources. */
    private void detach() {
        if (kickFdRegistered) {
            reactor.removeWakeFd(kickFd);
            kickFdRegistered = false;
        }
        reactor.remove(this);
        CounterRegistry.global().withdraw(published);
        published = null;
        try {
            onStopped();
        } catch (RuntimeException e) {
            log.warn("{} queue {}: releasing resources: {}", owner, queue.index(), e.toString());
        }
        arena.close();
        if (swapGrace != null) {
            // Nothing of this queue touches guest memory any more.
            swapGrace.complete(null);
            swapGrace = null;
        }
    }

    /**
     * Reactor thread: detaches at once whatever is in flight (the session gave up waiting for a
     * stop). Requests still in the block layer are abandoned; the queue touches nothing again.
     */
    void forceStop() {
        queue.markFaulted(ChainError.INTERNAL_ERROR, false);
        if (stopFuture != null) {
            CompletableFuture<Integer> f = stopFuture;
            stopFuture = null;
            f.complete(queue.state());
        }
        detach();
    }

    /**
     * Chains deliberately held without a deadline (event-queue buffers waiting for an event):
     * they neither keep the reactor awake nor block a stop.
     */
    protected int parkedChains() {
        return 0;
    }

    /** On stop: return parked chains to the driver (they must not stay consumed across a stop). */
    protected void releaseParked() {
    }

    /** Reactor thread, at {@link #start()}: e.g. register the block channels' wake fds. */
    protected void onStart() {
    }

    /** Requests handed to a block channel and not completed yet (or waiting on a retry list); none by default. */
    protected int pendingIo() {
        return 0;
    }

    /**
     * True when every request counted by {@link #pendingIo()} is in a block channel that will
     * signal a wake fd registered with the reactor when it completes (nothing waits on a retry
     * list and no channel needs polling to make progress): the reactor may then sleep.
     */
    protected boolean ioWakesReactor() {
        return false;
    }

    /**
     * The expected wait of the channels holding this queue's {@link #pendingIo()} requests for
     * their next completion (ns; {@link io.jvhost.bdev.BlockChannel#expectedWaitNanos()}), 0 when
     * unknown. Only asked while every pending request is in a channel that wakes the reactor.
     */
    protected long ioWaitEstimateNanos() {
        return 0;
    }

    /** Polls the block channel(s) for completions; nothing by default. */
    protected int pollIo() {
        return 0;
    }

    /** Releases per-queue resources after the final stop (reactor thread), before {@link #arena} closes. */
    protected void onStopped() {
    }

    /** Answers a chain too malformed for the device to say anything: counted, length 0. */
    protected final void reject(int head) {
        queue.stats().countRequestError();
        queue.complete(head, 0);
    }

    @Override
    public final int poll() {
        int work = pollIo();
        if (stopFuture == null) {
            int n = queue.poll(this, BATCH);
            if (n > 0) {
                // One clock read per batch: the bdev statistics time the batch's requests from
                // the loop's last tick (before this poll) to their completions from here on.
                LoopClock c = clock;
                if (c == null) clock = c = LoopClock.current();
                c.tick();
                work += n + pollIo();
            }
            if (queue.isBroken() || queue.lastError() != ChainError.NONE) reportErrors();
        }
        // Before the flush publishes answers: whoever sees an answer sees the count without it.
        queue.stats().inFlight(queue.inFlight());
        queue.flush();
        if (queue.interrupts().deferred()) queue.interrupts().flushDeferred();
        if (swapGrace != null) checkSwapGrace();
        if (stopFuture != null) finishStopIfDrained();
        return work;
    }

    private void reportErrors() {
        if (queue.isFaulted()) return; // logged by fail()
        long errs = queue.stats().chainErrors();
        if (errs != loggedErrors) {
            // Log the first error and then at powers of two, so a hostile guest cannot flood the log.
            if (Long.bitCount(errs) == 1 || loggedErrors == 0) {
                log.warn("{} queue {}: {} ({} malformed chain(s) so far){}", owner, queue.index(), queue.lastError().reason,
                        errs, queue.isBroken() ? "; queue stopped until the front-end resets it" : "");
            }
            loggedErrors = errs;
        }
    }

    @Override
    public boolean prepareSleep() {
        if (queue.isFaulted()) {
            return stopFuture == null && (pendingIo() == 0 || ioWakesReactor() || System.nanoTime() - faultedAt > FAULT_DRAIN_GRACE_NANOS);
        }
        if (mustPoll(pendingIo())) return false;
        return !queue.enableNotifications();
    }

    /**
     * Whether this (unfaulted) queue needs polling however long the reactor would wait, with
     * {@code io} requests in the block layer: no kick fd to wake us, a stop or a held-back call
     * in progress, requests in a channel that does not wake the reactor, or chains in flight
     * that are not in the block layer (being answered). Shared by {@link #prepareSleep()} and
     * {@link #ioWaitNanos()}.
     */
    private boolean mustPoll(int io) {
        if (kickFd < 0 || stopFuture != null || queue.interrupts().deferred()) return true;
        if (io > 0 && !ioWakesReactor()) return true;
        return queue.inFlight() - parkedChains() - io > 0;
    }

    /**
     * The reactor's hybrid wait (idle loops; no side effects): the same conditions as
     * {@link #prepareSleep()} without touching the ring, then the channels' estimate.
     */
    @Override
    public long ioWaitNanos() {
        if (queue.isFaulted()) return NO_IO_WAIT; // prepareSleep decides; a faulted queue fetches nothing
        int io = pendingIo();
        if (mustPoll(io)) return MUST_POLL;
        return io == 0 ? NO_IO_WAIT : ioWaitEstimateNanos();
    }

    @Override
    public void afterWake() {
        // A faulted queue fetches nothing more: its notification fields stay as they are (its
        // ring may be in memory that vanished since the fault; found by QueueRequestFuzzTest).
        if (queue.isFaulted()) return;
        queue.disableNotifications();
    }

    @Override
    public void onError(Throwable error) {
        fail(error);
    }

    @Override
    public boolean onMemoryFault(Throwable fault) {
        if (queue.isFaulted()) {
            // A second fault: writing answers into memory we believed intact faulted too.
            if (queue.ringUsable()) giveUpRing();
            return true;
        }
        MemoryRegion gone = queue.memory().vanishedRegion();
        if (gone == null) return false;
        fail(ChainError.GUEST_MEMORY_FAULT, "region " + gone + " is gone");
        return true;
    }

    /** Fails the queue after {@code t} escaped its processing (reactor thread; idempotent). */
    final void fail(Throwable t) {
        if (queue.isFaulted()) {
            if (queue.ringUsable()) giveUpRing();
            return;
        }
        MemoryRegion gone = t instanceof InternalError ? queue.memory().vanishedRegion() : null;
        if (gone != null) {
            fail(ChainError.GUEST_MEMORY_FAULT, "region " + gone + " is gone");
        } else if (t instanceof InternalError) {
            fail(ChainError.GUEST_MEMORY_FAULT, t.getMessage());
        } else {
            log.error("{} queue {}: unexpected error", owner, queue.index(), t);
            fail(ChainError.INTERNAL_ERROR, t.toString());
        }
    }

    /** Segments of the regions found truncated at the fault (identity = a region's whole mapping). */
    private MemorySegment[] vanished = new MemorySegment[0];

    private void fail(ChainError why, String detail) {
        if (queue.isFaulted()) return;
        // The ring stays usable only when we know what vanished and the rings are not in it:
        // then requests in flight whose status byte survived get an I/O error.
        java.util.List<MemorySegment> v = new java.util.ArrayList<>();
        boolean ringUsable = why == ChainError.GUEST_MEMORY_FAULT;
        for (MemoryRegion r : queue.memory().regions()) {
            if (!r.intact()) {
                v.add(r.segment());
                if (queue.ringIn(r.segment())) ringUsable = false;
            }
        }
        if (v.isEmpty()) ringUsable = false;
        vanished = v.toArray(new MemorySegment[0]);
        queue.markFaulted(why, ringUsable);
        faultedAt = System.nanoTime();
        log.warn("{} queue {}: {} ({}); queue stopped until the front-end resets the ring{}", owner, queue.index(), why.reason, detail,
                ringUsable ? "; requests in flight are failed where their status survived" : "; requests in flight are dropped");
        // A faulted queue needs no kicks: it will not read the ring again.
        if (kickFdRegistered) {
            reactor.removeWakeFd(kickFd);
            kickFdRegistered = false;
        }
        if (errFd >= 0) EventFd.signal(errFd, errScratch); // vhost-user SET_VRING_ERR: tell the front-end
        try {
            onFaulted();
            queue.flush();
        } catch (Throwable t) {
            giveUpRing(); // memory we believed intact faulted as well
        }
        if (stopFuture != null) finishStopIfDrained();
    }

    private void giveUpRing() {
        queue.markFaulted(queue.brokenReason(), false);
        log.warn("{} queue {}: more guest memory faulted; the ring is no longer touched", owner, queue.index());
        if (stopFuture != null) finishStopIfDrained();
    }

    /**
     * May an answer be written at {@code segment} (a buffer's region mapping, as the chain gave
     * it)? False once the ring is gone or when that region vanished. Cold path (after a fault).
     */
    protected final boolean answerable(MemorySegment segment) {
        if (!queue.ringUsable() || segment == null) return false;
        for (MemorySegment g : vanished) if (g == segment) return false;
        return true;
    }

    /** Forgets a request that cannot be answered (after a fault); counted as dropped. */
    protected final void drop(int head) {
        queue.stats().addDroppedRequests(1);
        queue.complete(head, 0);
    }

    /**
     * The queue just faulted: answer what can be answered ({@link #answerable}) with an error,
     * {@link #drop} the rest that is not in the block layer, forget state that refers to guest
     * memory (reactor thread). May fault again: the ring is then given up.
     */
    protected void onFaulted() {
    }
}
