package io.jvhost.virtio;

/**
 * Counters of one virtqueue. Written by the owning reactor thread only; other threads read them
 * without synchronization for statistics (values may be slightly stale).
 */
public final class QueueStats {
    public long requests;
    public long chainErrors;
    public long requestErrors;
    public long calls;
    public long callErrors;
    public long kicks;
    /** Times processing faulted (guest memory gone or an internal error): 0 or 1 per queue start. */
    public long faults;
    /**
     * Requests in flight when the queue faulted that could not be answered because their status
     * or the ring lay in vanished memory: forgotten without a status (those that could be
     * answered got an I/O error and count in {@link #requestErrors}).
     */
    public long droppedRequests;
    /**
     * Times the block layer answered a submit with "no room now" ({@code -EAGAIN}/{@code -ENOMEM})
     * and the request was put on the queue's retry list instead of failing it.
     */
    public long busyRetries;
}
