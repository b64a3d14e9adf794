package io.jvhost.vhost;

import io.jvhost.sys.Fd;
import io.jvhost.sys.MemFd;
import io.jvhost.sys.Mmap;
import io.jvhost.virtio.InflightSplitQueue;
import io.jvhost.vhostuser.InflightPayload;

/**
 * The inflight area of a session (vhost-user.rst "Inflight I/O tracking",
 * VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD): one {@link InflightSplitQueue} region per queue, in a
 * memfd the back-end creates on GET_INFLIGHT_FD and the front-end keeps, handing it to every
 * later back-end with SET_INFLIGHT_FD so requests in flight survive a back-end crash.
 *
 * <p>Created and closed on the session's control thread; the regions are written by the rings'
 * reactor while their queues run (the session stops them before replacing or closing the area).
 */
final class InflightArea implements AutoCloseable {
    /** Largest area we map: {@link Session#MAX_QUEUE_SIZE}-slot regions for as many queues as a device may have. */
    static final long MAX_BYTES = 256L * InflightSplitQueue.regionBytes(Session.MAX_QUEUE_SIZE);

    private final Mmap mapping;
    private final int numQueues;
    private final int queueSize;
    private final long regionBytes;

    private InflightArea(Mmap mapping, int numQueues, int queueSize) {
        this.mapping = mapping;
        this.numQueues = numQueues;
        this.queueSize = queueSize;
        this.regionBytes = InflightSplitQueue.regionBytes(queueSize);
    }

    /**
     * GET_INFLIGHT_FD: a fresh, formatted area for {@code numQueues} queues of {@code queueSize}
     * in a new memfd, sealed against resizing. The returned payload's fd is the caller's to send
     * and close.
     */
    static InflightPayload create(int numQueues, int queueSize, int maxQueues) {
        check(numQueues, queueSize, maxQueues);
        long region = InflightSplitQueue.regionBytes(queueSize);
        long size = region * numQueues;
        int fd = MemFd.create("jvhost-inflight", size);
        try {
            try (Mmap m = Mmap.map(fd, 0, size, true)) {
                for (int q = 0; q < numQueues; q++) InflightSplitQueue.format(m.segment().asSlice(q * region, region), queueSize);
            }
            Fd.addSeals(fd, Fd.F_SEAL_SHRINK | Fd.F_SEAL_GROW);
        } catch (RuntimeException e) {
            Fd.closeQuietly(fd);
            throw e;
        }
        return new InflightPayload(size, 0, numQueues, queueSize, fd);
    }

    /** SET_INFLIGHT_FD: maps the area the front-end hands over (its fd stays the message's). */
    static InflightArea map(InflightPayload p, int maxQueues) {
        check(p.numQueues(), p.queueSize(), maxQueues);
        long need = InflightSplitQueue.regionBytes(p.queueSize()) * p.numQueues();
        if (p.mmapSize() < need || p.mmapSize() > MAX_BYTES) {
            throw new IllegalArgumentException("inflight area of " + p.mmapSize() + " bytes for " + p.numQueues() + " queues of "
                    + p.queueSize() + " (needs " + need + ")");
        }
        if (p.mmapOffset() < 0 || (p.mmapOffset() & 63) != 0) throw new IllegalArgumentException("inflight mmap_offset " + p.mmapOffset());
        Fd.Stat st = Fd.fstat(p.fd());
        if (!st.regularFile() || Long.compareUnsigned(p.mmapOffset() + need, st.size()) > 0) {
            throw new IllegalArgumentException("inflight area fd is not a file of at least " + (p.mmapOffset() + need) + " bytes");
        }
        // The front-end must not shrink it under us (an access would fault): ours are sealed already.
        if (!Fd.trySealShrink(p.fd())) throw new IllegalArgumentException("inflight area fd cannot be sealed against shrinking");
        return new InflightArea(Mmap.map(p.fd(), p.mmapOffset(), need, true), p.numQueues(), p.queueSize());
    }

    private static void check(int numQueues, int queueSize, int maxQueues) {
        if (numQueues <= 0 || numQueues > maxQueues) throw new IllegalArgumentException("inflight area for " + numQueues + " queues (device has " + maxQueues + ")");
        if (queueSize <= 0 || queueSize > Session.MAX_QUEUE_SIZE) throw new IllegalArgumentException("inflight area for queues of " + queueSize);
    }

    /** Tracking for ring {@code idx} of {@code ringSize}, or null when the area does not cover it. */
    InflightSplitQueue queue(int idx, int ringSize) {
        if (idx >= numQueues || ringSize > queueSize) return null;
        return new InflightSplitQueue(mapping.segment().asSlice(idx * regionBytes, regionBytes), ringSize);
    }

    @Override
    public String toString() {
        return numQueues + " queue(s) of " + queueSize;
    }

    @Override
    public void close() {
        mapping.close();
    }
}
