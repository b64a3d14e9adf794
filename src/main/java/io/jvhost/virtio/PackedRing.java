package io.jvhost.virtio;

/**
 * Layout of the packed virtqueue (VIRTIO 1.2, section 2.8), little-endian.
 *
 * <pre>
 * Descriptor ring: size x 16 bytes           Event suppression , driver and device area
 *   0 le64 addr                                        0 le16 desc_event_off_wrap (bits 0-14 offset, 15 wrap)
 *   8 le32 len                                         2 le16 desc_event_flags (0 ENABLE, 1 DISABLE, 2 DESC)
 *  12 le16 id   (buffer id, in the chain's last descriptor)
 *  14 le16 flags (NEXT 1, WRITE 2, INDIRECT 4, AVAIL 1&lt;&lt;7, USED 1&lt;&lt;15)
 * </pre>
 * A descriptor is available when its AVAIL bit equals the driver's wrap counter and its USED
 * bit does not; a used descriptor has both bits equal to the device's used wrap counter.
 * Alignment: descriptor ring 16, event suppression areas 4 ("Virtqueue Part Alignment").
 * The queue size need not be a power of two (2.8).
 */
public final class PackedRing {
    private PackedRing() {}

    public static final int DESC_SIZE = 16;
    public static final int DESC_ADDR = 0;
    public static final int DESC_LEN = 8;
    public static final int DESC_ID = 12;
    public static final int DESC_FLAGS = 14;

    public static final int F_NEXT = 1;
    public static final int F_WRITE = 2;
    public static final int F_INDIRECT = 4;
    public static final int F_AVAIL = 1 << 7;
    public static final int F_USED = 1 << 15;

    /** Event suppression structure (driver area and device area): 4 bytes. */
    public static final int EVENT_OFF_WRAP = 0;
    public static final int EVENT_FLAGS = 2;
    public static final int EVENT_BYTES = 4;
    public static final int EVENT_FLAGS_ENABLE = 0;
    public static final int EVENT_FLAGS_DISABLE = 1;
    /** Notify at the descriptor named by off_wrap; only with VIRTIO_F_EVENT_IDX. */
    public static final int EVENT_FLAGS_DESC = 2;

    public static final int MAX_QUEUE_SIZE = 32768;

    public static long ringBytes(int size) {
        return (long) DESC_SIZE * size;
    }

    /** Packed queue sizes are 1..32768, not necessarily powers of two. */
    public static boolean validSize(long size) {
        return size > 0 && size <= MAX_QUEUE_SIZE;
    }

    /** Is a descriptor with {@code flags} available to the device while the driver's wrap counter is {@code wrap}? */
    public static boolean isAvailable(int flags, boolean wrap) {
        boolean avail = (flags & F_AVAIL) != 0;
        boolean used = (flags & F_USED) != 0;
        return avail == wrap && used != wrap;
    }

    /** The AVAIL/USED bits of a used descriptor written under used wrap counter {@code wrap}. */
    public static int usedBits(boolean wrap) {
        return wrap ? F_AVAIL | F_USED : 0;
    }

    /** GET_VRING_BASE's word for a packed ring (vhost-user.rst): bits 0-14 the index, bit 15 the wrap counter. */
    public static int state(int index, boolean wrap) {
        return (index & 0x7fff) | (wrap ? 0x8000 : 0);
    }
}
