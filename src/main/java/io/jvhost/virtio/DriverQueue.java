package io.jvhost.virtio;

/**
 * The driver side of one virtqueue, whatever its ring layout: {@link DriverSplitQueue} (VIRTIO
 * 1.2, 2.7) or {@link DriverPackedQueue} (2.8). Owned by one thread.
 *
 * <p>A chain is built with {@link #begin}, {@link #add}... and either {@link #end} (offered once,
 * freed when it comes back) or {@link #endPinned} (kept, offered again with {@link #offer}).
 * The value these return identifies the chain on completion: the head descriptor of a split
 * ring, the buffer id of a packed one. Nothing is visible to the device before
 * {@link #publish}; {@link #needsKick} then says whether the device asked to be notified.
 *
 * <p>Why an interface on the hot path is fine: a process (a {@code jvhost bench} run) drives one
 * ring layout, so every call site sees one receiver class and the JIT inlines it; a test JVM
 * that runs both sees two, which C2 still inlines (bimorphic). No third implementation should
 * be added without measuring.
 */
public interface DriverQueue {
    /** Receives used buffers: the chain's head (split) or buffer id (packed), and the used length. */
    @FunctionalInterface
    interface UsedHandler {
        void onUsed(int head, int len);
    }

    int size();

    /** Descriptors (split) or ring slots (packed) not in use. */
    int freeDescriptors();

    /** Starts a chain of {@code descriptors}; false when there is no room for it now. */
    boolean begin(int descriptors);

    /** Adds one buffer to the open chain. */
    void add(long gpa, int len, boolean writable);

    /** Closes the chain and queues it (visible after {@link #publish}); returns its head or id. */
    int end();

    /** Closes the chain and keeps it built: {@link #offer} queues it as often as wanted. */
    int endPinned();

    /** Queues pinned chain {@code head} again (visible after {@link #publish}). */
    void offer(int head);

    /** Sets or clears the device-writable flag of the buffer {@code hops} links after the start of pinned chain {@code head}. */
    void setWritable(int head, int hops, boolean writable);

    /** Makes everything queued since the last publish visible to the device. */
    void publish();

    /** After {@link #publish}: does the device want a kick for what was queued since the last kick? */
    boolean needsKick();

    /** Reaps used buffers; returns how many. */
    int pollUsed(UsedHandler h);

    /** Ask the device for (or not) a call on used buffers. */
    void wantInterrupts(boolean want);
}
