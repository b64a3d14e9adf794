package io.jvhost.virtio;

/**
 * Where per-request state outside the ring attaches, for split and packed rings alike: inflight
 * tracking (VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD records a head at pop and clears it once its
 * used entry is published) and dirty-page logging (VHOST_F_LOG_ALL / SET_LOG_BASE: every guest
 * page the device writes on completion, the used ring's and the data buffers').
 *
 * <p>Called on the queue's owning reactor thread, in ring order. {@link #NONE} is the default;
 * hooks must not allocate or block. The byte ranges of ring writes are given as offsets into the
 * used ring (split) or descriptor ring (packed) so a logger adds SET_VRING_ADDR's
 * {@code log_guest_addr}; a chain's device-writable buffers are found with
 * {@link VirtQueue#writableRanges} from {@link #completed}, while the device still owns them.
 */
public interface QueueHooks {
    QueueHooks NONE = new QueueHooks() {
    };

    /** Chain {@code head} was taken from the available ring (before it is walked or handed out). */
    default void popped(VirtQueue queue, int head) {
    }

    /**
     * The used entry for {@code head} ({@code len} bytes written) was stored at byte
     * {@code ringOffset} ({@code bytes} long) of the ring; not yet published.
     */
    default void completed(VirtQueue queue, int head, int len, long ringOffset, int bytes) {
    }

    /**
     * The used index {@code usedIdx} was published (release store) at byte {@code ringOffset}
     * ({@code bytes} long): every entry {@link #completed} before is now the driver's. Packed
     * rings: {@code usedIdx} is the used position with its wrap counter in bit 15, and the store
     * is the flags of the batch's first used descriptor.
     */
    default void published(VirtQueue queue, int usedIdx, long ringOffset, int bytes) {
    }
}
