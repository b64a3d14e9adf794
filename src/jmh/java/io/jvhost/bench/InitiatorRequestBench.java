package io.jvhost.bench;

import io.jvhost.virtio.DriverSplitQueue;
import io.jvhost.virtio.LittleEndian;
import org.openjdk.jmh.annotations.*;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.concurrent.TimeUnit;

import static io.jvhost.virtio.SplitRing.*;

/**
 * The initiator's own per-request work, as {@code jvhost bench} does it, in one thread: per
 * request write a virtio-blk read header and status byte, put the chain on the avail ring,
 * publish once per batch, reap the used element and take latency clock readings. The "device"
 * is a bare loop that moves each avail entry to the used ring (no {@code SplitVirtQueue}).
 *
 * <ul>
 * <li>{@code mode=rebuild}: the way {@code BenchEngine} did it before: three descriptors built
 *     per request ({@code begin/add/end}), header and status in separate cache lines, two
 *     {@code System.nanoTime()} per request.
 * <li>{@code mode=pinned}: now: chains built once and re-offered ({@code endPinned/offer}),
 *     header and status in one line, two clock reads per batch.
 * </ul>
 * EVENT_IDX on, interrupts off (the used_event handling is part of the cost).
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "-Xms1g", "-Xmx1g"})
public class InitiatorRequestBench {
    static final int QUEUE_SIZE = 512, QD = 32;
    static final long RAM = 1 << 20, DESC = 0, AVAIL = 0x2000, USED = 0x3000, HDR = 0x10000, DATA = 0x20000;

    @Param({"rebuild", "pinned"})
    String mode;

    Arena arena;
    MemorySegment ram, avail, used;
    DriverSplitQueue d;
    int[] pinnedHead = new int[QD];
    int devAvail, devUsed;
    long sector, sink;
    final long[] start = new long[QUEUE_SIZE];
    final int[] slotOfHead = new int[QUEUE_SIZE];
    boolean pinned;
    long pollNs;

    @Setup(Level.Trial)
    public void setUp() {
        arena = Arena.ofShared();
        ram = arena.allocate(RAM, 4096);
        avail = ram.asSlice(AVAIL);
        used = ram.asSlice(USED);
        d = new DriverSplitQueue(QUEUE_SIZE, ram.asSlice(DESC), avail, used, true);
        d.wantInterrupts(false);
        pinned = mode.equals("pinned");
        if (pinned) {
            for (int s = 0; s < QD; s++) {
                d.begin(3);
                d.add(HDR + 64L * s, 16, false);
                d.add(DATA + 4096L * s, 4096, true);
                d.add(HDR + 64L * s + 16, 1, true);
                pinnedHead[s] = d.endPinned();
                slotOfHead[pinnedHead[s]] = s;
                ram.set(LittleEndian.U32, HDR + 64L * s, 0);
            }
        }
        for (int s = 0; s < QD; s++) submit(s);
        d.publish();
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        arena.close();
    }

    private void submit(int s) {
        if (pinned) {
            ram.set(LittleEndian.U64, HDR + 64L * s + 8, sector++ & 0xffff);
            ram.set(ValueLayout.JAVA_BYTE, HDR + 64L * s + 16, (byte) 0xff);
            d.offer(pinnedHead[s]);
        } else {
            long hdr = HDR + 256L * s;
            ram.set(LittleEndian.U32, hdr, 0);
            ram.set(LittleEndian.U32, hdr + 4, 0);
            ram.set(LittleEndian.U64, hdr + 8, sector++ & 0xffff);
            ram.set(ValueLayout.JAVA_BYTE, hdr + 128, (byte) 0xff);
            d.begin(3);
            d.add(hdr, 16, false);
            d.add(DATA + 4096L * s, 4096, true);
            d.add(hdr + 128, 1, true);
            int head = d.end();
            slotOfHead[head] = s;
            start[s] = System.nanoTime();
        }
    }

    private final DriverSplitQueue.UsedHandler onUsed = (head, len) -> {
        int s = slotOfHead[head];
        long now;
        if (pinned) {
            now = pollNs;
            if (now == 0) now = pollNs = System.nanoTime();
        } else {
            now = System.nanoTime();
        }
        sink += now - start[s] + ram.get(ValueLayout.JAVA_BYTE, pinned ? HDR + 64L * s + 16 : HDR + 256L * s + 128);
        submit(s);
    };

    /** The "device": every available chain straight to the used ring. */
    private void device() {
        int idx = Short.toUnsignedInt(avail.get(LittleEndian.U16, AVAIL_IDX));
        while (devAvail != idx) {
            int head = Short.toUnsignedInt(avail.get(LittleEndian.U16, AVAIL_RING + 2L * (devAvail & (QUEUE_SIZE - 1))));
            long at = USED_RING + (long) USED_ELEM_SIZE * (devUsed & (QUEUE_SIZE - 1));
            used.set(LittleEndian.U32, at, head);
            used.set(LittleEndian.U32, at + 4, 4097);
            devAvail = (devAvail + 1) & 0xffff;
            devUsed = (devUsed + 1) & 0xffff;
        }
        used.set(LittleEndian.U16, USED_IDX, (short) devUsed);
    }

    /** One batch of {@value #QD} requests: device turns them round, the driver reaps and resubmits. */
    @Benchmark
    @OperationsPerInvocation(QD)
    public long batch() {
        device();
        pollNs = 0;
        int n = d.pollUsed(onUsed);
        d.publish();
        boolean kick = d.needsKick();
        if (pinned) {
            long t = System.nanoTime();
            for (int s = 0; s < QD; s++) start[s] = t;
        }
        return n + (kick ? 1 : 0) + sink;
    }
}
