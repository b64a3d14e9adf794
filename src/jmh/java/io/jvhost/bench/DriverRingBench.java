package io.jvhost.bench;

import io.jvhost.virtio.DriverPackedQueue;
import io.jvhost.virtio.DriverQueue;
import io.jvhost.virtio.DriverSplitQueue;
import io.jvhost.virtio.LittleEndian;
import org.openjdk.jmh.annotations.*;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.concurrent.TimeUnit;

import static io.jvhost.virtio.SplitRing.*;

/**
 * The initiator's per-request ring work on each layout, as {@code jvhost bench} does it with
 * pinned blk chains (header R, 4 KiB data W, status W) at QD32, in one thread: the "device" is a
 * bare loop that turns every available buffer round in order, so the score is the driver's cost
 * plus a minimal device, not a target.
 *
 * <ul>
 * <li>{@code split}: {@link DriverSplitQueue} called through its class (what the bench did).
 * <li>{@code split-iface}: the same through {@link DriverQueue} (what the bench does now): the
 *     difference is the price of the interface at a monomorphic call site.
 * <li>{@code packed}: {@link DriverPackedQueue}, the 3 descriptors rewritten into the ring per
 *     request; {@code packed-indirect}: one ring descriptor per request pointing at the slot's
 *     pinned table.
 * </ul>
 * EVENT_IDX on, interrupts off; no clock reads (they are the same on every layout).
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "-Xms1g", "-Xmx1g"})
public class DriverRingBench {
    static final int QUEUE_SIZE = 512, QD = 32;
    static final long RAM = 1 << 20, DESC = 0, AVAIL = 0x2000, USED = 0x3000, DRIVER_EVENT = 0x4000, DEVICE_EVENT = 0x4040,
            HDR = 0x10000, DATA = 0x20000;

    @Param({"split", "split-iface", "packed", "packed-indirect"})
    String ring;

    Arena arena;
    MemorySegment ram;
    DriverSplitQueue split;
    DriverQueue queue;       // the same object as split, or the packed queue
    boolean viaClass;
    final int[] head = new int[QD];
    final int[] slotOf = new int[QUEUE_SIZE];
    long sector, sink;
    // split device
    int devAvail, devUsed;
    // packed device
    int dAvailPos, dUsedPos;
    boolean dAvailWrap = true, dUsedWrap = true;
    boolean packed;

    @Setup(Level.Trial)
    public void setUp() {
        arena = Arena.ofShared();
        ram = arena.allocate(RAM, 4096);
        packed = ring.startsWith("packed");
        if (packed) {
            queue = new DriverPackedQueue(QUEUE_SIZE, ram.asSlice(DESC), ram.asSlice(DRIVER_EVENT), ram.asSlice(DEVICE_EVENT), true);
            ram.set(LittleEndian.U16, DEVICE_EVENT + 2, (short) DriverPackedQueue.EVENT_DISABLE);
        } else {
            split = new DriverSplitQueue(QUEUE_SIZE, ram.asSlice(DESC), ram.asSlice(AVAIL), ram.asSlice(USED), true);
            queue = split;
            viaClass = ring.equals("split");
        }
        queue.wantInterrupts(false);
        for (int s = 0; s < QD; s++) {
            long hdr = HDR + 128L * s;
            if (ring.equals("packed-indirect")) {
                long table = hdr + 64;
                DriverPackedQueue.writeTableEntry(ram, table, 0, hdr, 16, false);
                DriverPackedQueue.writeTableEntry(ram, table, 1, DATA + 4096L * s, 4096, true);
                DriverPackedQueue.writeTableEntry(ram, table, 2, hdr + 16, 1, true);
                DriverPackedQueue pq = (DriverPackedQueue) queue;
                pq.begin(1);
                pq.addIndirect(table, 3);
            } else {
                queue.begin(3);
                queue.add(hdr, 16, false);
                queue.add(DATA + 4096L * s, 4096, true);
                queue.add(hdr + 16, 1, true);
            }
            head[s] = queue.endPinned();
            slotOf[head[s]] = s;
            ram.set(LittleEndian.U32, hdr, 0);
        }
        for (int s = 0; s < QD; s++) submit(s);
        queue.publish();
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        arena.close();
    }

    private void submit(int s) {
        long hdr = HDR + 128L * s;
        ram.set(LittleEndian.U64, hdr + 8, sector++ & 0xffff);
        ram.set(ValueLayout.JAVA_BYTE, hdr + 16, (byte) 0xff);
        if (viaClass) split.offer(head[s]);
        else queue.offer(head[s]);
    }

    private final DriverSplitQueue.UsedHandler onUsed = (h, len) -> {
        int s = slotOf[h];
        sink += ram.get(ValueLayout.JAVA_BYTE, HDR + 128L * s + 16);
        submit(s);
    };

    /** Split device: every available head straight to the used ring. */
    private void splitDevice() {
        int idx = Short.toUnsignedInt(ram.get(LittleEndian.U16, AVAIL + AVAIL_IDX));
        while (devAvail != idx) {
            int h = Short.toUnsignedInt(ram.get(LittleEndian.U16, AVAIL + AVAIL_RING + 2L * (devAvail & (QUEUE_SIZE - 1))));
            long at = USED + USED_RING + (long) USED_ELEM_SIZE * (devUsed & (QUEUE_SIZE - 1));
            ram.set(LittleEndian.U32, at, h);
            ram.set(LittleEndian.U32, at + 4, 4097);
            devAvail = (devAvail + 1) & 0xffff;
            devUsed = (devUsed + 1) & 0xffff;
        }
        ram.set(LittleEndian.U16, USED + USED_IDX, (short) devUsed);
    }

    /** Packed device: every available buffer, in order, marked used in place of its first slot. */
    private void packedDevice() {
        while (true) {
            long at = DESC + dAvailPos * 16L;
            int f = Short.toUnsignedInt(ram.get(LittleEndian.U16, at + 14));
            boolean a = (f & DriverPackedQueue.F_AVAIL) != 0, u = (f & DriverPackedQueue.F_USED) != 0;
            if (a != dAvailWrap || u == dAvailWrap) return;
            int slots = 1;
            int id;
            while (true) {
                id = Short.toUnsignedInt(ram.get(LittleEndian.U16, DESC + dAvailPos * 16L + 12));
                boolean next = (Short.toUnsignedInt(ram.get(LittleEndian.U16, DESC + dAvailPos * 16L + 14)) & DriverPackedQueue.F_NEXT) != 0;
                if (++dAvailPos == QUEUE_SIZE) {
                    dAvailPos = 0;
                    dAvailWrap = !dAvailWrap;
                }
                if (!next) break;
                slots++;
            }
            long u0 = DESC + dUsedPos * 16L;
            ram.set(LittleEndian.U32, u0 + 8, 4097);
            ram.set(LittleEndian.U16, u0 + 12, (short) id);
            ram.set(LittleEndian.U16, u0 + 14, (short) (dUsedWrap ? DriverPackedQueue.F_AVAIL | DriverPackedQueue.F_USED : 0));
            dUsedPos += slots;
            if (dUsedPos >= QUEUE_SIZE) {
                dUsedPos -= QUEUE_SIZE;
                dUsedWrap = !dUsedWrap;
            }
        }
    }

    /** One batch of {@value #QD} requests: the device turns them round, the driver reaps, resubmits, publishes, decides on a kick. */
    @Benchmark
    @OperationsPerInvocation(QD)
    public long batch() {
        boolean kick;
        int n;
        if (packed) {
            packedDevice();
            n = queue.pollUsed(onUsed);
            queue.publish();
            kick = queue.needsKick();
        } else if (viaClass) {
            splitDevice();
            n = split.pollUsed(onUsed);
            split.publish();
            kick = split.needsKick();
        } else {
            splitDevice();
            n = queue.pollUsed(onUsed);
            queue.publish();
            kick = queue.needsKick();
        }
        return n + (kick ? 1 : 0) + sink;
    }
}
