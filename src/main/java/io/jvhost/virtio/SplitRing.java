package io.jvhost.virtio;

/**
 * Layout of the split virtqueue (VIRTIO 1.2, section 2.7), little-endian.
 *
 * <pre>
 * Descriptor table: size x 16 bytes (2.7.5)      Available ring (2.7.6)        Used ring (2.7.8)
 *   0 le64 addr                                    0 le16 flags                  0 le16 flags
 *   8 le32 len                                     2 le16 idx                    2 le16 idx
 *  12 le16 flags (NEXT 1, WRITE 2, INDIRECT 4)     4 le16 ring[size]             4 {le32 id; le32 len}[size]
 *  14 le16 next                                    4+2*size le16 used_event      4+8*size le16 avail_event
 * </pre>
 * Alignment: descriptors 16, available ring 2, used ring 4 (2.7, table "Virtqueue Part Alignment").
 */
public final class SplitRing {
    private SplitRing() {}

    public static final int DESC_SIZE = 16;
    public static final int DESC_ADDR = 0;
    public static final int DESC_LEN = 8;
    public static final int DESC_FLAGS = 12;
    public static final int DESC_NEXT = 14;

    public static final int F_NEXT = 1;
    public static final int F_WRITE = 2;
    public static final int F_INDIRECT = 4;

    public static final int AVAIL_FLAGS = 0;
    public static final int AVAIL_IDX = 2;
    public static final int AVAIL_RING = 4;
    /** VIRTQ_AVAIL_F_NO_INTERRUPT: the driver asks for no interrupts (ignored under EVENT_IDX). */
    public static final int AVAIL_F_NO_INTERRUPT = 1;

    public static final int USED_FLAGS = 0;
    public static final int USED_IDX = 2;
    public static final int USED_RING = 4;
    public static final int USED_ELEM_SIZE = 8;
    /** VIRTQ_USED_F_NO_NOTIFY: the device asks for no kicks (ignored under EVENT_IDX). */
    public static final int USED_F_NO_NOTIFY = 1;

    public static final int MAX_QUEUE_SIZE = 32768;

    public static long descTableBytes(int size) {
        return (long) DESC_SIZE * size;
    }

    /** Available ring including used_event. */
    public static long availBytes(int size) {
        return AVAIL_RING + 2L * size + 2;
    }

    /** Used ring including avail_event. */
    public static long usedBytes(int size) {
        return USED_RING + (long) USED_ELEM_SIZE * size + 2;
    }

    public static long usedEventOffset(int size) {
        return AVAIL_RING + 2L * size;
    }

    public static long availEventOffset(int size) {
        return USED_RING + (long) USED_ELEM_SIZE * size;
    }

    /** vring_need_event (2.7.10): should we notify when moving from {@code old} to {@code next} given {@code event}? */
    public static boolean needEvent(int event, int next, int old) {
        return ((next - event - 1) & 0xffff) < ((next - old) & 0xffff);
    }

    /** Queue sizes must be powers of two for split rings (2.7). */
    public static boolean validSize(long size) {
        return size > 0 && size <= MAX_QUEUE_SIZE && Long.bitCount(size) == 1;
    }
}
