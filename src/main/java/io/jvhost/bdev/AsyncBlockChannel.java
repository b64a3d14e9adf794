package io.jvhost.bdev;

import io.jvhost.runtime.BoundedQueue;
import io.jvhost.runtime.IoWaitEstimate;
import io.jvhost.runtime.LoopClock;
import io.jvhost.sys.Errno;
import io.jvhost.sys.EventFd;
import io.jvhost.sys.Fd;

import java.lang.foreign.MemorySegment;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A channel whose requests finish on other threads (a worker pool now; librbd callbacks later).
 * Finished requests come back through a lock-free bounded queue and an eventfd
 * ({@link #wakeFd()}), which the reactor sleeps on; {@link #poll()} on the owning reactor
 * delivers them. Foreign threads only call {@link #deliver}: they never touch rings or the
 * request's callback.
 *
 * <p>Nothing is allocated per request: the request itself carries its status and channel
 * across, and the completion queue is sized for the channel's in-flight limit, so a delivery
 * always finds room. Beyond that limit {@code submit} answers {@code -EAGAIN}.
 *
 * <p>Closing while requests are still out (after a fault) leaves the eventfd open until the
 * last of them has been delivered, so a late worker never writes to a closed (or reused) fd.
 */
public abstract class AsyncBlockChannel implements BlockChannel {
    private static final int CLOSED = 1 << 30;

    private final long sizeBytes;
    private final int maxInFlight;
    private final BoundedQueue<BlockRequest> done;
    private final int eventFd = EventFd.create(true);
    /** Requests handed out and not yet delivered, plus {@link #CLOSED} once closed (any thread). */
    private final AtomicInteger outstanding = new AtomicInteger();
    /** Accepted and not yet completed by {@link #poll()} (owner thread). */
    private int inFlight;
    /** How long a poll finding nothing waits for the next completion (owner thread; the owner's loop clock). */
    private final IoWaitEstimate waits = new IoWaitEstimate(LoopClock.current());

    protected AsyncBlockChannel(long sizeBytes, int maxInFlight) {
        this.sizeBytes = sizeBytes;
        this.maxInFlight = maxInFlight;
        this.done = new BoundedQueue<>(maxInFlight);
    }

    /**
     * Owner thread: hands {@code r} to whatever executes it, which later calls
     * {@link #deliver}. Returns false (nothing started, no delivery) when it has no room.
     */
    protected abstract boolean start(BlockRequest r);

    @Override
    public final int submit(BlockRequest r) {
        if (r.offset < 0 || r.length < 0 || r.offset > sizeBytes - r.length) return -Errno.EINVAL;
        if (inFlight >= maxInFlight) return -Errno.EAGAIN;
        r.asyncChannel = this;
        outstanding.getAndIncrement();
        if (!start(r)) {
            outstanding.getAndDecrement();
            r.asyncChannel = null;
            return -Errno.EAGAIN;
        }
        inFlight++;
        return 0;
    }

    /**
     * Any thread: {@code r} finished with {@code status} (0 or -errno). {@code scratch} is the
     * calling thread's own 8-byte buffer for the eventfd write.
     */
    public static void deliver(BlockRequest r, int status, MemorySegment scratch) {
        AsyncBlockChannel ch = r.asyncChannel;
        r.asyncStatus = status;
        if (!ch.done.offer(r)) throw new IllegalStateException("completion queue overflow"); // cannot happen: sized for maxInFlight
        EventFd.signal(ch.eventFd, scratch);
        if (ch.outstanding.decrementAndGet() == CLOSED) Fd.closeQuietly(ch.eventFd);
    }

    @Override
    public final int poll() {
        int n = 0;
        BlockRequest r;
        while (n < maxInFlight && (r = done.poll()) != null) {
            inFlight--;
            n++;
            r.asyncChannel = null;
            r.complete(r.asyncStatus);
        }
        waits.polled(n, inFlight);
        return n;
    }

    @Override
    public final long expectedWaitNanos() {
        return waits.expectedNanos(inFlight);
    }

    /** The wait estimate (tests, diagnostics; owner thread). */
    public final IoWaitEstimate waitEstimate() {
        return waits;
    }

    @Override
    public final int inFlight() {
        return inFlight;
    }

    @Override
    public final int wakeFd() {
        return eventFd;
    }

    @Override
    public void close() {
        int before = outstanding.getAndAdd(CLOSED);
        if (before >= CLOSED) {
            outstanding.getAndAdd(-CLOSED); // closed twice: undo
            return;
        }
        if (before == 0) Fd.closeQuietly(eventFd);
    }
}
