package io.jvhost.virtio;

import io.jvhost.memory.GuestMemory;
import io.jvhost.memory.MemoryRegion;
import io.jvhost.virtio.TestPackedDriver.Buf;
import io.jvhost.virtio.TestPackedDriver.Used;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.function.Consumer;
import java.util.stream.Stream;

import static io.jvhost.virtio.PackedRing.*;
import static io.jvhost.virtio.TestPackedDriver.r;
import static io.jvhost.virtio.TestPackedDriver.w;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * The device side of the packed ring over rings laid out in plain memory by {@link
 * TestPackedDriver}: chains and buffer ids, both wrap counters over several laps, out-of-order
 * completion, indirect tables, event suppression in its three modes, state()/restore, dirty
 * logging's writable ranges after the driver reused a chain's slots, and the malformed chains.
 */
class PackedVirtQueueTest {
    // Same guest memory as SplitVirtQueueTest: [0x10000, 0x30000) and [0x30000, 0x50000) adjacent, and [0x100000, 0x110000).
    final Arena arena = Arena.ofConfined();
    final MemorySegment r0 = arena.allocate(0x20000, 4096);
    final MemorySegment r1 = arena.allocate(0x20000, 4096);
    final MemorySegment r2 = arena.allocate(0x10000, 4096);
    final GuestMemory mem = new GuestMemory(List.of(
            MemoryRegion.ofSegment(0x10000, r0.address(), r0),
            MemoryRegion.ofSegment(0x30000, r1.address(), r1),
            MemoryRegion.ofSegment(0x100000, r2.address(), r2)));
    static final long RAM = 0x20000;
    static final long TABLE_GPA = 0x100000;
    int calls;
    final Notifier counting = () -> {
        calls++;
        return true;
    };

    record Seen(int head, int buffers, long readable, long writable, List<long[]> gpas) {}

    final List<Seen> seen = new ArrayList<>();
    final List<Integer> heads = new ArrayList<>();
    /** Records the chain and keeps it in flight (complete it later). */
    final VirtQueue.ChainHandler keep = (q, c) -> {
        List<long[]> g = new ArrayList<>();
        for (int i = 0; i < c.bufferCount(); i++) {
            assertThat(c.offset(i) + c.length(i)).isLessThanOrEqualTo(c.segment(i).byteSize());
            g.add(new long[] {c.segment(i).address() + c.offset(i), c.length(i), c.writable(i) ? 1 : 0});
        }
        seen.add(new Seen(c.head(), c.bufferCount(), c.readableBytes(), c.writableBytes(), g));
        heads.add(c.head());
    };
    /** Records the chain and completes it at once with its writable byte count. */
    final VirtQueue.ChainHandler echo = (q, c) -> {
        keep.onChain(q, c);
        q.complete(c.head(), (int) c.writableBytes());
    };

    @AfterEach
    void close() {
        arena.close();
    }

    TestPackedDriver driver(int size) {
        return new TestPackedDriver(size, r0.asSlice(0, ringBytes(size)), r0.asSlice(0x10000 - 0x10000 + 0x8000, 4), r0.asSlice(0x8100, 4));
    }

    PackedVirtQueue device(TestPackedDriver d, boolean eventIdx, boolean indirect, int state, int capacity) {
        return new PackedVirtQueue(0, d.size, mem, d.ring, d.driverArea, d.deviceArea, eventIdx, indirect, state, counting, capacity);
    }

    PackedVirtQueue device(TestPackedDriver d) {
        return device(d, false, true, 0x8000, 64);
    }

    @Test
    void servesAChainAndReturnsItsBufferId() {
        TestPackedDriver d = driver(8);
        PackedVirtQueue q = device(d);
        d.add(0x1234, r(RAM, 16), w(RAM + 0x1000, 512), w(RAM + 0x2000, 1));
        assertThat(q.hasPending()).isTrue();
        assertThat(q.poll(echo, 64)).isEqualTo(1);
        assertThat(seen).hasSize(1);
        Seen s = seen.get(0);
        assertThat(s.buffers()).isEqualTo(3);
        assertThat(s.readable()).isEqualTo(16);
        assertThat(s.writable()).isEqualTo(513);
        assertThat(s.gpas().get(0)[0]).isEqualTo(r0.address() + (RAM - 0x10000));
        assertThat(s.head()).isBetween(0, 7);
        assertThat(d.poll()).as("nothing visible before flush").isNull();
        assertThat(q.flush()).isEqualTo(1);
        assertThat(calls).isEqualTo(1);
        Used u = d.poll();
        assertThat(u).isNotNull();
        assertThat(u.slot()).isZero();
        assertThat(u.id()).isEqualTo(0x1234);
        assertThat(u.len()).isEqualTo(513);
        assertThat(u.flags() & (F_AVAIL | F_USED | F_WRITE)).isEqualTo(F_AVAIL | F_USED | F_WRITE);
        assertThat(q.inFlight()).isZero();
        assertThat(q.state()).isEqualTo(3 | 0x8000);
        assertThat(q.hasPending()).isFalse();
    }

    /** Chains of 1..3 descriptors over 5 laps: both wrap counters flip at the ring's end, ids come back. */
    @Test
    void wrapsAroundSeveralLapsWithBothCounters() {
        int size = 7; // not a power of two: packed rings allow it
        TestPackedDriver d = driver(size);
        PackedVirtQueue q = device(d, false, true, 0x8000, 64);
        Random rnd = new Random(7);
        int descs = 0;
        int id = 0;
        while (descs < 5 * size) {
            int n = 1 + rnd.nextInt(3);
            Buf[] bufs = new Buf[n];
            for (int i = 0; i < n; i++) bufs[i] = i == n - 1 ? w(RAM + 0x100L * i, 8) : r(RAM + 0x100L * i, 8);
            int myId = id++ & 0x7fff;
            d.add(myId, bufs);
            assertThat(q.poll(echo, 64)).isEqualTo(1);
            q.flush();
            Used u = d.poll();
            assertThat(u).isNotNull();
            assertThat(u.id()).isEqualTo(myId);
            assertThat(u.len()).isEqualTo(8);
            descs += n;
            assertThat(q.state()).as("state after %d descriptors", descs).isEqualTo(PackedRing.state(descs % size, (descs / size) % 2 == 0));
            assertThat(q.usedState()).isEqualTo(q.state());
        }
        assertThat(d.availWrap).isEqualTo(d.usedWrap);
        assertThat(q.stats.chainErrors()).isZero();
    }

    /**
     * Three chains completed in the reverse order: used descriptors go in completion order from
     * the used position, each skipping its chain's ring descriptors, and one publish shows all.
     */
    @Test
    void outOfOrderCompletionWritesUsedDescriptorsInRingOrder() {
        TestPackedDriver d = driver(8);
        PackedVirtQueue q = device(d);
        d.add(10, r(RAM, 4), w(RAM + 0x100, 4));            // slots 0-1
        d.add(11, w(RAM + 0x200, 4));                        // slot 2
        d.add(12, r(RAM, 4), r(RAM, 4), w(RAM + 0x300, 4)); // slots 3-5
        assertThat(q.poll(keep, 64)).isEqualTo(3);
        assertThat(heads).doesNotHaveDuplicates();
        q.complete(heads.get(2), 3);
        q.complete(heads.get(0), 1);
        assertThat(d.poll()).as("the batch's first flags are held back until flush").isNull();
        assertThat(q.flush()).isEqualTo(1);
        q.complete(heads.get(1), 2);
        q.flush();
        Used a = d.poll();
        Used b = d.poll();
        Used c = d.poll();
        assertThat(List.of(a.slot(), a.id(), a.len())).containsExactly(0, 12, 3);
        assertThat(List.of(b.slot(), b.id(), b.len())).containsExactly(3, 10, 1);
        assertThat(List.of(c.slot(), c.id(), c.len())).containsExactly(5, 11, 2);
        assertThat(d.poll()).isNull();
        assertThat(q.usedState()).isEqualTo(q.state()).isEqualTo(6 | 0x8000);
        assertThat(calls).isEqualTo(2);
    }

    @Test
    void indirectTablesAreWalkedAndCountedAsOneRingDescriptor() {
        TestPackedDriver d = driver(4);
        PackedVirtQueue q = device(d);
        TestPackedDriver.tableEntry(r2, 0, r(RAM, 16));
        TestPackedDriver.tableEntry(r2, 1, w(0x2f000, 0x2000)); // crosses into the adjacent region: split in two
        TestPackedDriver.tableEntry(r2, 2, w(RAM + 0x4000, 1));
        d.addIndirect(77, TABLE_GPA, 3);
        d.add(78, w(RAM, 1));
        assertThat(q.poll(echo, 64)).isEqualTo(2);
        assertThat(seen.get(0).buffers()).isEqualTo(4);
        assertThat(seen.get(0).writable()).isEqualTo(0x2001);
        q.flush();
        Used u = d.poll();
        assertThat(u.id()).isEqualTo(77);
        assertThat(u.slot()).isZero();
        assertThat(d.poll().slot()).as("the indirect chain took one slot").isEqualTo(1);
        // Without the feature the same chain is refused.
        TestPackedDriver d2 = driver(4);
        r0.asSlice(0, ringBytes(4)).fill((byte) 0);
        PackedVirtQueue q2 = device(d2, false, false, 0x8000, 64);
        d2.addIndirect(5, TABLE_GPA, 3);
        q2.poll(echo, 64);
        q2.flush();
        assertThat(q2.lastError()).isEqualTo(ChainError.INDIRECT_NOT_NEGOTIATED);
        Used refused = d2.poll();
        assertThat(refused.id()).isEqualTo(5);
        assertThat(refused.len()).isZero();
        assertThat(refused.flags() & F_WRITE).isZero();
    }

    /**
     * A chain still in flight after the driver reused its ring slots (a later chain completed
     * first): dirty logging still finds its writable buffers, not the new chain's.
     */
    @Test
    void writableRangesSurviveTheDriverReusingTheSlots() {
        TestPackedDriver d = driver(4);
        PackedVirtQueue q = device(d);
        List<long[]> logged = new ArrayList<>();
        q.hooks(new QueueHooks() {
            @Override
            public void completed(VirtQueue queue, int head, int len, long ringOffset, int bytes) {
                queue.writableRanges(head, (gpa, l) -> logged.add(new long[] {gpa, l, ringOffset}));
            }
        });
        d.add(1, r(RAM, 16), w(RAM + 0x1000, 512));     // A: slots 0-1
        TestPackedDriver.tableEntry(r2, 0, w(RAM + 0x5000, 64));
        d.add(2, w(RAM + 0x2000, 8), w(RAM + 0x3000, 8)); // B: slots 2-3
        q.poll(keep, 64);
        int a = heads.get(0), b = heads.get(1);
        q.complete(b, 16);
        q.flush();
        assertThat(d.poll().id()).isEqualTo(2);
        assertThat(logged).extracting(x -> x[0]).containsExactlyInAnyOrder(RAM + 0x2000, RAM + 0x3000);
        logged.clear();
        // The driver now has two free slots: 0 and 1, where A's descriptors were.
        d.addIndirect(3, TABLE_GPA, 1);
        d.add(4, w(RAM + 0x7000, 4));
        assertThat(q.poll(keep, 64)).isEqualTo(2);
        int c = heads.get(2);
        assertThat(c).isNotEqualTo(a);
        q.complete(a, 512);
        assertThat(logged).extracting(x -> x[0]).containsExactly(RAM + 0x1000);
        assertThat(logged.get(0)[1]).isEqualTo(512);
        assertThat(logged.get(0)[2]).as("A's used descriptor goes at slot 2").isEqualTo(2 * 16L);
        logged.clear();
        q.complete(c, 64);
        assertThat(logged).extracting(x -> x[0]).containsExactly(RAM + 0x5000);
        q.flush();
        assertThat(d.poll().id()).isEqualTo(1);
        assertThat(d.poll().id()).isEqualTo(3);
    }

    /**
     * Dirty logging of a packed ring (RingDirtyLogger.packed): the written buffers (direct and in
     * an indirect table), the descriptor ring page the used descriptor went to and the device
     * area; not the readable buffers.
     */
    @Test
    void theDirtyLogHasTheWrittenPagesAndTheDescriptorRing() {
        MemorySegment bitmap = arena.allocate(64, 8); // 512 pages: gpa up to 2 MiB
        io.jvhost.memory.DirtyLog log = new io.jvhost.memory.DirtyLog(bitmap);
        TestPackedDriver d = driver(8);
        PackedVirtQueue q = device(d);
        q.hooks(RingDirtyLogger.packed(log, 0x10000, 0x18100)); // ring at gpa 0x10000, device area at 0x18100
        d.add(1, r(0x2e000, 16), w(0x21800, 8192), w(0x2d010, 1));
        TestPackedDriver.tableEntry(r2, 0, r(0x2f000, 16));
        TestPackedDriver.tableEntry(r2, 1, w(0x26000, 4096));
        d.addIndirect(2, TABLE_GPA, 2);
        q.poll(keep, 64);
        assertThat(bitmap.get(java.lang.foreign.ValueLayout.JAVA_LONG, 0)).as("nothing before completion").isZero();
        q.complete(heads.get(0), 8193);
        q.complete(heads.get(1), 4096);
        q.flush();
        for (long page : new long[] {0x21, 0x22, 0x23, 0x2d, 0x26, 0x10, 0x18}) assertThat(log.isMarked(page)).as("page 0x%x", page).isTrue();
        for (long page : new long[] {0x2e, 0x2f, 0x20, 0x24, 0x11}) assertThat(log.isMarked(page)).as("page 0x%x", page).isFalse();
    }

    @Test
    void driverEventSuppressionEnableDisable() {
        TestPackedDriver d = driver(8);
        PackedVirtQueue q = device(d);
        d.driverEvent(EVENT_FLAGS_DISABLE, 0);
        d.add(1, w(RAM, 1));
        q.poll(echo, 64);
        assertThat(q.flush()).isZero();
        assertThat(calls).isZero();
        assertThat(d.poll()).as("published all the same").isNotNull();
        d.driverEvent(EVENT_FLAGS_ENABLE, 0);
        d.add(2, w(RAM, 1));
        q.poll(echo, 64);
        assertThat(q.flush()).isEqualTo(1);
        assertThat(calls).isEqualTo(1);
        // DESC without EVENT_IDX negotiated is taken as ENABLE.
        d.driverEvent(EVENT_FLAGS_DESC, PackedRing.state(7, true));
        d.add(3, w(RAM, 1));
        q.poll(echo, 64);
        assertThat(q.flush()).isEqualTo(1);
    }

    /** EVENT_IDX: the driver asks for a call once the used position passes a given descriptor, across the wrap. */
    @Test
    void driverEventSuppressionDescModeAcrossTheWrap() {
        TestPackedDriver d = driver(4);
        PackedVirtQueue q = device(d, true, true, 0x8000, 64);
        // First publish always notifies (nothing signalled yet).
        d.add(1, w(RAM, 1));
        q.poll(echo, 64);
        assertThat(q.flush()).isEqualTo(1);
        d.poll();
        // Ask for a call when the descriptor at slot 2 (this lap) is used.
        d.driverEvent(EVENT_FLAGS_DESC, PackedRing.state(2, true));
        d.add(2, w(RAM, 1)); // slot 1
        q.poll(echo, 64);
        assertThat(q.flush()).as("used position 2 has not passed slot 2").isZero();
        d.poll();
        d.add(3, w(RAM, 1)); // slot 2
        q.poll(echo, 64);
        assertThat(q.flush()).as("slot 2 used").isEqualTo(1);
        d.poll();
        // Event at slot 1 of the next lap (wrap counter 0): not at slot 3, yes once slot 1 of lap 2 is used.
        d.driverEvent(EVENT_FLAGS_DESC, PackedRing.state(1, false));
        d.add(4, w(RAM, 1)); // slot 3
        q.poll(echo, 64);
        assertThat(q.flush()).isZero();
        d.poll();
        d.add(5, w(RAM, 1)); // slot 0, lap 2
        q.poll(echo, 64);
        assertThat(q.flush()).isZero();
        d.poll();
        d.add(6, w(RAM, 1), w(RAM, 1)); // slots 1-2: passes slot 1
        q.poll(echo, 64);
        assertThat(q.flush()).isEqualTo(1);
        assertThat(calls).isEqualTo(3);
    }

    /** An event named in the next lap (other wrap counter) is not reached by using the same slot number in this lap. */
    @Test
    void driverEventInTheNextLapIsNotMistakenForThisOne() {
        TestPackedDriver d = driver(4);
        PackedVirtQueue q = device(d, true, true, 0x8000, 64);
        d.add(1, w(RAM, 1)); // slot 0
        q.poll(echo, 64);
        assertThat(q.flush()).isEqualTo(1);
        d.poll();
        d.driverEvent(EVENT_FLAGS_DESC, PackedRing.state(1, false)); // slot 1 of the next lap
        d.add(2, w(RAM, 1)); // slot 1, this lap
        q.poll(echo, 64);
        assertThat(q.flush()).isZero();
        d.poll();
        d.add(3, w(RAM, 1), w(RAM, 1), w(RAM, 1)); // slots 2, 3, 0 (next lap): not yet slot 1
        q.poll(echo, 64);
        assertThat(q.flush()).isZero();
        d.poll();
        d.add(4, w(RAM, 1)); // slot 1, next lap
        q.poll(echo, 64);
        assertThat(q.flush()).isEqualTo(1);
    }

    @Test
    void deviceEventSuppressionAsksForKicksOrNot() {
        TestPackedDriver d = driver(8);
        PackedVirtQueue q = device(d);
        q.disableNotifications();
        assertThat(d.deviceEventFlags()).isEqualTo(EVENT_FLAGS_DISABLE);
        assertThat(q.enableNotifications()).isFalse();
        assertThat(d.deviceEventFlags()).isEqualTo(EVENT_FLAGS_ENABLE);
        q.disableNotifications();
        d.add(1, w(RAM, 1));
        assertThat(q.enableNotifications()).as("a chain arrived while kicks were off").isTrue();

        TestPackedDriver d2 = driver(8);
        r0.asSlice(0, ringBytes(8)).fill((byte) 0);
        PackedVirtQueue q2 = device(d2, true, true, 0x8000, 64);
        d2.add(1, w(RAM, 1), w(RAM, 1), w(RAM, 1));
        q2.poll(echo, 64);
        q2.disableNotifications();
        assertThat(d2.deviceEventFlags()).isEqualTo(EVENT_FLAGS_DISABLE);
        assertThat(q2.enableNotifications()).isFalse();
        assertThat(d2.deviceEventFlags()).isEqualTo(EVENT_FLAGS_DESC);
        assertThat(d2.deviceEventOffWrap()).as("kick at the next slot we read").isEqualTo(3 | 0x8000);
    }

    /** GET_VRING_BASE's word restarts the ring where it stopped, wrap counter included. */
    @Test
    void stateRoundTripsThroughARestart() {
        TestPackedDriver d = driver(5);
        PackedVirtQueue q = device(d);
        for (int i = 0; i < 7; i++) {
            d.add(i, r(RAM, 1), w(RAM, 1));
            q.poll(echo, 64);
            q.flush();
            d.poll();
        }
        int state = q.state();
        assertThat(state).as("slot 4 after two flips of the wrap counter").isEqualTo(PackedRing.state(14 % 5, true));
        PackedVirtQueue again = device(d, false, true, state, 64);
        assertThat(again.anyUsed()).isTrue();
        assertThat(again.hasPending()).isFalse();
        d.add(99, w(RAM, 1), w(RAM, 1));
        assertThat(again.poll(echo, 64)).isEqualTo(1);
        again.flush();
        Used u = d.poll();
        assertThat(u.id()).isEqualTo(99);
        assertThat(u.slot()).isEqualTo(4);
        assertThat(again.state()).isEqualTo(PackedRing.state(1, false));
        assertThat(device(driver(5), false, true, 0x8000, 64).anyUsed()).isFalse();
        assertThatThrownBy(() -> device(d, false, true, 5, 64)).isInstanceOf(IllegalArgumentException.class);
    }

    /**
     * Principle 2 for the packed ring: poll, complete and flush allocate nothing per request
     * (batches of 8 three-descriptor chains over a 64-slot ring, with dirty-logging records on).
     */
    @Test
    void theRingAllocatesNothingPerRequest() {
        var mx = (com.sun.management.ThreadMXBean) java.lang.management.ManagementFactory.getThreadMXBean();
        TestPackedDriver d = driver(64);
        PackedVirtQueue q = device(d, true, true, 0x8000, 64);
        q.hooks(new QueueHooks() {
        });
        long[] g = {RAM, RAM + 0x1000, RAM + 0x2000};
        int[] l = {16, 4096, 1};
        int[] f = {F_NEXT, F_NEXT | F_WRITE, F_WRITE};
        VirtQueue.ChainHandler done = (qq, c) -> qq.complete(c.head(), (int) c.writableBytes());
        Runnable round = () -> {
            for (int i = 0; i < 8; i++) d.addRaw(i, g, l, f);
            q.poll(done, 64);
            q.flush();
            while (d.reclaim() >= 0) {
                // reclaimed
            }
        };
        for (int i = 0; i < 20_000; i++) round.run();
        long before = mx.getCurrentThreadAllocatedBytes();
        int rounds = 20_000;
        for (int i = 0; i < rounds; i++) round.run();
        long bytes = mx.getCurrentThreadAllocatedBytes() - before;
        assertThat(bytes / (rounds * 8.0)).as("bytes allocated per request").isLessThan(1.0);
        assertThat(q.stats.requests()).isEqualTo(40_000L * 8);
    }

    /** A descriptor made "available" again while every slot is in flight breaks the ring; nothing is overrun. */
    @Test
    void moreAvailableThanTheRingHoldsBreaksTheQueue() {
        TestPackedDriver d = driver(2);
        PackedVirtQueue q = device(d);
        d.add(1, w(RAM, 1));
        d.add(2, w(RAM, 1));
        assertThat(q.poll(keep, 64)).isEqualTo(2);
        // A hostile driver flips slot 0 to "available" for the next lap while both chains are in flight.
        d.ring.set(LittleEndian.U16, DESC_FLAGS, (short) F_USED);
        assertThat(q.poll(keep, 64)).isEqualTo(1);
        assertThat(q.isBroken()).isTrue();
        assertThat(q.brokenReason()).isEqualTo(ChainError.AVAIL_INDEX_JUMP);
        assertThat(q.inFlight()).isEqualTo(2);
        assertThat(q.poll(keep, 64)).isZero();
        // the chains in flight can still be answered
        q.complete(heads.get(0), 1);
        q.complete(heads.get(1), 1);
        q.flush();
        assertThat(q.inFlight()).isZero();
    }

    @Test
    void completingAHeadNotInFlightThrows() {
        PackedVirtQueue q = device(driver(4));
        assertThatThrownBy(() -> q.complete(0, 0)).isInstanceOf(IllegalStateException.class);
    }

    @Test
    void ringAddressesAreChecked() {
        long base = r0.address();
        assertThatThrownBy(() -> PackedVirtQueue.fromUserAddresses(0, 8, mem, base + 8, base + 0x8000, base + 0x8100, false, false, 0x8000, Notifier.NONE, 8))
                .hasMessageContaining("16-byte aligned");
        assertThatThrownBy(() -> PackedVirtQueue.fromUserAddresses(0, 8, mem, base, base + 0x8002, base + 0x8100, false, false, 0x8000, Notifier.NONE, 8))
                .hasMessageContaining("driver area");
        assertThatThrownBy(() -> PackedVirtQueue.fromUserAddresses(0, 8, mem, base + 0x1fff0, base + 0x8000, base + 0x8100, false, false, 0x8000, Notifier.NONE, 8))
                .hasMessageContaining("not inside one guest memory region");
        assertThat(PackedVirtQueue.fromUserAddresses(0, 8, mem, base, base + 0x8000, base + 0x8100, false, false, 0x8000, Notifier.NONE, 8).size()).isEqualTo(8);
    }

    // ---- the malformed-chain catalogue, packed edition ----

    /**
     * A malformed chain as the packed ring can express it (no {@code next} links: a chain is
     * consecutive slots, so the split catalogue's loops and out-of-range links do not exist here;
     * its other cases are below with the same errors). Ring-level cases stop the queue.
     */
    record Bad(String name, Consumer<TestPackedDriver> layout, ChainError expected, boolean queueStaysUsable, boolean indirect, int capacity) {
        @Override
        public String toString() {
            return name;
        }
    }

    static final int N = 16;

    static Bad bad(String name, ChainError why, Consumer<TestPackedDriver> layout) {
        return new Bad(name, layout, why, true, true, 64);
    }

    static long[] gpas(long... g) { return g; }
    static int[] ints(int... v) { return v; }

    static Stream<Arguments> catalogue() {
        long gap = 0x60000, end = 0x110000;
        return Stream.of(
                bad("buffer in a hole of guest memory", ChainError.ADDRESS_OUT_OF_RANGE, d -> d.addRaw(9, gpas(gap), ints(16), ints(0))),
                bad("buffer running off the end of guest memory", ChainError.ADDRESS_OUT_OF_RANGE,
                        d -> d.addRaw(9, gpas(end - 0x1000), ints(0x2000), ints(0))),
                bad("buffer address wrapping around 2^64", ChainError.ADDRESS_OUT_OF_RANGE, d -> d.addRaw(9, gpas(-16L), ints(0x100), ints(0))),
                bad("device-readable after device-writable", ChainError.READABLE_AFTER_WRITABLE,
                        d -> d.addRaw(9, gpas(RAM, RAM), ints(16, 16), ints(F_NEXT | F_WRITE, 0))),
                bad("bad buffer in the middle of a chain (the rest is skipped)", ChainError.ADDRESS_OUT_OF_RANGE,
                        d -> d.addRaw(9, gpas(RAM, gap, RAM), ints(16, 16, 16), ints(F_NEXT, F_NEXT, 0))),
                new Bad("indirect without the feature", d -> d.addRaw(9, gpas(TABLE_GPA), ints(32), ints(F_INDIRECT)),
                        ChainError.INDIRECT_NOT_NEGOTIATED, true, false, 64),
                bad("indirect table inside an indirect table", ChainError.NESTED_INDIRECT, d -> {
                    table(d, 0, TABLE_GPA + 0x100, 32, F_INDIRECT);
                    d.addRaw(9, gpas(TABLE_GPA), ints(16), ints(F_INDIRECT));
                }),
                bad("indirect and next together", ChainError.INDIRECT_WITH_NEXT,
                        d -> d.addRaw(9, gpas(TABLE_GPA, RAM), ints(16, 16), ints(F_INDIRECT | F_NEXT, 0))),
                bad("indirect table length not a multiple of 16", ChainError.BAD_INDIRECT_LENGTH,
                        d -> d.addRaw(9, gpas(TABLE_GPA), ints(24), ints(F_INDIRECT))),
                bad("indirect table of length 0", ChainError.BAD_INDIRECT_LENGTH, d -> d.addRaw(9, gpas(TABLE_GPA), ints(0), ints(F_INDIRECT))),
                bad("indirect table running off the end of guest memory", ChainError.ADDRESS_OUT_OF_RANGE,
                        d -> d.addRaw(9, gpas(end - 16), ints(32), ints(F_INDIRECT))),
                new Bad("more buffers than the device takes", d -> d.addRaw(9, gpas(RAM, RAM, RAM, RAM, RAM), ints(16, 16, 16, 16, 16),
                        ints(F_NEXT, F_NEXT, F_NEXT, F_NEXT, 0)), ChainError.TOO_MANY_BUFFERS, true, false, 4),
                bad("indirect table longer than the queue", ChainError.INDIRECT_TABLE_TOO_LONG, d -> {
                    for (int i = 0; i < N + 1; i++) table(d, i, RAM, 16, 0);
                    d.addRaw(9, gpas(TABLE_GPA), ints((N + 1) * 16), ints(F_INDIRECT));
                }),
                bad("indirect table of 2^16 entries", ChainError.INDIRECT_TABLE_TOO_LONG,
                        d -> d.addRaw(9, gpas(TABLE_GPA), ints(65536 * 16), ints(F_INDIRECT))),
                bad("direct descriptors plus an indirect table longer than the queue together", ChainError.CHAIN_TOO_LONG, d -> {
                    long[] g = new long[N - 1];
                    int[] l = new int[N - 1];
                    int[] f = new int[N - 1];
                    for (int i = 0; i < N - 2; i++) {
                        g[i] = RAM;
                        l[i] = 16;
                        f[i] = F_NEXT;
                    }
                    g[N - 2] = TABLE_GPA;
                    l[N - 2] = 48;
                    f[N - 2] = F_INDIRECT;
                    for (int i = 0; i < 3; i++) table(d, i, RAM, 16, 0);
                    d.addRaw(9, g, l, f);
                }),
                new Bad("chain that never ends within the ring (ring-level)", d -> {
                    long[] g = new long[N];
                    int[] l = new int[N];
                    int[] f = new int[N];
                    for (int i = 0; i < N; i++) {
                        g[i] = RAM;
                        l[i] = 16;
                        f[i] = F_NEXT;
                    }
                    d.addRaw(9, g, l, f);
                }, ChainError.CHAIN_TOO_LONG, false, true, 64)
        ).map(Arguments::of);
    }

    static void table(TestPackedDriver d, int i, long gpa, int len, int flags) {
        // the table lives at TABLE_GPA (region 2); the driver's ring is in region 0
        MemorySegment t = TABLE_SEGMENT.get();
        long at = (long) i * DESC_SIZE;
        t.set(LittleEndian.U64, at + DESC_ADDR, gpa);
        t.set(LittleEndian.U32, at + DESC_LEN, len);
        t.set(LittleEndian.U16, at + DESC_FLAGS, (short) flags);
    }

    static final ThreadLocal<MemorySegment> TABLE_SEGMENT = new ThreadLocal<>();

    @ParameterizedTest(name = "{0}")
    @MethodSource("catalogue")
    void refusesMalformedChains(Bad c) {
        TABLE_SEGMENT.set(r2);
        TestPackedDriver d = driver(N);
        PackedVirtQueue q = device(d, false, c.indirect(), 0x8000, c.capacity());
        c.layout().accept(d);
        q.poll(echo, 64);
        q.flush();
        assertThat(seen).isEmpty();
        assertThat(q.lastError()).isEqualTo(c.expected());
        assertThat(q.stats.chainErrors()).isEqualTo(1);
        if (!c.queueStaysUsable()) {
            assertThat(q.isBroken()).isTrue();
            assertThat(q.brokenReason()).isEqualTo(c.expected());
            assertThat(d.poll()).as("nothing returned").isNull();
            assertThat(q.inFlight()).isZero();
            return;
        }
        assertThat(q.isBroken()).isFalse();
        Used u = d.poll();
        assertThat(u).as("returned with length 0 under its buffer id").isNotNull();
        assertThat(u.id()).isEqualTo(9);
        assertThat(u.len()).isZero();
        assertThat(u.slot()).isZero();
        // The whole chain was skipped: a good chain afterwards is served.
        d.add(10, w(RAM, 16));
        q.poll(echo, 64);
        q.flush();
        assertThat(seen).hasSize(1);
        assertThat(d.poll().id()).isEqualTo(10);
        TABLE_SEGMENT.remove();
    }
}
