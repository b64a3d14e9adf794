package io.jvhost.virtio;

import io.jvhost.memory.DirtyLog;

/**
 * Dirty logging for one ring while VHOST_F_LOG_ALL is on (vhost-user.rst "Migration"): as a
 * {@link QueueHooks}, every completion marks the chain's device-writable buffers (walked again
 * with {@link VirtQueue#writableRanges} while the device still owns them) and every publish
 * marks the used ring, at SET_VRING_ADDR's {@code log_guest_addr} when the front-end asked for
 * it (VHOST_VRING_F_LOG). A packed ring's used descriptors go to its descriptor ring, which is
 * marked entry by entry ({@link #packed}). The whole used ring is marked, so the notification fields the ring
 * writes beside the entries (flags, avail_event) are covered too; it is a few pages.
 *
 * <p>Marked at completion, before the used entry is published: the front-end's final sync
 * happens after the rings are stopped (GET_VRING_BASE), so no write escapes it. Owned by the
 * queue's reactor thread; nothing is allocated.
 */
public final class RingDirtyLogger implements QueueHooks, VirtQueue.GuestRangeSink {
    private final DirtyLog log;
    private final long usedGpa;
        private final long publishGpa;
    private final long publishBytes;

    /** {@code usedGpa}: the used ring's guest-physical address, or -1 when it is not to be logged. */
    public RingDirtyLogger(DirtyLog log, long usedGpa, int ringSize) {
        this(log, usedGpa, usedGpa, SplitRing.usedBytes(ringSize));
    }

    private RingDirtyLogger(DirtyLog log, long usedGpa, long publishGpa, long publishBytes) {
        this.log = log;
        this.usedGpa = usedGpa;
        this.publishGpa = publishGpa;
        this.publishBytes = publishBytes;
    }

    /**
     * For a packed ring: used descriptors are written into the descriptor ring at
     * {@code descGpa} (the offsets {@link QueueHooks#completed} gives are into it), and the
     * device event suppression area at {@code deviceAreaGpa} (4 bytes) is marked at every
     * publish. Either address -1: that part is not logged.
     */
    public static RingDirtyLogger packed(DirtyLog log, long descGpa, long deviceAreaGpa) {
        return new RingDirtyLogger(log, descGpa, deviceAreaGpa, PackedRing.EVENT_BYTES);
    }

    @Override
    public void completed(VirtQueue queue, int head, int len, long ringOffset, int bytes) {
        queue.writableRanges(head, this);
        if (usedGpa >= 0) log.mark(usedGpa + ringOffset, bytes);
    }

    @Override
    public void published(VirtQueue queue, int usedIdx, long ringOffset, int bytes) {
        if (publishGpa >= 0) log.mark(publishGpa, publishBytes);
    }

    @Override
    public void range(long gpa, long length) {
        log.mark(gpa, length);
    }
}
