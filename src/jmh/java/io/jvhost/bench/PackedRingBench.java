package io.jvhost.bench;

import io.jvhost.virtio.DriverSplitQueue;
import io.jvhost.virtio.LittleEndian;
import io.jvhost.virtio.Notifier;
import io.jvhost.virtio.PackedRing;
import io.jvhost.virtio.PackedVirtQueue;
import io.jvhost.virtio.SplitVirtQueue;
import io.jvhost.virtio.VirtQueue;
import org.openjdk.jmh.annotations.*;

import java.lang.foreign.MemorySegment;
import java.lang.invoke.VarHandle;
import java.util.concurrent.TimeUnit;

import static io.jvhost.virtio.PackedRing.*;

/**
 * Split against packed ring, device side, per request: the same loopback shape as
 * {@link SplitRingBench#walk} (the driver builds every chain of a batch, the device polls,
 * completes from a null handler and flushes once, the driver reaps; one thread, nothing
 * crossing cores), over virtio-blk-shaped chains (16-byte header R, 4 KiB data W, 1-byte status
 * W). {@code ring} picks the layout; the packed driver is a minimal one written here (the
 * initiator's own packed driver is separate work). Scores are per request.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "-Xms1g", "-Xmx1g"})
public class PackedRingBench {
    static final int REQUESTS = 128;
    static final int QUEUE_SIZE = 512;
    static final VirtQueue.ChainHandler NULL_HANDLER = (q, c) -> q.complete(c.head(), (int) c.writableBytes());
    static final DriverSplitQueue.UsedHandler REAP = (head, len) -> { };
    private static final VarHandle U16 = LittleEndian.ALIGNED_U16;

    @State(Scope.Thread)
    public static class Rings {
        @Param({"split", "packed"})
        String ring;
        @Param({"1", "32", "128"})
        int batch;

        GuestRam ram;
        DriverSplitQueue split;
        SplitVirtQueue splitQueue;
        PackedVirtQueue packedQueue;
        // the minimal packed driver
        MemorySegment desc;
        int availPos, usedPos;
        boolean availWrap = true, usedWrap = true;

        @Setup(Level.Trial)
        public void setUp() {
            ram = new GuestRam(QUEUE_SIZE);
            if (ring.equals("split")) {
                split = ram.driver(false);
                splitQueue = ram.device(false);
            } else {
                desc = ram.ram.asSlice(GuestRam.DESC_OFF, PackedRing.ringBytes(QUEUE_SIZE));
                long base = ram.ram.address();
                packedQueue = PackedVirtQueue.fromUserAddresses(0, QUEUE_SIZE, ram.memory, base + GuestRam.DESC_OFF, base + GuestRam.AVAIL_OFF,
                        base + GuestRam.USED_OFF, false, true, 0x8000, Notifier.NONE, Math.max(QUEUE_SIZE, 256) + 64);
            }
        }

        @TearDown(Level.Trial)
        public void tearDown() {
            VirtQueue q = splitQueue != null ? splitQueue : packedQueue;
            if (q.stats().chainErrors() != 0 || q.isBroken() || q.inFlight() != 0) throw new IllegalStateException("ring went wrong: " + q.lastError());
            ram.close();
        }

        void addPacked(int slot, int id) {
            int head = availPos;
            int headFlags = put(GuestRam.headerGpa(slot), 16, F_NEXT, 0, true);
            put(GuestRam.dataGpa(slot), GuestRam.DATA_LEN, F_NEXT | F_WRITE, 0, false);
            put(GuestRam.statusGpa(slot), 1, F_WRITE, id, false);
            U16.setRelease(desc, (long) head * DESC_SIZE + DESC_FLAGS, (short) headFlags);
        }

        /** Writes one descriptor; a head's flags are left for the caller to publish last. */
        private int put(long gpa, int len, int flags, int id, boolean head) {
            long at = (long) availPos * DESC_SIZE;
            int f = flags | (availWrap ? F_AVAIL : F_USED);
            desc.set(LittleEndian.U64, at + DESC_ADDR, gpa);
            desc.set(LittleEndian.U32, at + DESC_LEN, len);
            desc.set(LittleEndian.U16, at + DESC_ID, (short) id);
            if (!head) desc.set(LittleEndian.U16, at + DESC_FLAGS, (short) f);
            if (++availPos == QUEUE_SIZE) {
                availPos = 0;
                availWrap = !availWrap;
            }
            return f;
        }

        void reapPacked() {
            while (true) {
                long at = (long) usedPos * DESC_SIZE;
                int flags = Short.toUnsignedInt((short) U16.getAcquire(desc, at + DESC_FLAGS));
                if (((flags & F_AVAIL) != 0) != usedWrap || ((flags & F_USED) != 0) != usedWrap) return;
                usedPos += 3; // every chain here is 3 descriptors
                if (usedPos >= QUEUE_SIZE) {
                    usedPos -= QUEUE_SIZE;
                    usedWrap = !usedWrap;
                }
            }
        }
    }

    @Benchmark
    @OperationsPerInvocation(REQUESTS)
    public int walk(Rings s) {
        int batch = s.batch;
        int done = 0;
        if (s.splitQueue != null) {
            DriverSplitQueue d = s.split;
            SplitVirtQueue q = s.splitQueue;
            for (int r = 0; r < REQUESTS; r += batch) {
                for (int i = 0; i < batch; i++) GuestRam.addBlkChain(d, i);
                d.publish();
                done += q.poll(NULL_HANDLER, batch);
                q.flush();
                d.pollUsed(REAP);
            }
        } else {
            PackedVirtQueue q = s.packedQueue;
            for (int r = 0; r < REQUESTS; r += batch) {
                for (int i = 0; i < batch; i++) s.addPacked(i, i);
                done += q.poll(NULL_HANDLER, batch);
                q.flush();
                s.reapPacked();
            }
        }
        return done;
    }
}
