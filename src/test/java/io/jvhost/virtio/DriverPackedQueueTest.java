package io.jvhost.virtio;

import io.jvhost.virtio.PackedTestDevice.Buffer;
import io.jvhost.virtio.PackedTestDevice.Chain;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.management.ManagementFactory;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static io.jvhost.virtio.DriverPackedQueue.*;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * The driver side of a packed ring against {@link PackedTestDevice}, a device written from the
 * spec alone, over a plain segment: layout of chains and indirect tables, wrap counters over
 * several laps with out-of-order completions, batching (nothing visible before publish), the
 * kick decision in each event suppression mode, and the id bookkeeping.
 */
class DriverPackedQueueTest {
    static final long RING = 0, DRIVER_EVENT = 0x1000, DEVICE_EVENT = 0x1040, TABLES = 0x2000;
    final Arena arena = Arena.ofConfined();
    final MemorySegment mem = arena.allocate(0x10000, 4096);

    @AfterEach
    void close() {
        arena.close();
    }

    DriverPackedQueue driver(int size, boolean eventIdx) {
        return new DriverPackedQueue(size, mem.asSlice(RING), mem.asSlice(DRIVER_EVENT), mem.asSlice(DEVICE_EVENT), eventIdx);
    }

    PackedTestDevice device(int size) {
        return new PackedTestDevice(size, mem.asSlice(RING, ringBytes(size)), mem.asSlice(DRIVER_EVENT, 4), mem.asSlice(DEVICE_EVENT, 4), mem);
    }

    @Test
    void aChainIsLaidOutInConsecutiveSlotsWithOneIdAndNextOnAllButTheLast() {
        DriverPackedQueue d = driver(8, false);
        PackedTestDevice dev = device(8);
        assertThat(d.begin(3)).isTrue();
        d.add(0x100, 16, false);
        d.add(0x200, 4096, true);
        d.add(0x300, 1, true);
        int id = d.end();
        d.publish();
        Chain c = dev.take();
        assertThat(c.id()).isEqualTo(id);
        assertThat(c.slots()).isEqualTo(3);
        assertThat(c.buffers()).containsExactly(new Buffer(0x100, 16, false), new Buffer(0x200, 4096, true), new Buffer(0x300, 1, true));
        assertThat(dev.take()).isNull();
        assertThat(d.freeDescriptors()).isEqualTo(5);
        dev.complete(c, 4097);
        List<long[]> got = new ArrayList<>();
        assertThat(d.pollUsed((h, len) -> got.add(new long[] {h, len}))).isEqualTo(1);
        assertThat(got.get(0)).containsExactly(id, 4097);
        assertThat(d.freeDescriptors()).isEqualTo(8);
        assertThat(d.usedPosition()).isEqualTo(3);
    }

    @Test
    void nothingIsVisibleBeforePublishAndTheWholeBatchAfterIt() {
        DriverPackedQueue d = driver(16, false);
        PackedTestDevice dev = device(16);
        for (int i = 0; i < 4; i++) {
            d.begin(2);
            d.add(0x1000L * i, 16, false);
            d.add(0x1000L * i + 16, 1, true);
            d.end();
        }
        // the first head's flags are written last, by publish(): the device stops there
        assertThat(dev.take()).isNull();
        d.publish();
        assertThat(dev.takeAll()).hasSize(4);
    }

    @Test
    void aChainThatStraddlesTheRingEndMarksItsTailWithTheFlippedWrapCounter() {
        DriverPackedQueue d = driver(4, false);
        PackedTestDevice dev = device(4);
        // move both sides to position 3
        d.begin(3);
        for (int i = 0; i < 3; i++) d.add(i, 1, false);
        d.end();
        d.publish();
        dev.complete(dev.take(), 0);
        d.pollUsed((h, l) -> {});
        assertThat(d.availPosition()).isEqualTo(3);
        d.begin(3);
        d.add(0xa0, 10, false);
        d.add(0xb0, 11, true);
        d.add(0xc0, 12, true);
        d.end();
        d.publish();
        assertThat(d.availWrap()).isFalse();
        Chain c = dev.take(); // the device checks slot 3 for wrap 1 and slots 0, 1 for wrap 0
        assertThat(c.buffers()).extracting(Buffer::addr).containsExactly(0xa0L, 0xb0L, 0xc0L);
        assertThat(dev.availPos).isEqualTo(2);
        assertThat(dev.availWrap).isFalse();
        dev.complete(c, 5);
        int[] n = {0};
        d.pollUsed((h, l) -> n[0]++);
        assertThat(n[0]).isEqualTo(1);
        assertThat(d.usedPosition()).isEqualTo(2);
        assertThat(d.usedWrap()).isFalse();
    }

    @Test
    void indirectChainsTakeOneSlotAndPointAtTheirTable() {
        DriverPackedQueue d = driver(4, false);
        PackedTestDevice dev = device(4);
        MemorySegment table = mem.asSlice(TABLES, 48);
        writeTableEntry(table, 0, 0x100, 16, false);
        writeTableEntry(table, 1, 0x200, 512, true);
        writeTableEntry(table, 2, 0x300, 1, true);
        d.begin(1);
        d.addIndirect(TABLES, 3);
        int id = d.end();
        assertThatThrownBy(() -> {
            d.begin(1);
            d.addIndirect(TABLES, 3);
            d.add(0x400, 1, false);
        }).isInstanceOf(IllegalStateException.class);
        d.publish();
        Chain c = dev.take();
        assertThat(c.indirect()).isTrue();
        assertThat(c.slots()).isEqualTo(1);
        assertThat(c.id()).isEqualTo(id);
        assertThat(c.buffers()).containsExactly(new Buffer(0x100, 16, false), new Buffer(0x200, 512, true), new Buffer(0x300, 1, true));
        assertThat(mem.get(LittleEndian.U32, RING + DESC_LEN)).as("ring descriptor length: 3 table entries").isEqualTo(48);
        setTableEntryWritable(table, 1, false);
        assertThat(table.get(LittleEndian.U16, 16 + DESC_FLAGS)).isZero();
    }

    @Test
    void pinnedChainsAreRewrittenOnEveryOfferAndKeepTheirIdAndDirection() {
        DriverPackedQueue d = driver(8, false);
        PackedTestDevice dev = device(8);
        int[] ids = new int[2];
        for (int s = 0; s < 2; s++) {
            d.begin(3);
            d.add(0x1000L * s, 16, false);
            d.add(0x1000L * s + 0x100, 4096, true);
            d.add(0x1000L * s + 16, 1, true);
            ids[s] = d.endPinned();
        }
        assertThat(d.freeDescriptors()).as("pinned chains take no slot until offered").isEqualTo(8);
        Map<Integer, Integer> offers = new HashMap<>();
        for (int round = 0; round < 20; round++) { // 6 slots a round on 8: wraps again and again
            boolean write = round % 3 == 0;
            for (int s = 0; s < 2; s++) {
                d.setWritable(ids[s], 1, !write);
                d.offer(ids[s]);
            }
            assertThatThrownBy(() -> d.offer(ids[0])).hasMessageContaining("in flight");
            d.publish();
            List<Chain> cs = dev.takeAll();
            assertThat(cs).hasSize(2);
            for (Chain c : cs) {
                int s = c.id() == ids[0] ? 0 : 1;
                assertThat(c.id()).isEqualTo(ids[s]);
                assertThat(c.buffers()).containsExactly(new Buffer(0x1000L * s, 16, false), new Buffer(0x1000L * s + 0x100, 4096, !write),
                        new Buffer(0x1000L * s + 16, 1, true));
            }
            Collections.reverse(cs);
            for (Chain c : cs) dev.complete(c, 1);
            d.pollUsed((h, len) -> offers.merge(h, 1, Integer::sum));
            assertThat(d.freeDescriptors()).isEqualTo(8);
        }
        assertThat(offers).containsEntry(ids[0], 20).containsEntry(ids[1], 20);
        assertThat(d.inFlight()).isZero();
    }

    @Test
    void severalLapsWithOutOfOrderCompletionsReturnEveryBufferOnce() {
        for (int size : new int[] {5, 8, 13, 64}) {
            mem.fill((byte) 0);
            DriverPackedQueue d = driver(size, false);
            PackedTestDevice dev = device(size);
            Random rnd = new Random(size);
            Map<Integer, List<Buffer>> expect = new HashMap<>();
            List<Chain> deviceHolds = new ArrayList<>();
            long completed = 0, offered = 0;
            int[] lastLen = new int[size];
            List<Integer> back = new ArrayList<>();
            for (int step = 0; step < 400; step++) {
                // offer what fits: chains of 1..3, direct
                while (true) {
                    int n = 1 + rnd.nextInt(Math.min(3, size));
                    if (!d.begin(n)) break;
                    List<Buffer> bufs = new ArrayList<>();
                    for (int k = 0; k < n; k++) {
                        Buffer b = new Buffer(rnd.nextInt(1 << 20) * 16L, 1 + rnd.nextInt(4096), rnd.nextBoolean());
                        d.add(b.addr(), b.len(), b.writable());
                        bufs.add(b);
                    }
                    int id = d.end();
                    assertThat(expect.put(id, bufs)).as("id %d handed out twice", id).isNull();
                    offered++;
                    if (rnd.nextInt(4) == 0) break;
                }
                d.publish();
                for (Chain c : dev.takeAll()) {
                    assertThat(c.buffers()).isEqualTo(expect.get(c.id()));
                    deviceHolds.add(c);
                }
                // complete a random subset in random order
                Collections.shuffle(deviceHolds, rnd);
                int k = rnd.nextInt(deviceHolds.size() + 1);
                for (int i = 0; i < k; i++) {
                    Chain c = deviceHolds.remove(deviceHolds.size() - 1);
                    dev.complete(c, c.id() * 7 + 1);
                }
                back.clear();
                completed += d.pollUsed((id, len) -> {
                    assertThat(len).isEqualTo(id * 7 + 1);
                    assertThat(expect.remove(id)).isNotNull();
                    back.add(id);
                });
                assertThat(back).hasSize(k);
                int held = deviceHolds.stream().mapToInt(Chain::slots).sum();
                assertThat(d.freeDescriptors()).isEqualTo(size - held);
                assertThat(d.usedPosition()).isEqualTo(dev.usedPos);
                assertThat(d.usedWrap()).isEqualTo(dev.usedWrap);
            }
            for (Chain c : deviceHolds) dev.complete(c, 0);
            completed += d.pollUsed((id, len) -> expect.remove(id));
            assertThat(expect).isEmpty();
            assertThat(completed).isEqualTo(offered);
            assertThat(offered).as("several laps of a %d-slot ring", size).isGreaterThan(4L * size);
            assertThat(d.freeDescriptors()).isEqualTo(size);
        }
    }

    @Test
    void kicksFollowTheDevicesEventSuppression() {
        DriverPackedQueue d = driver(8, true);
        PackedTestDevice dev = device(8);
        assertThat(d.needsKick()).as("nothing added").isFalse();
        offer(d, 2);
        dev.kickMode(EVENT_ENABLE, 0, false);
        assertThat(d.needsKick()).isTrue();
        offer(d, 2);
        dev.kickMode(EVENT_DISABLE, 0, true);
        assertThat(d.needsKick()).isFalse();
        // DESC: positions 4..5 (wrap 1) made available now
        offer(d, 2);
        dev.kickMode(EVENT_DESC, 5, true);
        assertThat(d.needsKick()).as("event at 5 was made available").isTrue();
        offer(d, 2); // 6..7, then the avail wrap counter flips
        dev.kickMode(EVENT_DESC, 0, false);
        assertThat(d.needsKick()).as("event at 0 of the next lap not reached").isFalse();
        dev.kickMode(EVENT_DESC, 3, true);
        offer(d, 1); // slot 0 of the wrap-0 lap: the event (3, wrap 1) lies in the lap before, behind this batch
        assertThat(d.needsKick()).isFalse();
        offer(d, 3); // slots 1..3 of wrap 0
        dev.kickMode(EVENT_DESC, 3, false);
        assertThat(d.needsKick()).as("event at 3 of this lap").isTrue();
        // a batch across the wrap: 4..7 of wrap 0 and 0..1 of wrap 1, event in the old lap
        offer(d, 6);
        dev.kickMode(EVENT_DESC, 6, false);
        assertThat(d.needsKick()).isTrue();
        offer(d, 2);
        dev.kickMode(EVENT_DESC, 2, true);
        assertThat(d.needsKick()).isTrue();
        // without EVENT_IDX a DESC request is not the device's to make: kick anyway
        mem.fill((byte) 0);
        DriverPackedQueue plain = driver(8, false);
        offer(plain, 1);
        dev.kickMode(EVENT_DESC, 7, true);
        assertThat(plain.needsKick()).isTrue();
    }

    /** Offers {@code n} one-descriptor chains and lets them complete at once (so slots stay free). */
    private void offer(DriverPackedQueue d, int n) {
        for (int i = 0; i < n; i++) {
            assertThat(d.begin(1)).isTrue();
            d.add(0x100, 1, true);
            d.end();
        }
        d.publish();
        // complete behind the scenes: write used descriptors in place as a device would
        PackedTestDevice dev = new PackedTestDevice(d.size(), mem.asSlice(RING, ringBytes(d.size())), mem.asSlice(DRIVER_EVENT, 4),
                mem.asSlice(DEVICE_EVENT, 4), mem);
        dev.availPos = dev.usedPos = d.usedPosition();
        dev.availWrap = dev.usedWrap = d.usedWrap();
        for (Chain c : dev.takeAll()) dev.complete(c, 0);
        d.pollUsed((h, l) -> {});
    }

    @Test
    void whatTheDeviceWroteBeforeTheDriverWasBuiltIsKept() {
        // a device that starts polling as soon as the ring is set up writes DISABLE first (SPDK)
        PackedTestDevice dev = device(8);
        dev.kickMode(EVENT_DISABLE, 0, false);
        DriverPackedQueue d = driver(8, true);
        offer(d, 3);
        assertThat(d.needsKick()).isFalse();
    }

    @Test
    void ourEventSuppressionSaysWhetherWeWantCalls() {
        DriverPackedQueue d = driver(8, true);
        PackedTestDevice dev = device(8);
        d.wantInterrupts(false);
        assertThat(dev.driverEventFlags()).isEqualTo(EVENT_DISABLE);
        d.wantInterrupts(true);
        assertThat(dev.driverEventFlags()).isEqualTo(EVENT_ENABLE);
    }

    @Test
    void aDeviceReturningAnIdNotInFlightIsCaught() {
        DriverPackedQueue d = driver(8, false);
        PackedTestDevice dev = device(8);
        d.begin(1);
        d.add(0x100, 1, true);
        int id = d.end();
        d.publish();
        Chain c = dev.take();
        dev.complete(new Chain(id + 1, 1, false, List.of()), 0);
        assertThatThrownBy(() -> d.pollUsed((h, l) -> {})).isInstanceOf(IllegalStateException.class).hasMessageContaining("not in flight");
        assertThat(c.id()).isEqualTo(id);
    }

    @Test
    void vringBaseEncodesPositionAndWrapCounter() {
        DriverPackedQueue d = driver(4, false);
        assertThat(d.vringBase()).isEqualTo(0x8000);
        offer(d, 3);
        assertThat(d.vringBase()).isEqualTo(0x8003);
        offer(d, 2);
        assertThat(d.vringBase()).isEqualTo(1);
    }

    @Test
    void pinnedOffersAndPollsAllocateNothing() {
        DriverPackedQueue d = driver(256, true);
        int[] ids = new int[32];
        for (int s = 0; s < 32; s++) {
            d.begin(3);
            d.add(0x1000L * s, 16, false);
            d.add(0x1000L * s + 0x100, 4096, true);
            d.add(0x1000L * s + 16, 1, true);
            ids[s] = d.endPinned();
        }
        int[] count = {0};
        DriverQueue.UsedHandler h = (id, len) -> {
            count[0]++;
            d.offer(id);
        };
        PackedTestDevice dev = device(256);
        for (int id : ids) d.offer(id);
        d.publish();
        var mx = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        Runnable round = () -> {
            // a device that completes in place without allocating: mark each taken head used
            while (dev.completeInOrder()) { }
            d.pollUsed(h);
            d.publish();
            d.needsKick();
        };
        for (int i = 0; i < 20_000; i++) round.run(); // warm up (JIT, escape analysis)
        long before = mx.getThreadAllocatedBytes(Thread.currentThread().threadId());
        for (int i = 0; i < 10_000; i++) round.run();
        long bytes = mx.getThreadAllocatedBytes(Thread.currentThread().threadId()) - before;
        assertThat(count[0]).isEqualTo(30_000 * 32);
        assertThat(bytes).as("bytes allocated over 320k requests").isLessThan(4096);
    }
}
