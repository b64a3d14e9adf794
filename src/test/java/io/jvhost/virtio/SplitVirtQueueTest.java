package io.jvhost.virtio;

import io.jvhost.memory.GuestMemory;
import io.jvhost.memory.MemoryRegion;
import io.jvhost.sys.EventFd;
import io.jvhost.sys.Fd;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;

import static io.jvhost.virtio.SplitRing.*;
import static org.assertj.core.api.Assertions.assertThat;

/**
 * The device-side split ring over rings laid out in plain memory by the driver-side helper,
 * including the catalogue of malformed chains a hostile guest can build.
 */
class SplitVirtQueueTest {
    static final int SIZE = 16;
    // Two regions with a gap: [0x10000, 0x30000) and [0x30000, 0x50000) adjacent (for splits), and [0x100000, 0x110000).
    final Arena arena = Arena.ofConfined();
    final MemorySegment r0 = arena.allocate(0x20000, 4096);
    final MemorySegment r1 = arena.allocate(0x20000, 4096);
    final MemorySegment r2 = arena.allocate(0x10000, 4096);
    final GuestMemory mem = new GuestMemory(List.of(
            MemoryRegion.ofSegment(0x10000, r0.address(), r0),
            MemoryRegion.ofSegment(0x30000, r1.address(), r1),
            MemoryRegion.ofSegment(0x100000, r2.address(), r2)));
    final MemorySegment scratch = arena.allocate(8, 8);
    // rings at the start of region 0
    final long descGpa = 0x10000, availGpa = 0x11000, usedGpa = 0x12000;
    final DriverSplitQueue driver = new DriverSplitQueue(SIZE, r0.asSlice(0), r0.asSlice(0x1000), r0.asSlice(0x2000), false);
    int callFd = -1;

    record Seen(int head, int buffers, long readable, long writable, List<long[]> gpas) {}

    final List<Seen> seen = new ArrayList<>();

    SplitVirtQueue device(boolean eventIdx, boolean indirect) {
        return new SplitVirtQueue(0, SIZE, mem, r0.asSlice(0, descTableBytes(SIZE)), r0.asSlice(0x1000, availBytes(SIZE)),
                r0.asSlice(0x2000, usedBytes(SIZE)), eventIdx, indirect, 0, Notifier.eventFd(callFd), 64);
    }

    final SplitVirtQueue.ChainHandler record = (q, c) -> {
        List<long[]> g = new ArrayList<>();
        for (int i = 0; i < c.bufferCount(); i++) {
            assertThat(c.offset(i) + c.length(i)).isLessThanOrEqualTo(c.segment(i).byteSize());
            g.add(new long[] {c.segment(i).address() + c.offset(i), c.length(i), c.writable(i) ? 1 : 0});
        }
        seen.add(new Seen(c.head(), c.bufferCount(), c.readableBytes(), c.writableBytes(), g));
        q.complete(c.head(), (int) c.writableBytes());
    };

    @AfterEach
    void close() {
        Fd.closeQuietly(callFd);
        arena.close();
    }

    @Test
    void walksABlkShapedChain() {
        SplitVirtQueue q = device(false, false);
        driver.begin(3);
        driver.add(0x20000, 16, false);
        driver.add(0x21000, 4096, true);
        driver.add(0x22000, 1, true);
        int head = driver.end();
        driver.publish();
        assertThat(q.poll(record, 64)).isEqualTo(1);
        assertThat(seen).hasSize(1);
        Seen s = seen.get(0);
        assertThat(s.head()).isEqualTo(head);
        assertThat(s.buffers()).isEqualTo(3);
        assertThat(s.readable()).isEqualTo(16);
        assertThat(s.writable()).isEqualTo(4097);
        assertThat(s.gpas().get(1)[0]).isEqualTo(r0.address() + 0x11000);
        q.flush();
        assertThat(driver.usedIndex()).isEqualTo(1);
        assertThat(driver.rawUsed(0)).isEqualTo(((long) head << 32) | 4097);
    }

    @Test
    void splitsABufferThatCrossesARegionBoundary() {
        SplitVirtQueue q = device(false, false);
        driver.begin(1);
        driver.add(0x2f000, 0x2000, false); // 0x1000 in region 0, 0x1000 in region 1
        driver.end();
        driver.publish();
        q.poll(record, 64);
        Seen s = seen.get(0);
        assertThat(s.buffers()).isEqualTo(2);
        assertThat(s.gpas().get(0)).containsExactly(r0.address() + 0x1f000, 0x1000, 0);
        assertThat(s.gpas().get(1)).containsExactly(r1.address(), 0x1000, 0);
        assertThat(q.stats.chainErrors()).isZero();
    }

    @Test
    void followsAnIndirectTable() {
        SplitVirtQueue q = device(false, true);
        // indirect table of 3 descriptors in region 2
        MemorySegment t = r2;
        writeDesc(t, 0, 0x20000, 16, F_NEXT, 1);
        writeDesc(t, 1, 0x21000, 512, F_NEXT | F_WRITE, 2);
        writeDesc(t, 2, 0x22000, 1, F_WRITE, 0);
        driver.writeDescriptor(5, 0x100000, 48, F_INDIRECT, 0);
        driver.pushRawHead(5);
        assertThat(q.poll(record, 64)).isEqualTo(1);
        assertThat(seen.get(0).buffers()).isEqualTo(3);
        assertThat(seen.get(0).writable()).isEqualTo(513);
    }

    static void writeDesc(MemorySegment t, int i, long gpa, int len, int flags, int next) {
        t.set(ValueLayout.JAVA_LONG_UNALIGNED, i * 16L, gpa);
        t.set(ValueLayout.JAVA_INT_UNALIGNED, i * 16L + 8, len);
        t.set(ValueLayout.JAVA_SHORT_UNALIGNED, i * 16L + 12, (short) flags);
        t.set(ValueLayout.JAVA_SHORT_UNALIGNED, i * 16L + 14, (short) next);
    }

    @Test
    void acceptsAnIndirectTableAsLongAsTheQueue() {
        // Linux fills a whole queue-size table behind one ring slot: the pointer is not counted.
        SplitVirtQueue q = device(false, true);
        for (int i = 0; i < SIZE; i++) writeDesc(r2, i, 0x20000 + 16L * i, 16, i < SIZE - 1 ? F_NEXT : F_WRITE, i + 1);
        driver.writeDescriptor(0, 0x100000, SIZE * 16, F_INDIRECT, 0);
        driver.pushRawHead(0);
        assertThat(q.poll(record, 64)).isEqualTo(1);
        assertThat(q.lastError()).isEqualTo(ChainError.NONE);
        assertThat(seen.get(0).buffers()).isEqualTo(SIZE);
        assertThat(q.lastChain().descriptorCount()).isEqualTo(SIZE);
    }

    @Test
    void aDeviceMayAcceptLongerIndirectTablesThanTheQueueSize() {
        // A device advertising seg_max + 2 > queue size accepts tables that long, and no longer.
        SplitVirtQueue q = device(false, true);
        q.acceptChainsUpTo(2 * SIZE);
        assertThat(q.chainLimit()).isEqualTo(2 * SIZE);
        for (int i = 0; i < 2 * SIZE + 1; i++) writeDesc(r2, i, 0x20000, 16, F_NEXT, i + 1);
        writeDesc(r2, 2 * SIZE - 1, 0x20000, 16, 0, 0);
        driver.writeDescriptor(0, 0x100000, 2 * SIZE * 16, F_INDIRECT, 0);
        driver.pushRawHead(0);
        assertThat(q.poll(record, 64)).isEqualTo(1);
        assertThat(seen).hasSize(1);
        assertThat(seen.get(0).buffers()).isEqualTo(2 * SIZE);
        q.flush();
        driver.writeDescriptor(1, 0x100000, (2 * SIZE + 1) * 16, F_INDIRECT, 0);
        driver.pushRawHead(1);
        assertThat(q.poll(record, 64)).isEqualTo(1);
        assertThat(q.lastError()).isEqualTo(ChainError.INDIRECT_TABLE_TOO_LONG);
        // never below the queue size
        q.acceptChainsUpTo(1);
        assertThat(q.chainLimit()).isEqualTo(SIZE);
    }

    /**
     * Every malformed chain of the catalogue is refused for the expected reason without the
     * handler seeing it. Recoverable ones are returned with length 0 and the queue serves the
     * next good chain; ring-level ones stop the queue and return nothing.
     */
    @ParameterizedTest(name = "{0}")
    @MethodSource("io.jvhost.virtio.MalformedChains#catalogue")
    void refusesMalformedChains(MalformedChains.Case c) {
        SplitVirtQueue q = new SplitVirtQueue(0, SIZE, mem, r0.asSlice(0, descTableBytes(SIZE)), r0.asSlice(0x1000, availBytes(SIZE)),
                r0.asSlice(0x2000, usedBytes(SIZE)), false, c.indirect(), 0, Notifier.NONE, c.chainCapacity());
        SplitLayout ring = new SplitLayout();
        int head = c.layout().build(ring);
        driver.pushRawHead(head);
        int before = driver.usedIndex();
        q.poll(record, 64);
        q.flush();
        assertThat(seen).isEmpty();
        assertThat(q.lastError()).isEqualTo(c.expected());
        assertThat(q.stats.chainErrors()).isEqualTo(1);
        if (!c.queueStaysUsable()) {
            assertThat(q.isBroken()).isTrue();
            assertThat(q.brokenReason()).isEqualTo(c.expected());
            assertThat(driver.usedIndex()).as("nothing returned").isEqualTo(before);
            return;
        }
        assertThat(q.isBroken()).isFalse();
        assertThat(driver.usedIndex()).isEqualTo((before + 1) & 0xffff);
        assertThat(driver.rawUsed(before)).as("head returned with length 0").isEqualTo((long) head << 32);
        // and a good chain afterwards is served
        int good = head == SIZE - 1 ? 0 : SIZE - 1;
        driver.writeDescriptor(good, 0x20000, 16, 0, 0);
        driver.pushRawHead(good);
        q.poll(record, 64);
        q.flush();
        assertThat(seen).hasSize(1);
        assertThat(seen.get(0).head()).isEqualTo(good);
    }

    /** The split ring's way of laying out the catalogue's abstract descriptors. */
    final class SplitLayout implements MalformedChains.RingWriter {
        @Override public int queueSize() { return SIZE; }
        @Override public void descriptor(int index, long gpa, int len, int flags, int next) { driver.writeDescriptor(index, gpa, len, flags, next); }
        @Override public long indirectTableGpa() { return 0x100000; }
        @Override public void indirectEntry(int index, long gpa, int len, int flags, int next) { writeDesc(r2, index, gpa, len, flags, next); }
    }

    @Test
    void anAvailIndexJumpBreaksTheQueue() {
        SplitVirtQueue q = device(false, false);
        driver.forceAvailIndex(SIZE + 1);
        assertThat(q.poll(record, 64)).isZero();
        assertThat(q.isBroken()).isTrue();
        assertThat(q.brokenReason()).isEqualTo(ChainError.AVAIL_INDEX_JUMP);
        assertThat(driver.usedIndex()).isZero();
    }

    @Test
    void aHeadOutOfRangeBreaksTheQueue() {
        SplitVirtQueue q = device(false, false);
        driver.pushRawHead(SIZE + 3);
        q.poll(record, 64);
        assertThat(q.brokenReason()).isEqualTo(ChainError.HEAD_OUT_OF_RANGE);
    }

    @Test
    void aDuplicateHeadInFlightBreaksTheQueue() {
        SplitVirtQueue q = device(false, false);
        driver.writeDescriptor(2, 0x20000, 16, 0, 0);
        driver.pushRawHead(2);
        driver.pushRawHead(2);
        SplitVirtQueue.ChainHandler keep = (qq, c) -> seen.add(new Seen(c.head(), 0, 0, 0, List.of()));
        q.poll(keep, 64);
        assertThat(seen).hasSize(1);
        assertThat(q.brokenReason()).isEqualTo(ChainError.DUPLICATE_HEAD);
    }

    @Test
    void notifiesOnlyWhenTheDriverWantsAnInterrupt() {
        callFd = EventFd.create(true);
        SplitVirtQueue q = device(false, false);
        driver.wantInterrupts(false);
        driver.writeDescriptor(0, 0x20000, 16, 0, 0);
        driver.pushRawHead(0);
        q.poll(record, 64);
        assertThat(q.flush()).isZero();
        assertThat(EventFd.drain(callFd, scratch)).isZero();
        driver.wantInterrupts(true);
        driver.pushRawHead(0);
        q.poll(record, 64);
        assertThat(q.flush()).isEqualTo(1);
        assertThat(EventFd.drain(callFd, scratch)).isEqualTo(1);
    }

    @Test
    void publishesOncePerBatchByDefault() {
        SplitVirtQueue q = device(false, false);
        for (int i = 0; i < 8; i++) {
            driver.writeDescriptor(i, 0x20000, 16, 0, 0);
            driver.pushRawHead(i);
        }
        List<Integer> visible = new ArrayList<>();
        q.poll((qq, c) -> { qq.complete(c.head(), 0); visible.add(usedIdxInMemory()); }, 64);
        assertThat(visible).containsOnly(0);
        q.flush();
        assertThat(usedIdxInMemory()).isEqualTo(8);
    }

    /** The used index as the driver sees it in guest memory. */
    int usedIdxInMemory() {
        return Short.toUnsignedInt(r0.get(ValueLayout.JAVA_SHORT_UNALIGNED, 0x2000 + USED_IDX));
    }

    @Test
    void publishesHalfABatchEarlyAndDecidesTheInterruptOncePerFlush() {
        callFd = EventFd.create(true);
        SplitVirtQueue q = device(false, false);
        q.earlyPublish(true);
        driver.wantInterrupts(true);
        for (int i = 0; i < 8; i++) {
            driver.writeDescriptor(i, 0x20000, 16, 0, 0);
            driver.pushRawHead(i);
        }
        List<Integer> visible = new ArrayList<>();
        q.poll((qq, c) -> {
            visible.add(usedIdxInMemory());
            qq.complete(c.head(), 0);
        }, 64);
        assertThat(visible).as("the first half is released once it has completed, not before")
                .containsExactly(0, 0, 0, 0, 4, 4, 4, 4);
        assertThat(usedIdxInMemory()).as("the second half waits for the flush").isEqualTo(4);
        assertThat(q.flush()).isEqualTo(1);
        assertThat(usedIdxInMemory()).isEqualTo(8);
        assertThat(EventFd.drain(callFd, scratch)).as("one interrupt for the whole batch").isEqualTo(1);
        // A batch of one is published by the flush alone.
        driver.pushRawHead(0);
        visible.clear();
        q.poll((qq, c) -> { qq.complete(c.head(), 0); visible.add(usedIdxInMemory()); }, 64);
        assertThat(visible).containsExactly(8);
        assertThat(q.flush()).isEqualTo(1);
        assertThat(usedIdxInMemory()).isEqualTo(9);
    }

    @Test
    void eventIdxDecisionCoversTheEarlyPublishedHalf() {
        callFd = EventFd.create(true);
        DriverSplitQueue d = new DriverSplitQueue(SIZE, r0.asSlice(0), r0.asSlice(0x1000), r0.asSlice(0x2000), true);
        SplitVirtQueue q = device(true, false);
        q.earlyPublish(true);
        for (int i = 0; i < 8; i++) d.writeDescriptor(i, 0x20000, 16, 0, 0);
        d.pushRawHead(0);
        q.poll(record, 64);
        assertThat(q.flush()).as("first publication always signals").isEqualTo(1);
        // used_event = 2: the driver wants an interrupt once the used index passes 2, which
        // happens in the half published early (1 -> 5 of a batch of 8 ending at 9).
        r0.set(ValueLayout.JAVA_SHORT_UNALIGNED, 0x1000 + usedEventOffset(SIZE), (short) 2);
        for (int i = 0; i < 8; i++) d.pushRawHead(i);
        q.poll(record, 64);
        assertThat(q.flush()).as("the crossing in the early half still signals at the flush").isEqualTo(1);
        // used_event = 3 lies behind: no interrupt for the next batch.
        r0.set(ValueLayout.JAVA_SHORT_UNALIGNED, 0x1000 + usedEventOffset(SIZE), (short) 3);
        for (int i = 0; i < 4; i++) d.pushRawHead(i);
        q.poll(record, 64);
        assertThat(q.flush()).isZero();
        assertThat(EventFd.drain(callFd, scratch)).isEqualTo(2);
    }

    @Test
    void eventIdxSignalsWhenUsedEventIsCrossed() {
        callFd = EventFd.create(true);
        DriverSplitQueue d = new DriverSplitQueue(SIZE, r0.asSlice(0), r0.asSlice(0x1000), r0.asSlice(0x2000), true);
        SplitVirtQueue q = device(true, false);
        // used_event = 2: interrupt when the used index moves past 2
        r0.set(ValueLayout.JAVA_SHORT_UNALIGNED, 0x1000 + usedEventOffset(SIZE), (short) 2);
        d.writeDescriptor(0, 0x20000, 16, 0, 0);
        d.writeDescriptor(1, 0x20000, 16, 0, 0);
        d.writeDescriptor(2, 0x20000, 16, 0, 0);
        d.pushRawHead(0);
        q.poll(record, 64);
        assertThat(q.flush()).as("first publication always signals").isEqualTo(1);
        d.pushRawHead(1);
        q.poll(record, 64);
        assertThat(q.flush()).as("used 1->2 does not cross event 2").isZero();
        d.pushRawHead(2);
        q.poll(record, 64);
        assertThat(q.flush()).as("used 2->3 crosses event 2").isEqualTo(1);
        assertThat(EventFd.drain(callFd, scratch)).isEqualTo(2);
    }

    @Test
    void kickSuppressionAndRecheckBeforeSleep() {
        SplitVirtQueue q = device(false, false);
        q.disableNotifications();
        assertThat(r0.get(ValueLayout.JAVA_SHORT_UNALIGNED, 0x2000 + USED_FLAGS)).isEqualTo((short) USED_F_NO_NOTIFY);
        assertThat(q.enableNotifications()).as("nothing pending").isFalse();
        assertThat(r0.get(ValueLayout.JAVA_SHORT_UNALIGNED, 0x2000 + USED_FLAGS)).isZero();
        driver.writeDescriptor(0, 0x20000, 16, 0, 0);
        driver.pushRawHead(0);
        assertThat(q.enableNotifications()).as("work arrived: do not sleep").isTrue();
    }

    @Test
    void eventIdxKickSuppressionWritesAvailEvent() {
        SplitVirtQueue q = device(true, false);
        driver.writeDescriptor(0, 0x20000, 16, 0, 0);
        driver.pushRawHead(0);
        q.poll(record, 64);
        assertThat(q.enableNotifications()).isFalse();
        assertThat(r0.get(ValueLayout.JAVA_SHORT_UNALIGNED, 0x2000 + availEventOffset(SIZE))).isEqualTo((short) 1);
    }

    @Test
    void ringAddressesAreCheckedAtStart() {
        org.assertj.core.api.Assertions.assertThatThrownBy(() -> SplitVirtQueue.fromUserAddresses(0, SIZE, mem, r0.address() + 8,
                r0.address() + 0x1000, r0.address() + 0x2000, false, false, 0, Notifier.NONE, 64)).hasMessageContaining("16-byte aligned");
        org.assertj.core.api.Assertions.assertThatThrownBy(() -> SplitVirtQueue.fromUserAddresses(0, SIZE, mem, 0x1000,
                r0.address() + 0x1000, r0.address() + 0x2000, false, false, 0, Notifier.NONE, 64)).hasMessageContaining("not inside one guest memory region");
        org.assertj.core.api.Assertions.assertThatThrownBy(() -> SplitVirtQueue.fromUserAddresses(0, 24, mem, r0.address(),
                r0.address() + 0x1000, r0.address() + 0x2000, false, false, 0, Notifier.NONE, 64)).hasMessageContaining("power of two");
        // used ring straddling the end of a region
        org.assertj.core.api.Assertions.assertThatThrownBy(() -> SplitVirtQueue.fromUserAddresses(0, SIZE, mem, r0.address(),
                r0.address() + 0x1000, r0.address() + 0x20000 - 8, false, false, 0, Notifier.NONE, 64)).hasMessageContaining("used ring");
    }

    @Test
    void coalescingSpacesCallsAboveTheRateThreshold() throws Exception {
        callFd = EventFd.create(true);
        SplitVirtQueue q = device(false, false);
        q.interrupts().coalescing(1000, 100); // 1 ms base; threshold 100 IOPS = 1 request per 10 ms interval
        for (int i = 0; i < 11; i++) driver.writeDescriptor(i, 0x20000, 16, 0, 0);
        for (int i = 0; i < 11; i++) driver.pushRawHead(i);
        q.poll(record, 64);
        assertThat(q.flush()).as("first call goes out").isEqualTo(1);
        // 11 requests in the interval: the next calls are spaced by 1 ms * (11 - 1) / 1 = 10 ms
        driver.writeDescriptor(12, 0x20000, 16, 0, 0);
        driver.pushRawHead(12);
        q.poll(record, 64);
        assertThat(q.flush()).as("held back").isZero();
        assertThat(q.interrupts().deferred()).isTrue();
        assertThat(q.interrupts().flushDeferred()).isZero();
        assertThat(EventFd.drain(callFd, scratch)).isEqualTo(1);
        Thread.sleep(15);
        assertThat(q.interrupts().flushDeferred()).isEqualTo(1);
        assertThat(q.interrupts().deferred()).isFalse();
        assertThat(EventFd.drain(callFd, scratch)).isEqualTo(1);
        // turning coalescing off sends calls at once again
        q.interrupts().coalescing(0, 100);
        driver.writeDescriptor(13, 0x20000, 16, 0, 0);
        driver.pushRawHead(13);
        q.poll(record, 64);
        assertThat(q.flush()).isEqualTo(1);
    }
}
