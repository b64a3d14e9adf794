package io.jvhost.target;

import io.jvhost.runtime.Pollable;
import io.jvhost.runtime.Reactor;
import io.jvhost.virtio.SplitVirtQueue;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.concurrent.CompletableFuture;

/**
 * Runs one started virtqueue on a reactor: fetches chains, drives the device logic, publishes
 * completions in batches, and manages kick suppression. Subclasses supply the per-chain logic
 * and the block channel polling. Lives on the reactor thread from {@link #start()} on.
 *
 * <p>Stopping (GET_VRING_BASE, memory-table change, disconnect) stops fetching new chains and
 * completes the stop future once every in-flight request has completed and been published.
 */
public abstract class QueueProcessor implements Pollable, SplitVirtQueue.ChainHandler {
    private static final Logger log = LoggerFactory.getLogger(QueueProcessor.class);
    /** Chains fetched per poll before completions are published. */
    protected static final int BATCH = 64;

    protected final SplitVirtQueue queue;
    protected final Reactor reactor;
    protected final String owner;
    private final int kickFd;
    private CompletableFuture<Integer> stopFuture;
    private long loggedErrors;

    protected QueueProcessor(SplitVirtQueue queue, Reactor reactor, int kickFd, String owner) {
        this.queue = queue;
        this.reactor = reactor;
        this.kickFd = kickFd;
        this.owner = owner;
    }

    public SplitVirtQueue queue() {
        return queue;
    }

    /** Reactor thread: attach to the reactor. */
    public void start() {
        // Kicks are counted when the sleeping reactor drains them (while polling, kicks are suppressed).
        if (kickFd >= 0) reactor.addWakeFd(kickFd, n -> queue.stats.kicks += n);
        queue.disableNotifications();
        reactor.add(this);
    }

    /**
     * Reactor thread: stop fetching; {@code done} completes with the last available index once
     * nothing is in flight.
     */
    public void stop(CompletableFuture<Integer> done) {
        stopFuture = done;
        finishStopIfDrained();
    }

    private void finishStopIfDrained() {
        if (stopFuture != null && queue.inFlight() - parkedChains() == 0 && pendingIo() == 0) {
            queue.flush();
            queue.coalescing(0, 100); // sends a call still held back
            releaseParked();
            if (kickFd >= 0) reactor.removeWakeFd(kickFd);
            reactor.remove(this);
            onStopped();
            CompletableFuture<Integer> f = stopFuture;
            stopFuture = null;
            f.complete(queue.lastAvail());
        }
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

    /** Requests handed to a block channel and not completed yet. */
    protected abstract int pendingIo();

    /** Polls the block channel(s) for completions. */
    protected abstract int pollIo();

    /** Releases per-queue resources after the final stop (reactor thread). */
    protected abstract void onStopped();

    @Override
    public final int poll() {
        int work = pollIo();
        if (stopFuture == null) {
            int n = queue.poll(this, BATCH);
            if (n > 0) work += n + pollIo();
            if (queue.isBroken() || queue.lastError() != io.jvhost.virtio.ChainError.NONE) reportErrors();
        }
        queue.flush();
        if (queue.signalDeferred()) queue.flushDeferredSignal();
        if (stopFuture != null) finishStopIfDrained();
        return work;
    }

    private void reportErrors() {
        long errs = queue.stats.chainErrors;
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
        if (kickFd < 0 || queue.inFlight() - parkedChains() > 0 || pendingIo() > 0 || stopFuture != null || queue.signalDeferred()) return false;
        return !queue.enableNotifications();
    }

    @Override
    public void afterWake() {
        queue.disableNotifications();
    }
}
