package io.jvhost.vhost;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;
import io.jvhost.bdev.BlockChannel;
import io.jvhost.bdev.BlockDevice;
import io.jvhost.bdev.BlockRequest;
import io.jvhost.bdev.MallocBlockDevice;
import io.jvhost.memory.GuestMemory;
import io.jvhost.memory.MemoryRegion;
import io.jvhost.runtime.IdleStrategy;
import io.jvhost.runtime.Reactor;
import io.jvhost.sys.EventFd;
import io.jvhost.sys.Fd;
import io.jvhost.sys.MemFd;
import io.jvhost.sys.Mmap;
import io.jvhost.virtio.SplitRing;
import io.jvhost.virtio.Notifier;
import io.jvhost.virtio.SplitVirtQueue;
import org.junit.jupiter.api.AfterAll;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.List;
import java.util.UUID;

import static io.jvhost.virtio.SplitRing.*;

/**
 * Coverage-guided fuzzing (Jazzer) of the ring walker and the device request parsers: the input
 * lays out a split ring, descriptor tables (direct, indirect, chains crossing from one guest
 * memory region into the next) and virtio-blk / virtio-scsi request headers in two guest memory
 * regions, then drives the real queue processor ({@link BlkQueueProcessor},
 * {@link ScsiRequestProcessor}, {@link ScsiControlProcessor}, {@link ScsiEventProcessor}) on
 * the fuzzing thread, interleaving polls with further guest writes.
 *
 * <p>Oracle: nothing escapes {@code poll}/{@code prepareSleep}/{@code afterWake} (FFM bounds
 * checks turn any access outside a region's segment into an exception, which escapes and is
 * reported); every buffer handed to the block device is a range of one of the guest regions
 * (SCSI bounce buffers aside: {@link GuardedDevice}); the
 * queue drains (what a stop waits for) within a few polls; nothing is logged at ERROR level.
 *
 * <p>With {@link FuzzOracle#VANISHING_MEMORY} the regions are memfd mappings that the input
 * may truncate between polls (SIGBUS under the walker); off by default, see {@link FuzzOracle}.
 *
 * <p>{@code mvn test} runs the seeds under {@code src/test/resources/io/jvhost/vhost/
 * QueueRequestFuzzTestInputs/} (regression mode); {@code scripts/fuzz.sh} fuzzes.
 */
class QueueRequestFuzzTest {
    static final long REGION = 0x10000;
    private static final int MAX_OPS = 48;

    private static Fixture fx;

    /** Built once per JVM: a reactor (constructors want one; nothing is scheduled on it), the devices. */
    private static final class Fixture {
        final Reactor reactor = new Reactor(90, IdleStrategy.BACKOFF);
        final GuardedDevice blkBdev = new GuardedDevice(new MallocBlockDevice("FzQBlk", 256, 512, new UUID(1, 2)), true);
        final GuardedDevice scsiBdev = new GuardedDevice(new MallocBlockDevice("FzQScsi", 256, 512, new UUID(3, 4)), false);
        final BlkDevice blk = new BlkDevice("fzq-blk", blkBdev, false, 1, reactor);
        final VirtioScsiDevice scsi = new VirtioScsiDevice("fzq-scsi", 1, reactor);
        final Arena arena = Arena.ofShared();
        final MemorySegment regionA = arena.allocate(REGION, 4096);
        final MemorySegment regionB = arena.allocate(REGION, 4096);
        final MemorySegment scratch = arena.allocate(8, 8);
        final int callFd = EventFd.create(true);
        final int kickFd = EventFd.create(true);
        final java.util.Map<Integer, Cached> cache = new java.util.HashMap<>();
        long inputs;
        final long started = System.nanoTime();

        Fixture() {
            scsi.attach(0, scsiBdev);
        }
    }

    private static synchronized Fixture fixture() {
        if (fx == null) {
            FuzzOracle.install();
            fx = new Fixture();
        }
        return fx;
    }

    @AfterAll
    static synchronized void closeFixture() {
        if (fx == null) return;
        FuzzOracle.report("QueueRequestFuzzTest", fx.inputs, fx.started);
        for (Cached c : fx.cache.values()) c.p().onStopped();
        fx.reactor.close();
        Fd.closeQuietly(fx.callFd);
        Fd.closeQuietly(fx.kickFd);
        fx.arena.close();
        fx = null;
    }

    @FuzzTest(maxDuration = "10s")
    void ringAndRequests(FuzzedDataProvider d) {
        Fixture f = fixture();
        if ((++f.inputs & 1023) == 0) EventFd.drain(f.callFd, f.scratch);
        new Run(f, d).run();
        FuzzOracle.check();
    }

    private record Cached(SplitVirtQueue q, QueueProcessor p) {}

    /** One input. */
    private static final class Run {
        final Fixture f;
        final FuzzedDataProvider d;
        final int device; // 0 blk, 1 scsi request queue, 2 scsi control queue, 3 scsi event queue
        final int size;
        final long gpaB;
        MemorySegment a, b;
        int fdA = -1, fdB = -1;
        Mmap mapA, mapB;
        /** Vanishing mode: the target's own mappings of the two memfds (what a memory table gives it). */
        MemoryRegion regA, regB;
        boolean vanished;
        int faults;
        long descOff, availOff, usedOff; // in region A
        int nextDesc, availIdx;
        long dataNext = 0x4000;

        Run(Fixture f, FuzzedDataProvider d) {
            this.f = f;
            this.d = d;
            this.device = d.consumeInt(0, 3);
            this.size = 1 << d.consumeInt(0, 8);
            this.gpaB = switch (d.consumeInt(0, 3)) {
                case 0, 1 -> REGION;                 // adjacent: buffers may straddle A and B
                case 2 -> 0x100000;
                default -> FuzzOracle.VANISHING_MEMORY ? Math.max(2 * REGION, (d.consumeLong() & ~0xfffL) & 0x7fff_ffff_ffffL) : 0x100000;
            };
        }

        void run() {
            setUpMemory();
            try {
                runOn();
            } finally {
                tearDownMemory();
            }
        }

        private void setUpMemory() {
            if (FuzzOracle.VANISHING_MEMORY) {
                // Sealable or not is the front-end's choice; the target seals what it can.
                boolean sealable = d.consumeBoolean();
                fdA = MemFd.create("fz-a", REGION, sealable);
                fdB = MemFd.create("fz-b", REGION, sealable);
                mapA = Mmap.map(fdA, 0, REGION, true);
                mapB = Mmap.map(fdB, 0, REGION, true);
                a = mapA.segment();
                b = mapB.segment();
                regA = MemoryRegion.map(fdA, 0, REGION, 0x7000_0000_0000L, 0);
                regB = MemoryRegion.map(fdB, gpaB, REGION, 0x7100_0000_0000L, 0);
            } else {
                a = f.regionA;
                b = f.regionB;
                a.fill((byte) 0);
                b.fill((byte) 0);
            }
        }

        private void tearDownMemory() {
            if (regA != null) regA.close();
            if (regB != null) regB.close();
            if (mapA != null) mapA.close();
            if (mapB != null) mapB.close();
            Fd.closeQuietly(fdA);
            Fd.closeQuietly(fdB);
        }

        private void runOn() {
            boolean eventIdx = d.consumeBoolean();
            boolean indirect = d.consumeBoolean();
            boolean withCall = d.consumeBoolean();
            int queueIndex = switch (device) {
                case 0 -> 0;
                case 1 -> 2;
                case 2 -> 0;
                default -> 1;
            };
            // Processors are reused across inputs (building one allocates per-slot state and a
            // shared arena whose close costs a handshake with every thread): the guest simply goes
            // on from the queue's current indices. With vanishing memory each input gets a fresh
            // memory, queue and processor, and the rings may lie anywhere in region A.
            boolean fresh = FuzzOracle.VANISHING_MEMORY;
            int key = (((device * 16 + Integer.numberOfTrailingZeros(size)) * 2 + (eventIdx ? 1 : 0)) * 2 + (indirect ? 1 : 0)) * 2 + (withCall ? 1 : 0);
            key = key * 2 + (gpaB == REGION ? 1 : 0);
            Cached c = fresh ? null : f.cache.get(key);
            if (c != null) {
                descOff = 0;
                availOff = 0x1000;
                usedOff = 0x2000;
                availIdx = c.q.lastAvail();
                a.set(ValueLayout.JAVA_SHORT_UNALIGNED, usedOff + USED_IDX, (short) c.q.usedIndex());
                a.set(ValueLayout.JAVA_SHORT_UNALIGNED, availOff + AVAIL_IDX, (short) availIdx);
            } else {
                GuestMemory mem = new GuestMemory(regA != null ? List.of(regA, regB)
                        : List.of(MemoryRegion.ofSegment(0, 0x7000_0000_0000L, a), MemoryRegion.ofSegment(gpaB, 0x7100_0000_0000L, b)));
                if (!fresh || d.consumeBoolean()) {
                    descOff = 0;
                    availOff = 0x1000;
                    usedOff = 0x2000;
                } else {
                    descOff = d.consumeInt(0, (int) (REGION - descTableBytes(size)) >> 4) << 4;
                    availOff = d.consumeInt(0, (int) (REGION - availBytes(size)) >> 1) << 1;
                    usedOff = d.consumeInt(0, (int) (REGION - usedBytes(size)) >> 2) << 2;
                }
                int startAvail = d.consumeBoolean() ? 0 : d.consumeInt(0, 0xffff);
                availIdx = startAvail;
                if (d.consumeBoolean()) a.set(ValueLayout.JAVA_SHORT_UNALIGNED, usedOff + USED_IDX, (short) startAvail);
                a.set(ValueLayout.JAVA_SHORT_UNALIGNED, availOff + AVAIL_IDX, (short) startAvail);
                SplitVirtQueue q = new SplitVirtQueue(queueIndex, size, mem, a.asSlice(descOff, descTableBytes(size)), a.asSlice(availOff, availBytes(size)),
                        a.asSlice(usedOff, usedBytes(size)), eventIdx, indirect, startAvail, Notifier.eventFd(withCall ? f.callFd : -1), Math.max(size, 256) + 64);
                QueueProcessor p = device == 0 ? f.blk.newQueueProcessor(q, f.kickFd) : f.scsi.newQueueProcessor(q, f.kickFd);
                c = new Cached(q, p);
                if (!fresh) f.cache.put(key, c);
            }
            SplitVirtQueue q = c.q;
            QueueProcessor p = c.p;
            GuardedDevice.allow(regA != null ? regA.segment() : a, regB != null ? regB.segment() : b);
            boolean keep = false;
            try {
                int ops = 0;
                while (d.remainingBytes() > 0 && ops++ < MAX_OPS) step(p);
                // Drain: what a stop (GET_VRING_BASE, disconnect) waits for must happen promptly.
                for (int i = 0; i < 4; i++) poll(p);
                if (q.isFaulted()) {
                    // A failed queue stops once the block layer has let go of its requests.
                    if (p.pendingIo() != 0) throw new AssertionError("faulted queue still has " + p.pendingIo() + " request(s) in the block layer");
                } else if (q.inFlight() - p.parkedChains() != 0 || p.pendingIo() != 0) {
                    throw new AssertionError("queue did not drain: " + q.inFlight() + " in flight, " + p.parkedChains() + " parked, " + p.pendingIo() + " pending I/O");
                }
                if (!q.isFaulted()) guarded(p, p::releaseParked); // in the reactor: part of a stop, inside poll
                keep = !fresh && !q.isBroken() && q.inFlight() == 0;
            } finally {
                GuardedDevice.allow();
                if (!keep) {
                    f.cache.remove(key);
                    p.onStopped();
                }
            }
        }

        private void poll(QueueProcessor p) {
            guarded(p, () -> {
                p.poll();
                if (p.prepareSleep()) p.afterWake();
            });
        }

        /** Runs {@code call} as the reactor runs calls into a pollable: a fault goes to the pollable. */
        private void guarded(QueueProcessor p, Runnable call) {
            try {
                call.run();
            } catch (Throwable t) {
                if (!vanished || t instanceof AssertionError) throw t;
                // What the reactor does with a throw from a pollable (runtime.Reactor): a memory
                // fault is offered to the pollables, anything else is reported to this one.
                if (!(t instanceof InternalError) || !p.onMemoryFault(t)) p.onError(t);
                if (++faults > 1) throw new AssertionError("the queue threw again after it was failed", t);
            }
        }

        private void step(QueueProcessor p) {
            switch (d.consumeInt(0, 9)) {
                case 0, 1, 2 -> addChain();
                case 3 -> writeDesc(d.consumeInt(0, size - 1), pickAddr(d.consumeInt(1, 64)), d.consumeInt(0, 5000), d.consumeInt(0, 7), d.consumeInt(0, size));
                case 4 -> pushHead(d.consumeBoolean() ? d.consumeInt(0, size - 1) : d.consumeInt(0, 0xffff));
                case 5 -> {
                    availIdx = d.consumeBoolean() ? availIdx + d.consumeInt(-2, 4) : d.consumeInt(0, 0xffff);
                    guestShort(availOff + AVAIL_IDX, availIdx);
                }
                case 6, 7 -> poll(p);
                case 8 -> {
                    long off = d.consumeLong(0, 2 * REGION - 1);
                    byte[] bytes = d.consumeBytes(64);
                    guestBytes(off, bytes);
                }
                default -> {
                    if (FuzzOracle.VANISHING_MEMORY && d.consumeBoolean()) {
                        // The front-end shrinks a region's file under the walker.
                        boolean first = d.consumeBoolean();
                        try {
                            Fd.ftruncate(first ? fdA : fdB, d.consumeLong(0, REGION - 1) & ~0xfffL);
                            vanished = true;
                        } catch (RuntimeException e) {
                            // EPERM: the target sealed the file against shrinking; it cannot vanish.
                            if (!(first ? regA : regB).sealed()) throw e;
                        }
                    } else {
                        guestShort(availOff + AVAIL_FLAGS, d.consumeInt(0, 3));
                        guestShort(usedOff + USED_RING + (long) USED_ELEM_SIZE * size, d.consumeInt(0, 0xffff)); // avail_event
                        guestShort(availOff + AVAIL_RING + 2L * size, d.consumeInt(0, 0xffff)); // used_event
                    }
                }
            }
        }

        /** A guest-physical address: mostly a data buffer in A or B, sometimes straddling them or wild. */
        private long pickAddr(int len) {
            return switch (d.consumeInt(0, 7)) {
                case 0, 1, 2 -> alloc(len);
                case 3 -> gpaB + d.consumeLong(0, REGION - 1);
                case 4 -> gpaB - d.consumeInt(1, 64); // straddles A's end (into B when adjacent)
                case 5 -> d.consumeLong(0, 2 * REGION);
                case 6 -> REGION - len + d.consumeInt(0, 8); // at or over A's end
                default -> d.consumeLong();
            };
        }

        /** Bump allocation of data space in region A (wraps). */
        private long alloc(int len) {
            long l = Math.min(len, 0x2000);
            if (dataNext + l > REGION) dataNext = 0x4000;
            long at = dataNext;
            dataNext = (dataNext + l + 15) & ~15L;
            return at;
        }

        private void addChain() {
            int n = d.consumeInt(1, 5);
            boolean useIndirect = d.consumeInt(0, 3) == 0;
            long[] addr = new long[n];
            int[] len = new int[n];
            int[] flags = new int[n];
            for (int i = 0; i < n; i++) {
                boolean last = i == n - 1;
                boolean first = i == 0;
                int kind = first ? 0 : last ? 2 : 1;
                if (d.consumeInt(0, 7) == 0) kind = d.consumeInt(0, 2);
                switch (kind) {
                    case 0 -> { // request header (device-readable)
                        len[i] = header(addr, i);
                        flags[i] = 0;
                    }
                    case 1 -> { // data
                        len[i] = d.consumeBoolean() ? 512 * d.consumeInt(1, 8) : d.consumeInt(0, 9000);
                        addr[i] = pickAddr(len[i]);
                        flags[i] = d.consumeBoolean() ? F_WRITE : 0;
                    }
                    default -> { // status / response (device-writable)
                        len[i] = device == 0 ? (d.consumeBoolean() ? 1 : d.consumeInt(0, 16)) : (d.consumeBoolean() ? 108 : d.consumeInt(0, 300));
                        addr[i] = pickAddr(len[i]);
                        flags[i] = F_WRITE;
                    }
                }
                if (d.consumeInt(0, 15) == 0) flags[i] ^= 1 << d.consumeInt(0, 2);
            }
            if (useIndirect) {
                long table = alloc(16 * n);
                for (int i = 0; i < n; i++) {
                    int fl = flags[i] | (i < n - 1 ? F_NEXT : 0);
                    guestDesc(table + 16L * i, addr[i], len[i], fl, i + 1);
                }
                int head = nextSlot();
                int tableLen = d.consumeInt(0, 7) == 0 ? d.consumeInt(0, 100) : 16 * n;
                writeDesc(head, table, tableLen, F_INDIRECT | (d.consumeInt(0, 7) == 0 ? F_NEXT : 0), head);
                pushHead(head);
            } else {
                int[] slots = new int[n];
                for (int i = 0; i < n; i++) slots[i] = nextSlot();
                for (int i = 0; i < n; i++) {
                    int fl = flags[i] | (i < n - 1 ? F_NEXT : 0);
                    writeDesc(slots[i], addr[i], len[i], fl, i < n - 1 ? slots[i + 1] : d.consumeInt(0, 7) == 0 ? d.consumeInt(0, size) : 0);
                }
                pushHead(slots[0]);
            }
        }

        /** Writes a blk or scsi header into data space; returns its length. */
        private int header(long[] addr, int i) {
            switch (device) {
                case 0 -> {
                    int[] types = {0, 1, 4, 8, 11, 13, 10, 14};
                    int type = d.consumeBoolean() ? types[d.consumeInt(0, types.length - 1)] : d.consumeInt();
                    long sector = d.consumeBoolean() ? d.consumeInt(0, 300) : d.consumeLong();
                    byte[] h = new byte[32];
                    MemorySegment s = MemorySegment.ofArray(h);
                    s.set(ValueLayout.JAVA_INT_UNALIGNED, 0, type);
                    s.set(ValueLayout.JAVA_LONG_UNALIGNED, 8, sector);
                    // discard / write-zeroes segment
                    s.set(ValueLayout.JAVA_LONG_UNALIGNED, 16, d.consumeBoolean() ? d.consumeInt(0, 300) : d.consumeLong());
                    s.set(ValueLayout.JAVA_INT_UNALIGNED, 24, d.consumeBoolean() ? d.consumeInt(0, 64) : d.consumeInt());
                    s.set(ValueLayout.JAVA_INT_UNALIGNED, 28, d.consumeInt(0, 2));
                    int len = d.consumeBoolean() ? 16 : d.consumeBoolean() ? 32 : d.consumeInt(0, 32);
                    addr[i] = pickAddr(len);
                    guestBytes(addr[i], java.util.Arrays.copyOf(h, Math.min(len, 32)));
                    return len;
                }
                case 1 -> {
                    // virtio_scsi_req_cmd: lun[8], id, task_attr, prio, crn, cdb[32]
                    byte[] h = new byte[51];
                    h[0] = 1;
                    h[1] = (byte) (d.consumeBoolean() ? 0 : d.consumeInt(0, 255));
                    h[2] = (byte) (d.consumeBoolean() ? 0x40 : d.consumeInt(0, 255));
                    h[3] = (byte) (d.consumeBoolean() ? 0 : d.consumeInt(0, 255));
                    if (d.consumeInt(0, 7) == 0) h[0] = (byte) d.consumeInt(0, 255);
                    int[] ops = {0x00, 0x03, 0x12, 0x1a, 0x25, 0x28, 0x2a, 0x35, 0x42, 0x5a, 0x88, 0x8a, 0x9e, 0xa0, 0x93, 0x41, 0x2f, 0x1b, 0x4d, 0xa3};
                    h[19] = (byte) (d.consumeBoolean() ? ops[d.consumeInt(0, ops.length - 1)] : d.consumeInt(0, 255));
                    byte[] cdbRest = d.consumeBytes(15);
                    System.arraycopy(cdbRest, 0, h, 20, cdbRest.length);
                    int len = d.consumeBoolean() ? 51 : d.consumeInt(0, 64);
                    addr[i] = pickAddr(len);
                    guestBytes(addr[i], java.util.Arrays.copyOf(h, Math.min(len, 51)));
                    return len;
                }
                default -> {
                    // control queue: TMF (type 0) or AN query/subscribe (1, 2)
                    byte[] h = new byte[24];
                    h[0] = (byte) d.consumeInt(0, 3);
                    h[4] = (byte) d.consumeInt(0, 8);
                    h[8] = 1;
                    h[9] = (byte) (d.consumeBoolean() ? 0 : d.consumeInt(0, 255));
                    byte[] rest = d.consumeBytes(14);
                    System.arraycopy(rest, 0, h, 10, rest.length);
                    int len = d.consumeBoolean() ? (h[0] == 0 ? 24 : 12) : d.consumeInt(0, 32);
                    addr[i] = pickAddr(len);
                    guestBytes(addr[i], java.util.Arrays.copyOf(h, Math.min(len, 24)));
                    return len;
                }
            }
        }

        private int nextSlot() {
            int s = nextDesc;
            nextDesc = (nextDesc + 1) & (size - 1);
            return s;
        }

        private void writeDesc(int i, long addr, int len, int flags, int next) {
            guestDesc(descOff + 16L * i, addr, len, flags, next);
        }

        private void pushHead(int head) {
            guestShort(availOff + AVAIL_RING + 2L * (availIdx & (size - 1)), head);
            availIdx = (availIdx + 1) & 0xffff;
            guestShort(availOff + AVAIL_IDX, availIdx);
        }

        // ---- guest writes: skipped once memory vanished (the harness's own mapping would fault) ----

        private void guestDesc(long off, long addr, int len, int flags, int next) {
            if (vanished || off < 0 || off + 16 > REGION) return;
            a.set(ValueLayout.JAVA_LONG_UNALIGNED, off, addr);
            a.set(ValueLayout.JAVA_INT_UNALIGNED, off + 8, len);
            a.set(ValueLayout.JAVA_SHORT_UNALIGNED, off + 12, (short) flags);
            a.set(ValueLayout.JAVA_SHORT_UNALIGNED, off + 14, (short) next);
        }

        private void guestShort(long off, int v) {
            if (vanished || off < 0 || off + 2 > REGION) return;
            a.set(ValueLayout.JAVA_SHORT_UNALIGNED, off, (short) v);
        }

        /** {@code gpa} in region A's [0, REGION) or B's [gpaB, gpaB + REGION); anything else is dropped. */
        private void guestBytes(long gpa, byte[] bytes) {
            if (vanished) return;
            MemorySegment seg;
            long off;
            if (gpa >= 0 && gpa < REGION) {
                seg = a;
                off = gpa;
            } else if (gpa >= gpaB && gpa - gpaB < REGION) {
                seg = b;
                off = gpa - gpaB;
            } else {
                return;
            }
            int n = (int) Math.min(bytes.length, REGION - off);
            MemorySegment.copy(bytes, 0, seg, ValueLayout.JAVA_BYTE, off, n);
        }
    }

    /**
     * A block device that checks the buffers of every request it is handed against the guest
     * regions of the current input, then passes the request to a RAM device. Strict (virtio-blk):
     * every buffer lies inside one guest region. Otherwise (SCSI, whose WRITE SAME and
     * COMPARE AND WRITE use the task's own bounce buffer): a buffer that overlaps a guest region
     * lies inside it, i.e. no buffer is a guest range with wrong bounds.
     */
    static final class GuardedDevice implements BlockDevice {
        private static volatile MemorySegment[] allowed = new MemorySegment[0];
        private final BlockDevice inner;
        private final boolean strict;

        GuardedDevice(BlockDevice inner, boolean strict) {
            this.inner = inner;
            this.strict = strict;
        }

        static void allow(MemorySegment... regions) {
            allowed = regions;
        }

        void check(BlockRequest r) {
            MemorySegment[] ok = allowed;
            for (int i = 0; i < r.bufferCount(); i++) {
                long start = r.bufferSegment(i).address() + r.bufferOffset(i);
                long len = r.bufferLength(i);
                boolean inside = false;
                boolean overlaps = false;
                for (MemorySegment g : ok) {
                    long gs = g.address();
                    long ge = gs + g.byteSize();
                    if (start >= gs && len >= 0 && start + len <= ge) inside = true;
                    if (start < ge && start + len > gs) overlaps = true;
                }
                if (strict ? !inside : overlaps && !inside) {
                    throw new AssertionError("buffer " + i + " of a " + r.op + " (address 0x" + Long.toHexString(start) + ", " + len
                            + " bytes) is " + (overlaps ? "not inside one guest region" : "outside guest memory"));
                }
            }
        }

        @Override public String name() { return inner.name(); }
        @Override public String productName() { return inner.productName(); }
        @Override public int blockSize() { return inner.blockSize(); }
        @Override public long numBlocks() { return inner.numBlocks(); }
        @Override public UUID uuid() { return inner.uuid(); }
        @Override public boolean readOnly() { return inner.readOnly(); }
        @Override public boolean supportsUnmap() { return inner.supportsUnmap(); }
        @Override public boolean supportsWriteZeroes() { return inner.supportsWriteZeroes(); }
        @Override public boolean volatileWriteCache() { return inner.volatileWriteCache(); }
        @Override public void close() { inner.close(); }

        @Override
        public BlockChannel openChannel() {
            BlockChannel c = inner.openChannel();
            return new BlockChannel() {
                @Override
                public int submit(BlockRequest request) {
                    check(request);
                    return c.submit(request);
                }

                @Override public int poll() { return c.poll(); }
                @Override public int inFlight() { return c.inFlight(); }
                @Override public void close() { c.close(); }
            };
        }
    }
}
