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
    /** Requests in flight when the queue faulted: dropped, never answered (their memory is gone). */
    public long droppedRequests;
}
