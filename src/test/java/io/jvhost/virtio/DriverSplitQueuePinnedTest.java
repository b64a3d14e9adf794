package io.jvhost.virtio;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;

import static io.jvhost.virtio.SplitRing.*;
import static org.assertj.core.api.Assertions.assertThat;

/**
 * The driver-side ring's pinned chains (built once, offered again and again, never freed) and
 * its used_event handling with interrupts off. The device side is played by hand on the raw
 * ring layout, so these tests depend on nothing but VIRTIO 1.2 2.7.
 */
class DriverSplitQueuePinnedTest {
    static final int SIZE = 16;
    final Arena arena = Arena.ofConfined();
    final MemorySegment desc = arena.allocate(descTableBytes(SIZE), 4096);
    final MemorySegment avail = arena.allocate(availBytes(SIZE), 4096);
    final MemorySegment used = arena.allocate(usedBytes(SIZE), 4096);
    int deviceAvail, deviceUsed;

    @AfterEach
    void close() {
        arena.close();
    }

    /** Device: takes every newly available head, in order. */
    List<Integer> take(DriverSplitQueue d) {
        List<Integer> heads = new ArrayList<>();
        int idx = Short.toUnsignedInt(avail.get(LittleEndian.U16, AVAIL_IDX));
        while (deviceAvail != idx) {
            heads.add(Short.toUnsignedInt(avail.get(LittleEndian.U16, AVAIL_RING + 2L * (deviceAvail % SIZE))));
            deviceAvail = (deviceAvail + 1) & 0xffff;
        }
        return heads;
    }

    /** Device: returns {@code head} on the used ring and publishes it. */
    void complete(int head, int len) {
        long at = USED_RING + (long) USED_ELEM_SIZE * (deviceUsed % SIZE);
        used.set(LittleEndian.U32, at, head);
        used.set(LittleEndian.U32, at + 4, len);
        deviceUsed = (deviceUsed + 1) & 0xffff;
        used.set(LittleEndian.U16, USED_IDX, (short) deviceUsed);
    }

    long descAddr(int i) { return desc.get(LittleEndian.U64, (long) i * DESC_SIZE + DESC_ADDR); }
    int descFlags(int i) { return Short.toUnsignedInt(desc.get(LittleEndian.U16, (long) i * DESC_SIZE + DESC_FLAGS)); }
    int descNext(int i) { return Short.toUnsignedInt(desc.get(LittleEndian.U16, (long) i * DESC_SIZE + DESC_NEXT)); }

    DriverSplitQueue pinnedBlkChain(boolean eventIdx, int[] head) {
        DriverSplitQueue d = new DriverSplitQueue(SIZE, desc, avail, used, eventIdx);
        assertThat(d.begin(3)).isTrue();
        d.add(0x1000, 16, false);
        d.add(0x2000, 4096, true);
        d.add(0x3000, 1, true);
        head[0] = d.endPinned();
        return d;
    }

    @Test
    void aPinnedChainIsOfferedManyTimesWithoutBeingRebuiltOrFreed() {
        int[] h = new int[1];
        DriverSplitQueue d = pinnedBlkChain(false, h);
        int head = h[0];
        // Not offered yet: nothing on the avail ring.
        d.publish();
        assertThat(take(d)).isEmpty();
        assertThat(d.freeDescriptors()).isEqualTo(SIZE - 3);
        List<Integer> reaped = new ArrayList<>();
        for (int round = 0; round < 3 * SIZE; round++) { // more rounds than ring entries: the indices wrap
            d.offer(head);
            d.publish();
            assertThat(take(d)).containsExactly(head);
            // The device sees the same three-descriptor chain every time.
            assertThat(descAddr(head)).isEqualTo(0x1000);
            assertThat(descFlags(head)).isEqualTo(F_NEXT);
            int data = descNext(head);
            assertThat(descAddr(data)).isEqualTo(0x2000);
            assertThat(descFlags(data)).isEqualTo(F_NEXT | F_WRITE);
            assertThat(descFlags(descNext(data))).isEqualTo(F_WRITE);
            complete(head, 4097);
            assertThat(d.pollUsed((hd, len) -> reaped.add(hd))).isEqualTo(1);
            // A pinned chain is never returned to the free list.
            assertThat(d.freeDescriptors()).isEqualTo(SIZE - 3);
        }
        assertThat(reaped).hasSize(3 * SIZE).containsOnly(head);
        // Ordinary chains still come from the remaining descriptors, and are freed.
        assertThat(d.begin(3)).isTrue();
        d.add(0x4000, 16, false);
        d.add(0x5000, 1, true);
        int other = d.end();
        assertThat(other).isNotEqualTo(head);
        d.publish();
        assertThat(take(d)).containsExactly(other);
        complete(other, 1);
        d.pollUsed((hd, len) -> { });
        assertThat(d.freeDescriptors()).isEqualTo(SIZE - 3);
    }

    @Test
    void setWritableFlipsOnlyTheChosenDescriptorsWriteFlag() {
        int[] h = new int[1];
        DriverSplitQueue d = pinnedBlkChain(false, h);
        int head = h[0];
        int data = descNext(head);
        int status = descNext(data);
        d.setWritable(head, 1, false);
        assertThat(descFlags(head)).isEqualTo(F_NEXT);
        assertThat(descFlags(data)).isEqualTo(F_NEXT);
        assertThat(descFlags(status)).isEqualTo(F_WRITE);
        assertThat(descNext(data)).isEqualTo(status);
        d.setWritable(head, 1, true);
        assertThat(descFlags(data)).isEqualTo(F_NEXT | F_WRITE);
        assertThat(descFlags(status)).isEqualTo(F_WRITE);
    }

    @Test
    void withInterruptsOffUnderEventIdxTheDeviceNeverHasToSignal() {
        int[] h = new int[1];
        DriverSplitQueue d = pinnedBlkChain(true, h);
        int head = h[0];
        d.wantInterrupts(false);
        int stores = 0;
        int lastEvent = Short.toUnsignedInt(avail.get(LittleEndian.U16, usedEventOffset(SIZE)));
        // Well past a wrap of the 16-bit used index.
        for (int i = 0; i < 70_000; i++) {
            d.offer(head);
            d.publish();
            take(d);
            int old = deviceUsed;
            complete(head, 1);
            int event = Short.toUnsignedInt(avail.get(LittleEndian.U16, usedEventOffset(SIZE)));
            assertThat(needEvent(event, deviceUsed, old)).as("device would signal at used index %d", deviceUsed).isFalse();
            d.pollUsed((hd, len) -> { });
            int now = Short.toUnsignedInt(avail.get(LittleEndian.U16, usedEventOffset(SIZE)));
            if (now != lastEvent) stores++;
            lastEvent = now;
        }
        // used_event is refreshed now and then (every 16384 completions), not per poll.
        assertThat(stores).isBetween(3, 6);
    }
}
