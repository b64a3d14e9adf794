package io.jvhost.virtio;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;

/**
 * Inflight I/O tracking for one split ring (vhost-user.rst, "Inflight I/O tracking", split
 * virtqueues): the ring's region of the shared inflight area, kept so that a back-end started
 * again after a crash knows which chains its predecessor popped and never completed. The
 * front-end (QEMU) keeps the area across back-end restarts and hands it to the next one with
 * SET_INFLIGHT_FD.
 *
 * <pre>
 * QueueRegionSplit (little endian)            DescStateSplit (16 bytes, one per ring slot)
 *  0  u64 features                             0  u8  inflight   1 while popped and not completed
 *  8  u16 version (1)                          1  u8  padding[5]
 * 10  u16 desc_num (queue size)                6  u16 next       batch list of completed heads
 * 12  u16 last_batch_head                      8  u64 counter    pop order
 * 14  u16 used_idx (used->idx once recorded)
 * 16  DescStateSplit desc[desc_num]
 * </pre>
 *
 * As a {@link QueueHooks}: at pop the head is marked in flight with the next counter value; at
 * completion it is pushed on the batch list ({@code next}, {@code last_batch_head}); once the
 * used index is published, the heads of that batch are cleared and {@code used_idx} updated. A
 * crash between publishing and clearing is repaired by {@link #recover}: the region's
 * {@code used_idx} then differs from the ring's, and that many heads of the batch list were in
 * fact completed. Owned by the queue's reactor thread; nothing is allocated per request.
 */
public final class InflightSplitQueue implements QueueHooks {
    public static final int VERSION = 1;
    static final long FEATURES = 0, VERSION_OFF = 8, DESC_NUM = 10, LAST_BATCH_HEAD = 12, USED_IDX = 14, DESC = 16;
    static final int DESC_STATE_SIZE = 16;
    static final long D_INFLIGHT = 0, D_NEXT = 6, D_COUNTER = 8;
    /** Regions are 64-byte aligned in the area (libvhost-user's INFLIGHT_ALIGNMENT; QEMU only passes the size on). */
    public static final int ALIGNMENT = 64;

    private static final ValueLayout.OfShort U16 = LittleEndian.U16;
    private static final ValueLayout.OfLong U64 = LittleEndian.U64;

    private final MemorySegment region;
    private final int size;
    private long counter;

    /** Bytes of one queue's region for a ring of {@code queueSize}. */
    public static long regionBytes(int queueSize) {
        long raw = DESC + (long) DESC_STATE_SIZE * queueSize;
        return (raw + ALIGNMENT - 1) / ALIGNMENT * ALIGNMENT;
    }

    /**
     * @param region this ring's region of the area, at least {@link #regionBytes}({@code descNum}) long
     * @param ringSize the ring's size (heads are below it); at most the region's {@code descNum}
     */
    public InflightSplitQueue(MemorySegment region, int ringSize) {
        this.region = region;
        this.size = ringSize;
    }

    /**
     * Writes an empty, not yet used region for {@code descNum} slots (GET_INFLIGHT_FD's fresh
     * area): version 0, so the first {@link #recover} takes the ring's used index as its own
     * (a ring may start far from 0, e.g. on a migration's destination).
     */
    public static void format(MemorySegment region, int descNum) {
        region.asSlice(0, regionBytes(descNum)).fill((byte) 0);
        region.set(U16, DESC_NUM, (short) descNum);
    }

    /**
     * Makes the region consistent with the ring's used index {@code ringUsedIdx} (the guest's
     * used->idx at start) and returns the heads still in flight, in the order they were popped:
     * they are to be processed again before anything new ({@link SplitVirtQueue#resubmit}).
     * A region never written (version 0) is formatted and nothing is resubmitted. Cold: once per
     * ring start. Throws {@link IllegalArgumentException} for a region no back-end could have
     * written (a hostile or confused front-end).
     */
    public int[] recover(int ringUsedIdx) {
        int version = version();
        if (version == 0) {
            // Never used: nothing was in flight, whatever the ring's indices say.
            format(region, size);
            region.set(U16, USED_IDX, (short) ringUsedIdx);
            region.set(U16, VERSION_OFF, (short) VERSION);
            return new int[0];
        }
        int descNum = Short.toUnsignedInt(region.get(U16, DESC_NUM));
        if (version != VERSION || descNum < size) {
            throw new IllegalArgumentException("inflight region has version " + version + " and " + descNum + " slots; expected version "
                    + VERSION + " and at least " + size);
        }
        int recorded = Short.toUnsignedInt(region.get(U16, USED_IDX));
        int missed = (ringUsedIdx - recorded) & 0xffff;
        if (missed > size) {
            throw new IllegalArgumentException("inflight region's used index " + recorded + " is " + missed + " behind the ring's " + ringUsedIdx);
        }
        // Completed and published, but the previous back-end died before clearing them.
        int head = Short.toUnsignedInt(region.get(U16, LAST_BATCH_HEAD));
        for (int i = 0; i < missed; i++) {
            if (head >= size) throw new IllegalArgumentException("inflight batch list leaves the ring at head " + head);
            long d = DESC + (long) DESC_STATE_SIZE * head;
            region.set(ValueLayout.JAVA_BYTE, d + D_INFLIGHT, (byte) 0);
            head = Short.toUnsignedInt(region.get(U16, d + D_NEXT));
        }
        region.set(U16, USED_IDX, (short) ringUsedIdx);
        int n = 0;
        int[] found = new int[size];
        long max = 0;
        for (int h = 0; h < size; h++) {
            long d = DESC + (long) DESC_STATE_SIZE * h;
            long c = region.get(U64, d + D_COUNTER);
            if (Long.compareUnsigned(c, max) > 0) max = c;
            if (region.get(ValueLayout.JAVA_BYTE, d + D_INFLIGHT) != 0) found[n++] = h;
        }
        counter = max;
        // Pop order is counter order (cold path: boxing is fine here).
        Integer[] order = new Integer[n];
        for (int i = 0; i < n; i++) order[i] = found[i];
        Arrays.sort(order, (a, b) -> Long.compareUnsigned(region.get(U64, DESC + (long) DESC_STATE_SIZE * a + D_COUNTER),
                region.get(U64, DESC + (long) DESC_STATE_SIZE * b + D_COUNTER)));
        int[] heads = new int[n];
        for (int i = 0; i < n; i++) heads[i] = order[i];
        return heads;
    }

    /**
     * Has a back-end written this region (its version set)? Only then does it know what was
     * popped, and {@link #recover}'s heads decide where the ring goes on; a fresh region knows
     * nothing and the front-end's base stands.
     */
    public boolean written() {
        return version() != 0;
    }

    private int version() {
        return Short.toUnsignedInt(region.get(U16, VERSION_OFF));
    }

    /** Is {@code head} recorded as in flight? (tests) */
    public boolean isInFlight(int head) {
        return region.get(ValueLayout.JAVA_BYTE, DESC + (long) DESC_STATE_SIZE * head + D_INFLIGHT) != 0;
    }

    /** The used index the region last recorded. (tests) */
    public int recordedUsedIdx() {
        return Short.toUnsignedInt(region.get(U16, USED_IDX));
    }

    @Override
    public void popped(VirtQueue queue, int head) {
        long d = DESC + (long) DESC_STATE_SIZE * head;
        region.set(U64, d + D_COUNTER, ++counter);
        region.set(ValueLayout.JAVA_BYTE, d + D_INFLIGHT, (byte) 1);
    }

    @Override
    public void completed(VirtQueue queue, int head, int len, long ringOffset, int bytes) {
        region.set(U16, DESC + (long) DESC_STATE_SIZE * head + D_NEXT, region.get(U16, LAST_BATCH_HEAD));
        region.set(U16, LAST_BATCH_HEAD, (short) head);
    }

    @Override
    public void published(VirtQueue queue, int usedIdx, long ringOffset, int bytes) {
        int n = (usedIdx - Short.toUnsignedInt(region.get(U16, USED_IDX))) & 0xffff;
        int head = Short.toUnsignedInt(region.get(U16, LAST_BATCH_HEAD));
        for (int i = 0; i < n && head < size; i++) {
            long d = DESC + (long) DESC_STATE_SIZE * head;
            region.set(ValueLayout.JAVA_BYTE, d + D_INFLIGHT, (byte) 0);
            head = Short.toUnsignedInt(region.get(U16, d + D_NEXT));
        }
        region.set(U16, USED_IDX, (short) usedIdx);
    }
}
