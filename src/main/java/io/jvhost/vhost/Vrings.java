package io.jvhost.vhost;

import io.jvhost.memory.GuestMemory;
import io.jvhost.memory.MemoryRegion;
import io.jvhost.runtime.Reactor;
import io.jvhost.sys.Fd;
import io.jvhost.virtio.HooksPair;
import io.jvhost.virtio.InflightSplitQueue;
import io.jvhost.virtio.Notifier;
import io.jvhost.virtio.PackedVirtQueue;
import io.jvhost.virtio.QueueHooks;
import io.jvhost.virtio.RingDirtyLogger;
import io.jvhost.virtio.SplitVirtQueue;
import io.jvhost.virtio.VirtQueue;
import io.jvhost.virtio.VirtioFeatures;
import io.jvhost.vhostuser.VringAddr;
import org.slf4j.Logger;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * The rings of one session and their lifecycle: per ring what the front-end set (size,
 * addresses, base, kick/call/error fds, enabled) and the {@link QueueProcessor} that runs it on
 * the device's reactor. {@link Session} decides what each vhost-user request means; this class
 * builds queues from that state, starts, stops and changes them. Called from the session's
 * control thread only ({@link #runningQueues()} from any thread).
 *
 * <p>How a running ring takes a change:
 * <ul>
 *   <li>call fd (SET_VRING_CALL, which QEMU re-sends on every interrupt mask/unmask) and error fd:
 *       swapped in place by a reactor command; the old fd is closed once the reactor has
 *       acknowledged;</li>
 *   <li>guest memory with a region added (ADD_MEM_REG): the new translation snapshot is swapped
 *       in place by a reactor command (RCU-style: the reactor swaps between two polls);</li>
 *   <li>a region removed (REM_MEM_REG): rings whose own structures lie in it are stopped (they
 *       cannot run without it); the others get the new snapshot in place, and the region is
 *       unmapped only once every chain they popped before the swap has completed (a grace
 *       period; parked event buffers are handed back first). A grace period that does not end
 *       in {@value Session#STOP_TIMEOUT_SECONDS} s falls back to stopping the ring;</li>
 *   <li>size, addresses, base, kick fd, enable, features, a whole new memory table (every
 *       region remapped, so the rings' own segments change): stopped (in-flight requests
 *       drained), changed, started again at the same available index. No request is lost.</li>
 * </ul>
 */
final class Vrings {
    /** SET_VRING_ADDR flag: log writes to the used ring at log_guest_addr (vhost-user.rst "Ring address description"). */
    static final int VHOST_VRING_F_LOG = 1;
    /** One ring's configuration as the front-end set it. */
    static final class Vring {
        final int index;
        int num;
        boolean addrSet;
        long descUva, usedUva, availUva;
        /** SET_VRING_ADDR's flags (VHOST_VRING_F_LOG) and used-ring log address, for dirty logging. */
        int addrFlags;
        long logGuestAddr;
        int base;
        boolean started;
        int kickFd = -1;
        int callFd = -1;
        int errFd = -1;
        boolean enabled;
        QueueProcessor running;
        String lastStartError;
        /** The "packed rings are not tracked" warning was logged for this ring. */
        boolean inflightPackedWarned;

        Vring(int index) {
            this.index = index;
        }

        VringAddr addr() {
            return addrSet ? new VringAddr(index, addrFlags, descUva, usedUva, availUva, logGuestAddr) : null;
        }
    }

    private final Logger log;
    private final String name;
    private final Controller controller;
    /** The session these rings belong to: the holder of the controller's ring lease while any runs. */
    private final Session session;
    private final VhostUserDevice device;
    private final Vring[] rings;
    /** Inflight tracking and dirty log the rings attach at start (null: none); set while every ring is stopped. */
    private InflightArea inflight;
    private io.jvhost.memory.DirtyLog dirtyLog;
    /** Processors stopped and started (for tests and logs; control thread writes). */
    private volatile long stops, starts, inPlaceSwaps, stopsRequested;

    Vrings(Logger log, String name, Controller controller, Session session, VhostUserDevice device) {
        this.log = log;
        this.name = name;
        this.controller = controller;
        this.session = session;
        this.device = device;
        rings = new Vring[device.maxQueues()];
        for (int i = 0; i < rings.length; i++) rings[i] = new Vring(i);
    }

    int count() {
        return rings.length;
    }

    Vring ring(int i) {
        return rings[i];
    }

    long stops() {
        return stops;
    }

    long starts() {
        return starts;
    }

    long inPlaceSwaps() {
        return inPlaceSwaps;
    }

    /** Ring stops handed to the reactor so far (tests order their steps after one). */
    long stopsRequested() {
        return stopsRequested;
    }

    /** Installs the inflight area rings track from their next start; returns the previous one. Rings stopped first. */
    InflightArea inflight(InflightArea area) {
        InflightArea old = inflight;
        inflight = area;
        return old;
    }

    /**
     * Debug switch for tests only: when this system property is true (read at each ring start), rings
     * do not mark the dirty log even while VHOST_F_LOG_ALL is on, so a migration test can show that
     * it notices the lost pages (JvhostMigrationQemuTest). Never set it in production.
     */
    static final String NO_DIRTY_LOG = "jvhost.debug.noDirtyLog";

    /** Installs the dirty log rings write while VHOST_F_LOG_ALL is on, from their next start. Rings stopped first. */
    void dirtyLog(io.jvhost.memory.DirtyLog log) {
        dirtyLog = log;
    }

    /** Queues currently being processed (for statistics); any thread. */
    synchronized List<VirtQueue> runningQueues() {
        List<VirtQueue> l = new ArrayList<>();
        for (Vring r : rings) if (r.running != null) l.add(r.running.queue());
        return l;
    }

    private void running(Vring r, QueueProcessor p) {
        boolean none;
        synchronized (this) {
            r.running = p;
            none = p == null && !anyRunning();
        }
        // Another front-end of the controller may start its rings now (Controller: the ring lease).
        if (none) controller.releaseRings(session);
    }

    /** Is a ring whose structures lie in {@code region} still attached to a reactor (one that did not answer)? */
    boolean anyRunningIn(MemorySegment region) {
        for (Vring r : rings) if (r.running != null && r.running.queue().ringIn(region)) return true;
        return false;
    }

    boolean anyRunning() {
        for (Vring r : rings) if (r.running != null) return true;
        return false;
    }

    /** Applies interrupt coalescing to the running queues, each on its own reactor (they differ when spread). */
    void applyCoalescing(long delayBaseUs, long iopsThreshold) {
        for (VirtQueue q : runningQueues()) {
            try {
                device.reactor(q.index()).runAndWait(() -> q.interrupts().coalescing(delayBaseUs, iopsThreshold),
                        Session.STOP_TIMEOUT_SECONDS);
            } catch (Exception e) {
                log.warn("{}: applying coalescing to ring {}: {}", name, q.index(), e.toString());
            }
        }
    }

    void stopAll() {
        for (Vring r : rings) stop(r);
    }

    void reconcileAll(long features, GuestMemory memory) {
        for (int i = 0; i < rings.length; i++) reconcile(i, features, memory);
    }

    // ---- in-place changes ----

    /**
     * Installs {@code fd} as ring {@code r}'s call fd (SET_VRING_CALL; -1: none): on a running
     * ring by a reactor command, without stopping it. Takes ownership of {@code fd}.
     */
    void setCallFd(Vring r, int fd) {
        QueueProcessor p = r.running;
        if (p != null) {
            Notifier n = Notifier.eventFd(fd);
            if (!inPlace(r, () -> p.swapNotifier(n), "call fd")) stop(r);
        }
        Fd.closeQuietly(r.callFd); // the reactor no longer writes it
        r.callFd = fd;
    }

    /** Installs {@code fd} as ring {@code r}'s error fd (SET_VRING_ERR) in place. Takes ownership of {@code fd}. */
    void setErrFd(Vring r, int fd) {
        QueueProcessor p = r.running;
        if (p != null && !inPlace(r, () -> p.swapErrorFd(fd), "error fd")) stop(r);
        Fd.closeQuietly(r.errFd);
        r.errFd = fd;
    }

    private boolean inPlace(Vring r, Runnable command, String what) {
        try {
            device.reactor(r.index).runAndWait(command, Session.STOP_TIMEOUT_SECONDS);
            inPlaceSwaps++;
            return true;
        } catch (Exception e) {
            log.warn("{}: ring {}: new {} not taken in place ({}); restarting the ring", name, r.index, what,
                    e.getCause() != null ? e.getCause().toString() : e.toString());
            return false;
        }
    }

    /**
     * Makes the running rings walk chains through {@code next}. {@code removed}: the mapping of a
     * region {@code next} no longer has (null when regions were only added). Returns once no
     * running ring can touch {@code removed} any more: the caller may then unmap it.
     */
    void swapMemory(GuestMemory next, MemorySegment removed) {
        List<Vring> waiting = new ArrayList<>();
        List<CompletableFuture<Void>> graces = new ArrayList<>();
        for (Vring r : rings) {
            QueueProcessor p = r.running;
            if (p == null) continue;
            if (removed != null && p.queue().ringIn(removed)) {
                log.warn("{}: ring {} lies in the guest memory region being removed; stopping it", name, r.index);
                stop(r);
                continue;
            }
            try {
                CompletableFuture<Void> g = device.reactor(r.index).call(() -> p.swapMemory(next, removed != null))
                        .get(Session.STOP_TIMEOUT_SECONDS, TimeUnit.SECONDS);
                inPlaceSwaps++;
                waiting.add(r);
                graces.add(g);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                stop(r);
            } catch (ExecutionException | TimeoutException e) {
                log.warn("{}: ring {}: new memory not taken in place ({}); restarting the ring", name, r.index, e.toString());
                stop(r);
            }
        }
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(Session.STOP_TIMEOUT_SECONDS);
        for (int i = 0; i < graces.size(); i++) {
            Vring r = waiting.get(i);
            try {
                graces.get(i).get(Math.max(0, deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                stop(r);
            } catch (ExecutionException | TimeoutException e) {
                log.warn("{}: ring {}: requests popped before the memory change still in flight after {} s; stopping the ring",
                        name, r.index, Session.STOP_TIMEOUT_SECONDS);
                stop(r);
            }
        }
    }

    // ---- stop / start ----

    /**
     * Stops {@code r}'s processor if it runs, draining in-flight requests; records its avail
     * index. A faulted queue (guest memory gone) stops at once. When the stop does not finish
     * in time, the processor is detached from the reactor by force (so the mappings can still be
     * released) and an {@link IllegalStateException} says so; a dead reactor is not waited for.
     */
    void stop(Vring r) {
        QueueProcessor p = r.running;
        if (p == null) return;
        Reactor reactor = device.reactor(p.queue().index());
        CompletableFuture<Integer> done = new CompletableFuture<>();
        // The command itself can fail (a fault while publishing into a vanished ring): the
        // processor then fails the queue, and that completes the stop too. Only a stopped
        // reactor never completes it: give up at once then.
        reactor.call(() -> {
            p.stop(done);
            return null;
        }).whenComplete((v, t) -> {
            if (t != null && reactor.isStopped()) done.completeExceptionally(t);
        });
        stopsRequested++;
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(Session.STOP_TIMEOUT_SECONDS);
        while (true) {
            try {
                r.base = done.get(1, TimeUnit.SECONDS);
                break;
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                abandon(r, p, "interrupted while stopping");
                return;
            } catch (ExecutionException e) {
                abandon(r, p, "its reactor is gone (" + e.getCause() + ")");
                return;
            } catch (TimeoutException e) {
                // A reactor that died while the queue drained will never finish the stop.
                if (reactor.isStopped()) {
                    abandon(r, p, "its reactor stopped" + (reactor.isDead() ? " (dead)" : ""));
                    return;
                }
                if (System.nanoTime() - deadline > 0) {
                    forceStop(r, p);
                    throw new IllegalStateException(name + ": ring " + r.index + " did not stop within " + Session.STOP_TIMEOUT_SECONDS
                            + " s; detached it with requests in flight");
                }
            }
        }
        running(r, null);
        stops++;
        log.debug("{}: ring {} stopped at avail index {}", name, r.index, r.base);
    }

    /** The reactor is stopped or dead: nothing touches the queue any more; forget it. */
    private void abandon(Vring r, QueueProcessor p, String why) {
        log.error("{}: ring {} could not be stopped cleanly: {}", name, r.index, why);
        if (device.reactor(p.queue().index()).isTerminated()) r.base = p.queue().state(); // the reactor thread has ended
        running(r, null);
        stops++;
    }

    /** A stop timed out: detach the processor on its reactor so nothing touches guest memory again. */
    private void forceStop(Vring r, QueueProcessor p) {
        try {
            device.reactor(p.queue().index()).runAndWait(p::forceStop, Session.STOP_TIMEOUT_SECONDS);
        } catch (Exception e) {
            // The reactor does not answer: it may still touch the queue, so its memory stays mapped.
            log.error("{}: ring {} did not stop and its reactor does not answer ({}); its guest memory stays mapped", name,
                    r.index, e.toString());
            return;
        }
        r.base = p.queue().state();
        running(r, null);
        stops++;
    }

    /** Starts ring {@code idx} if it should run and does not; returns false if it should but cannot. */
    boolean reconcile(int idx, long features, GuestMemory memory) {
        Vring r = rings[idx];
        if (r.running != null || !r.started || !r.enabled || !r.addrSet || r.num == 0 || memory.regionCount() == 0) return true;
        MemoryRegion gone = memory.vanishedRegion();
        if (gone != null) {
            // Reading the ring would fault: the front-end truncated its memory file.
            String why = "guest memory region " + gone + " was truncated by the front-end";
            if (!why.equals(r.lastStartError)) log.warn("{}: cannot start ring {}: {}", name, idx, why);
            r.lastStartError = why;
            return false;
        }
        Notifier call = Notifier.eventFd(r.callFd);
        boolean packed = VirtioFeatures.has(features, VirtioFeatures.RING_PACKED);
        VirtQueue q;
        try {
            // The one place that knows the ring layout.
            boolean eventIdx = VirtioFeatures.has(features, VirtioFeatures.RING_EVENT_IDX);
            boolean indirectDesc = VirtioFeatures.has(features, VirtioFeatures.RING_INDIRECT_DESC);
            if (packed) {
                // SET_VRING_ADDR's avail/used fields carry the driver and device areas; the base is
                // the next available index with its wrap counter in bit 15 (vhost-user.rst).
                q = PackedVirtQueue.fromUserAddresses(idx, r.num, memory, r.descUva, r.availUva, r.usedUva,
                        eventIdx, indirectDesc, r.base, call, QueueProcessor.maxBuffers(r.num));
            } else {
                q = SplitVirtQueue.fromUserAddresses(idx, r.num, memory, r.descUva, r.availUva, r.usedUva,
                        eventIdx, indirectDesc, r.base, call, QueueProcessor.maxBuffers(r.num));
            }
        } catch (IllegalArgumentException e) {
            if (!e.getMessage().equals(r.lastStartError)) log.warn("{}: cannot start ring: {}", name, e.getMessage());
            r.lastStartError = e.getMessage();
            return false;
        } catch (InternalError e) {
            // The used index is read from guest memory that vanished after the check above.
            log.warn("{}: cannot start ring {}: guest memory access faulted ({})", name, idx, e.getMessage());
            return false;
        }
        r.lastStartError = null;
        QueueHooks hooks = QueueHooks.NONE;
        if (packed && inflight != null) {
            // vhost-user.rst defines a packed layout for the inflight area; jvhost implements only
            // the split one, so a packed ring runs untracked (a back-end crash loses its requests).
            if (!r.inflightPackedWarned) log.warn("{}: ring {} is packed: inflight I/O tracking is not supported for packed rings; not tracked", name, idx);
            r.inflightPackedWarned = true;
        }
        InflightSplitQueue tracking = inflight == null || packed ? null : inflight.queue(idx, r.num);
        if (tracking != null) {
            SplitVirtQueue split = (SplitVirtQueue) q;
            int[] heads;
            boolean written;
            try {
                written = tracking.written();
                heads = tracking.recover(split.usedIndex());
            } catch (IllegalArgumentException | IndexOutOfBoundsException e) {
                log.warn("{}: cannot start ring {}: inflight area: {}", name, idx, e.getMessage());
                return false;
            }
            if (written) {
                // The area knows what was popped: the next avail index is the used index plus what
                // is still in flight, whatever SET_VRING_BASE said (see SplitVirtQueue.resubmit).
                split.resubmit(heads);
                if (heads.length > 0) {
                    log.info("{}: ring {}: resubmitting {} request(s) a previous back-end left in flight (heads {}); next avail index {}, front-end said {}",
                            name, idx, heads.length, java.util.Arrays.toString(heads), split.lastAvail(), r.base);
                } else if (split.lastAvail() != (r.base & 0xffff)) {
                    log.info("{}: ring {}: nothing left in flight; next avail index {} (the used index), front-end said {}",
                            name, idx, split.lastAvail(), r.base);
                }
            }
            hooks = tracking;
        } else if (inflight != null && !packed) {
            log.warn("{}: ring {} (size {}) is not covered by the inflight area ({}); not tracked", name, idx, r.num, inflight);
        }
        if (dirtyLog != null && VirtioFeatures.has(features, VirtioFeatures.LOG_ALL) && Boolean.getBoolean(NO_DIRTY_LOG)) {
            log.warn("{}: ring {}: {} is set: NOT marking the dirty log (a migration loses the pages this ring writes)", name, idx, NO_DIRTY_LOG);
        } else if (dirtyLog != null && VirtioFeatures.has(features, VirtioFeatures.LOG_ALL)) {
            boolean logRing = (r.addrFlags & VHOST_VRING_F_LOG) != 0;
            if (packed) {
                // Used descriptors land in the descriptor ring: log it (and the device area) at
                // their guest-physical addresses.
                hooks = HooksPair.of(hooks, RingDirtyLogger.packed(dirtyLog, logRing ? memory.uvaToGpa(r.descUva) : -1,
                        logRing ? memory.uvaToGpa(r.usedUva) : -1));
            } else {
                long usedGpa = logRing ? r.logGuestAddr : -1;
                hooks = HooksPair.of(hooks, new RingDirtyLogger(dirtyLog, usedGpa, r.num));
            }
        }
        q.hooks(hooks);
        if (!controller.claimRings(session)) return false; // another front-end's rings run (Controller: the ring lease)
        if (controller.coalescingDelayBaseUs() != 0) {
            q.interrupts().coalescing(controller.coalescingDelayBaseUs(), controller.coalescingIopsThreshold());
        }
        QueueProcessor p = device.newQueueProcessor(q, r.kickFd);
        p.errorFd(r.errFd);
        try {
            device.reactor(idx).runAndWait(() -> {
                p.start();
                // Completions may have been published while the ring had no call fd (or another
                // one): one extra interrupt is harmless, a missing one hangs the driver.
                if (q.anyUsed()) call.signal();
            }, Session.STOP_TIMEOUT_SECONDS);
        } catch (Exception e) {
            log.warn("{}: cannot start ring {}: {}", name, idx, e.getCause() != null ? e.getCause().getMessage() : e.toString());
            if (!anyRunning()) controller.releaseRings(session);
            return false;
        }
        running(r, p);
        starts++;
        log.debug("{}: ring {} started ({} ring, size {}, avail index 0x{}, kick fd {}, call fd {})", name, idx, packed ? "packed" : "split", r.num, Integer.toHexString(r.base), r.kickFd, r.callFd);
        return true;
    }

    /** RESET_OWNER / RESET_DEVICE: every ring stopped and forgotten but its call and error fds. */
    void reset() {
        stopAll();
        for (Vring r : rings) {
            r.started = false;
            r.enabled = false;
            r.addrSet = false;
            r.addrFlags = 0;
            r.logGuestAddr = 0;
            r.num = 0;
            r.base = 0;
            Fd.closeQuietly(r.kickFd);
            r.kickFd = -1;
            // Call and error fds stay: QEMU sets them once at init (its masked notifiers) and does
            // not send them again after RESET_DEVICE; dropping them loses interrupts.
        }
    }

    /**
     * Session end: every ring is tried, whatever one of them did; a ring that could not be
     * stopped was detached by force. Returns true when no ring is still attached to a reactor
     * (the memory may be unmapped).
     */
    boolean teardown() {
        // Stopping drains: requests in flight complete and are published to the used ring
        // (bounded by STOP_TIMEOUT_SECONDS per ring), so a planned shutdown or restart leaves the
        // guest's rings, and the inflight area, as consistent as a clean stop.
        int runningRings = 0;
        for (Vring r : rings) if (r.running != null) runningRings++;
        long t0 = System.nanoTime();
        if (runningRings > 0) log.info("{}: draining {} running ring(s) before closing", name, runningRings);
        for (Vring r : rings) {
            try {
                stop(r);
            } catch (RuntimeException e) {
                log.error("{}: {}", name, e.getMessage());
            }
        }
        if (runningRings > 0) {
            log.info("{}: rings stopped in {} ms{}", name, TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0),
                    anyRunning() ? ", one is still attached to an unresponsive reactor" : ", nothing left in flight");
        }
        for (Vring r : rings) {
            Fd.closeQuietly(r.kickFd);
            Fd.closeQuietly(r.callFd);
            Fd.closeQuietly(r.errFd);
            r.kickFd = r.callFd = r.errFd = -1;
        }
        return !anyRunning();
    }
}
