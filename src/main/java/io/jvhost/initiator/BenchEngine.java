package io.jvhost.initiator;

import io.jvhost.virtio.LittleEndian;
import io.jvhost.sys.Affinity;
import io.jvhost.virtio.DriverPackedQueue;
import io.jvhost.virtio.DriverQueue;
import io.jvhost.virtio.DriverSplitQueue;
import org.HdrHistogram.Histogram;

import java.io.IOException;
import java.io.PrintStream;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.time.Duration;
import java.util.SplittableRandom;

import static io.jvhost.virtio.BlkLayout.*;

/**
 * The benchmark loop of {@code jvhost bench} (SPDK: bdevperf over virtio-user): one thread
 * drives every queue of one vhost-user-blk or -scsi target in poll mode, keeping {@code qd}
 * requests in flight per queue; each completion is resubmitted at once. Latency goes into an
 * HdrHistogram. Nothing is allocated per request.
 *
 * <p>Per-request discipline (so that the bench measures the target, not itself; SPDK's
 * bdevperf over virtio-user is the yardstick): virtio-blk requests use chains built once per
 * slot and then only re-offered ({@link DriverSplitQueue#endPinned}), so no descriptor is
 * written per request; a slot's header and status byte share one cache line; the avail index
 * is published and the kick decided once per poll that reaped something (no kick while the
 * target polls with notifications off); and the clock is read twice per such poll, not twice
 * per request: a completion is stamped with the time of the poll that found it, a submission
 * with the time right after the publish that made it visible (a clock read costs ~80–100 ns
 * on these VMs, as much as the rest of a request).
 *
 * <p>Rings: split by default; {@link VhostUserDriver.Ring#PACKED} drives packed rings
 * ({@link DriverPackedQueue}): a pinned chain is rewritten into the ring from its template on
 * each offer (a packed ring has no table to leave it in), and the batch becomes visible with one
 * release store of its first head's flags; with {@code indirect} each request is a single ring
 * descriptor pointing at the slot's pinned table. The queues are used through
 * {@link DriverQueue}: one implementation per run, so every call site stays monomorphic.
 */
public final class BenchEngine {
    public enum Type { BLK, SCSI }

    public enum Workload {
        READ, WRITE, RANDREAD, RANDWRITE, RANDRW, RW;

        boolean random() { return this == RANDREAD || this == RANDWRITE || this == RANDRW; }
        boolean mixed() { return this == RANDRW || this == RW; }
    }

    /**
     * @param hugepages the initiator's shared memory from 2 MiB hugepages (SPDK's target needs it)
     * @param ring      split or packed virtqueues (packed: VIRTIO_F_RING_PACKED, required of the target)
     * @param indirect  packed only: each blk request is one ring descriptor pointing at the slot's
     *                  pinned indirect table (VIRTIO_F_RING_INDIRECT_DESC), instead of a 3-descriptor chain
     */
    public record Config(String socket, Type type, Workload workload, int readPercent, int blockSize, int queueDepth, int queues,
                         Duration time, Duration ramp, boolean verify, int cpu, int queueSize, boolean progress, boolean interrupts,
                         boolean hugepages, VhostUserDriver.Ring ring, boolean indirect) {
        /** Split rings. */
        public Config(String socket, Type type, Workload workload, int readPercent, int blockSize, int queueDepth, int queues,
                      Duration time, Duration ramp, boolean verify, int cpu, int queueSize, boolean progress, boolean interrupts,
                      boolean hugepages) {
            this(socket, type, workload, readPercent, blockSize, queueDepth, queues, time, ramp, verify, cpu, queueSize, progress, interrupts,
                    hugepages, VhostUserDriver.Ring.SPLIT, false);
        }

        /** This configuration with another ring layout. */
        public Config withRing(VhostUserDriver.Ring r, boolean indirectTables) {
            return new Config(socket, type, workload, readPercent, blockSize, queueDepth, queues, time, ramp, verify, cpu, queueSize, progress,
                    interrupts, hugepages, r, indirectTables);
        }

        /** "split", "packed" or "packed-indirect". */
        public String ringLabel() {
            return ring.label() + (indirect ? "-indirect" : "");
        }

        /** Ordinary (non-hugepage) memory. */
        public Config(String socket, Type type, Workload workload, int readPercent, int blockSize, int queueDepth, int queues,
                      Duration time, Duration ramp, boolean verify, int cpu, int queueSize, boolean progress, boolean interrupts) {
            this(socket, type, workload, readPercent, blockSize, queueDepth, queues, time, ramp, verify, cpu, queueSize, progress, interrupts, false);
        }

        /** Poll mode (no interrupts). */
        public Config(String socket, Type type, Workload workload, int readPercent, int blockSize, int queueDepth, int queues,
                      Duration time, Duration ramp, boolean verify, int cpu, int queueSize, boolean progress) {
            this(socket, type, workload, readPercent, blockSize, queueDepth, queues, time, ramp, verify, cpu, queueSize, progress, false);
        }
    }

    public record Result(String workload, int blockSize, int queueDepth, int queues, double seconds, long ios, long bytes,
                         double iops, double mibPerSec, double avgUs, double p50Us, double p99Us, double p999Us, double maxUs,
                         long errors, long verifyErrors, long kicks, String ring) {}

    private final Config cfg;
    private final VhostUserDriver driver;
    private final int firstQueue;
    private final long units;         // device size in blocks of blockSize
    private final Slot[][] slots;     // [queue][slot]
    private final Slot[][] byHead;    // [queue][head]
    private final SplittableRandom rnd = new SplittableRandom(42);
    private final Histogram hist = new Histogram(60_000_000_000L, 3);
    private final PrintStream out;
    private int scsiBlockSize = 512;
    private final int[] writtenGen;   // verify: generation last written per unit (0 = never)
    private final boolean[] busy;     // verify: unit has a request in flight
    private long nextSeq;             // sequential workloads
    private long ios, bytes, errors, verifyErrors, kicks;
    private boolean recording;
    private int currentQueue;
    private final DriverQueue.UsedHandler onUsed = this::completed;
    /**
     * Experiment knob ({@code -Djvhost.bench.publishEach=true}): publish the avail index after
     * every resubmission instead of once per poll, as SPDK's virtio driver does per request; a
     * target busy with a batch then sees the next requests while it works.
     */
    private static final boolean PUBLISH_EACH = Boolean.getBoolean("jvhost.bench.publishEach");
    private long pollNs;              // clock of the current poll, read at its first completion (0: not yet)
    private final Slot[] submitted;   // slots submitted since the last publish, stamped after it
    private int submittedCount;

    /** One in-flight request position: its header, data and status locations. */
    private static final class Slot {
        int queue;
        long hdrOff, dataOff, statusOff;
        long tableOff = -1;   // blk on packed-indirect: the slot's pinned indirect table
        long startNs;
        long unit;
        boolean write;
        int gen;
        int head = -1;        // blk: the slot's pinned chain
        boolean chainWrite;   // blk: direction the pinned chain's data descriptor has now
    }

    // blk: 16-byte header, status byte. scsi: 19+32 request, 12+96 response.
    private static final int SCSI_REQ = 51, SCSI_RESP = 108;

    public BenchEngine(Config cfg, PrintStream out) throws IOException {
        this.cfg = cfg;
        this.out = out;
        int perSlotHdr = 256;
        // A header area (one cache line per blk slot: header then status byte, as bdevperf's
        // virtio-blk request context has them; 256 bytes per scsi slot), then data buffers each
        // 4 KiB-aligned (as a guest's, and as fio --direct=1 allocates them): an O_DIRECT back-end
        // (jvhost's file bdevs, qemu-storage-daemon's cache.direct=on) uses them without falling
        // back to the page cache or a bounce buffer.
        long slotsTotal = (long) cfg.queues() * cfg.queueDepth();
        long dataStride = (cfg.blockSize() + 4095L) & -4096L;
        long headerBytes = (slotsTotal * perSlotHdr + 4095L) & -4096L;
        long dataBytes = headerBytes + slotsTotal * dataStride + 4096;
        if (cfg.indirect() && (cfg.ring() != VhostUserDriver.Ring.PACKED || cfg.type() != Type.BLK)) {
            throw new IllegalArgumentException("indirect tables are for blk on packed rings only");
        }
        if (cfg.type() == Type.BLK) {
            BlkInitiator b = BlkInitiator.connect(cfg.socket(), cfg.queues(), cfg.queueSize(), dataBytes, cfg.hugepages(), cfg.ring());
            driver = b;
            firstQueue = 0;
            units = b.capacitySectors() * SECTOR_SIZE / cfg.blockSize();
        } else {
            ScsiInitiator s = ScsiInitiator.connect(cfg.socket(), cfg.queues(), cfg.queueSize(), dataBytes, cfg.hugepages(), cfg.ring());
            driver = s;
            firstQueue = io.jvhost.virtio.ScsiLayout.FIRST_REQUEST_QUEUE;
            ScsiInitiator.Response r = s.command(0, 0, 0, new byte[] {(byte) 0x9e, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0}, 0, 32);
            if (r.response() != 0 || r.status() != 0) throw new IOException("READ CAPACITY(16) on target 0 failed: response " + r.response() + " status " + r.status());
            long lastLba = Long.reverseBytes(s.data().get(ValueLayout.JAVA_LONG_UNALIGNED, 0));
            int lbs = Integer.reverseBytes(s.data().get(ValueLayout.JAVA_INT_UNALIGNED, 8));
            if (cfg.blockSize() % lbs != 0) throw new IOException("block size " + cfg.blockSize() + " is not a multiple of the LUN's " + lbs);
            units = (lastLba + 1) * lbs / cfg.blockSize();
            scsiBlockSize = lbs;
        }
        if (units < 1) throw new IOException("device smaller than one " + cfg.blockSize() + "-byte block");
        if (cfg.queueDepth() > cfg.queueSize() / 3) {
            throw new IOException("queue depth " + cfg.queueDepth() + " needs " + 3 * cfg.queueDepth() + " descriptors; use --queue-size >= " + 3 * cfg.queueDepth());
        }
        writtenGen = cfg.verify() ? new int[(int) Math.min(units, 1 << 24)] : null;
        busy = cfg.verify() ? new boolean[writtenGen.length] : null;
        slots = new Slot[cfg.queues()][cfg.queueDepth()];
        byHead = new Slot[cfg.queues()][cfg.queueSize()];
        submitted = new Slot[cfg.queues() * cfg.queueDepth()];
        // blk: header and status in one line; packed-indirect adds the slot's table in the next
        int hdrStride = cfg.type() == Type.BLK ? (cfg.indirect() ? 128 : 64) : perSlotHdr;
        if (cfg.indirect() && !io.jvhost.virtio.VirtioFeatures.has(driver.negotiatedFeatures(), io.jvhost.virtio.VirtioFeatures.RING_INDIRECT_DESC)) {
            driver.close();
            throw new IOException("the target does not offer VIRTIO_F_RING_INDIRECT_DESC (needed for indirect tables)");
        }
        long hdr = driver.dataOff;
        long data = (driver.dataOff + slotsTotal * hdrStride + 4095) & ~4095L;
        MemorySegment m = driver.mem.segment();
        for (int q = 0; q < cfg.queues(); q++) {
            for (int i = 0; i < cfg.queueDepth(); i++) {
                Slot s = new Slot();
                s.queue = q;
                s.hdrOff = hdr;
                s.statusOff = cfg.type() == Type.BLK ? hdr + HEADER_SIZE : hdr + 128;
                s.dataOff = data;
                hdr += hdrStride;
                data += dataStride;
                slots[q][i] = s;
                if (cfg.type() == Type.BLK) {
                    // built once: header (R), data (W for reads), status (W); re-offered per request
                    // (split: the descriptors stay in the table; packed: rewritten into the ring
                    // from the chain's template, or one descriptor pointing at the slot's table)
                    DriverQueue dq = driver.queues[firstQueue + q];
                    if (cfg.indirect()) {
                        s.tableOff = s.hdrOff + 64;
                        DriverPackedQueue.writeTableEntry(m, s.tableOff, 0, driver.mem.gpa(s.hdrOff), HEADER_SIZE, false);
                        DriverPackedQueue.writeTableEntry(m, s.tableOff, 1, driver.mem.gpa(s.dataOff), cfg.blockSize(), true);
                        DriverPackedQueue.writeTableEntry(m, s.tableOff, 2, driver.mem.gpa(s.statusOff), 1, true);
                        DriverPackedQueue pq = (DriverPackedQueue) dq;
                        pq.begin(1);
                        pq.addIndirect(driver.mem.gpa(s.tableOff), 3);
                    } else {
                        dq.begin(3);
                        dq.add(driver.mem.gpa(s.hdrOff), HEADER_SIZE, false);
                        dq.add(driver.mem.gpa(s.dataOff), cfg.blockSize(), true);
                        dq.add(driver.mem.gpa(s.statusOff), 1, true);
                    }
                    s.head = dq.endPinned();
                    s.chainWrite = false;
                    m.set(LittleEndian.U32, s.hdrOff, T_IN);
                    m.set(LittleEndian.U32, s.hdrOff + 4, 0);
                    byHead[q][s.head] = s;
                }
            }
        }
        if (data > driver.dataOff + dataBytes) throw new IllegalStateException("bench buffers overflow their area");
    }

    private long verifyUnits() {
        return writtenGen == null ? units : writtenGen.length;
    }

    private void submit(Slot s) {
        boolean write = switch (cfg.workload()) {
            case READ, RANDREAD -> false;
            case WRITE, RANDWRITE -> true;
            case RANDRW, RW -> rnd.nextInt(100) >= cfg.readPercent();
        };
        long unit;
        long span = verifyUnits();
        if (cfg.workload().random()) {
            unit = rnd.nextLong(span);
            if (busy != null) for (int tries = 0; busy[(int) unit] && tries < 16; tries++) unit = rnd.nextLong(span);
        } else {
            unit = nextSeq++ % span;
        }
        if (busy != null) {
            if (busy[(int) unit]) write = false; // rare: still busy after retries, read it (not verified)
            busy[(int) unit] = true;
        }
        s.unit = unit;
        s.write = write;
        MemorySegment m = driver.mem.segment();
        if (write && writtenGen != null) {
            s.gen = writtenGen[(int) unit] + 1;
            stamp(m, s.dataOff, unit, s.gen);
        } else if (writtenGen != null) {
            s.gen = writtenGen[(int) unit];
        }
        DriverQueue dq = driver.queues[firstQueue + s.queue];
        if (cfg.type() == Type.BLK) {
            if (write != s.chainWrite) {
                // the chain is not in flight: flip its data descriptor and the request type
                if (s.tableOff >= 0) DriverPackedQueue.setTableEntryWritable(m, s.tableOff, 1, !write);
                else dq.setWritable(s.head, 1, !write);
                m.set(LittleEndian.U32, s.hdrOff, write ? T_OUT : T_IN);
                s.chainWrite = write;
            }
            m.set(LittleEndian.U64, s.hdrOff + 8, unit * cfg.blockSize() / SECTOR_SIZE);
            m.set(ValueLayout.JAVA_BYTE, s.statusOff, (byte) 0xff);
            dq.offer(s.head);
        } else {
            dq.begin(3);
            scsiHeader(m, s.hdrOff, write, unit);
            m.set(ValueLayout.JAVA_BYTE, s.statusOff + 11, (byte) 0xff);
            dq.add(driver.mem.gpa(s.hdrOff), SCSI_REQ, false);
            if (write) dq.add(driver.mem.gpa(s.dataOff), cfg.blockSize(), false);
            dq.add(driver.mem.gpa(s.statusOff), SCSI_RESP, true);
            if (!write) dq.add(driver.mem.gpa(s.dataOff), cfg.blockSize(), true);
            int head = dq.end();
            byHead[s.queue][head] = s;
        }
        submitted[submittedCount++] = s; // stamped by stampSubmitted() after the publish
    }

    /** Gives every slot submitted since the last call the time its request became visible. */
    private void stampSubmitted() {
        long now = System.nanoTime();
        for (int i = 0; i < submittedCount; i++) submitted[i].startNs = now;
        submittedCount = 0;
    }

    private void scsiHeader(MemorySegment m, long at, boolean write, long unit) {
        m.asSlice(at, SCSI_REQ).fill((byte) 0);
        m.set(ValueLayout.JAVA_BYTE, at, (byte) 1);
        m.set(ValueLayout.JAVA_BYTE, at + 2, (byte) 0x40);
        // READ(16)/WRITE(16) in the LUN's logical blocks
        long lbaPerUnit = cfg.blockSize() / scsiBlockSize;
        long lba = unit * lbaPerUnit;
        int c = 19;
        m.set(ValueLayout.JAVA_BYTE, at + c, (byte) (write ? 0x8a : 0x88));
        m.set(ValueLayout.JAVA_LONG_UNALIGNED, at + c + 2, Long.reverseBytes(lba));
        m.set(ValueLayout.JAVA_INT_UNALIGNED, at + c + 10, Integer.reverseBytes((int) lbaPerUnit));
    }

    /** Every 512-byte sector starts with (unit, generation, sector index): a misplaced or stale block shows. */
    private void stamp(MemorySegment m, long off, long unit, int gen) {
        for (int i = 0; i < cfg.blockSize() / SECTOR_SIZE; i++) {
            m.set(ValueLayout.JAVA_LONG_UNALIGNED, off + (long) i * SECTOR_SIZE, unit);
            m.set(ValueLayout.JAVA_LONG_UNALIGNED, off + (long) i * SECTOR_SIZE + 8, ((long) gen << 32) | i);
        }
    }

    private void completed(int head, int len) {
        Slot s = byHead[currentQueue][head];
        long now = pollNs;
        if (now == 0) now = pollNs = System.nanoTime();
        MemorySegment m = driver.mem.segment();
        boolean ok;
        if (cfg.type() == Type.BLK) {
            ok = m.get(ValueLayout.JAVA_BYTE, s.statusOff) == S_OK;
        } else {
            ok = m.get(ValueLayout.JAVA_BYTE, s.statusOff + 11) == 0 && m.get(ValueLayout.JAVA_BYTE, s.statusOff + 10) == 0;
        }
        if (busy != null) {
            busy[(int) s.unit] = false;
            if (ok && s.write) writtenGen[(int) s.unit] = s.gen;
            if (ok && !s.write && s.gen != 0 && !checkStamp(m, s.dataOff, s.unit, s.gen)) verifyErrors++;
        }
        if (recording) {
            if (!ok) errors++;
            ios++;
            bytes += cfg.blockSize();
            hist.recordValue(Math.min(now - s.startNs, hist.getHighestTrackableValue()));
        }
        submit(s);
        if (PUBLISH_EACH) driver.queues[firstQueue + currentQueue].publish();
    }

    private boolean checkStamp(MemorySegment m, long off, long unit, int gen) {
        for (int i = 0; i < cfg.blockSize() / SECTOR_SIZE; i++) {
            if (m.get(ValueLayout.JAVA_LONG_UNALIGNED, off + (long) i * SECTOR_SIZE) != unit) return false;
            if (m.get(ValueLayout.JAVA_LONG_UNALIGNED, off + (long) i * SECTOR_SIZE + 8) != (((long) gen << 32) | i)) return false;
        }
        return true;
    }

    /** Runs ramp-up then the measured time; prints a progress line a second when asked. */
    public Result run() {
        if (cfg.cpu() >= 0) Affinity.pinCurrentThread(cfg.cpu());
        io.jvhost.sys.Epoll epoll = null;
        if (cfg.interrupts()) {
            epoll = new io.jvhost.sys.Epoll(cfg.queues());
            for (int q = 0; q < cfg.queues(); q++) epoll.add(driver.callFds[firstQueue + q], io.jvhost.sys.Epoll.EPOLLIN, q);
        }
        try {
            return loop(epoll);
        } finally {
            if (epoll != null) epoll.close();
        }
    }

    private Result loop(io.jvhost.sys.Epoll epoll) {
        for (int q = 0; q < cfg.queues(); q++) {
            // Poll mode: we reap completions ourselves, so ask the target not to write the call
            // eventfd. Interrupt mode: ask for one per completion batch and sleep on it when idle.
            driver.queues[firstQueue + q].wantInterrupts(epoll != null);
            for (Slot s : slots[q]) submit(s);
            driver.publishAndKick(firstQueue + q);
            stampSubmitted();
        }
        long t0 = System.nanoTime();
        long rampEnd = t0 + cfg.ramp().toNanos();
        long end = rampEnd + cfg.time().toNanos();
        recording = cfg.ramp().isZero();
        long measureStart = t0;
        long nextTick = t0 + 1_000_000_000L;
        long lastIos = 0;
        int sec = 0;
        long iter = 0;
        while (true) {
            int reaped = 0;
            for (int q = 0; q < cfg.queues(); q++) {
                currentQueue = q;
                DriverQueue dq = driver.queues[firstQueue + q];
                int n = dq.pollUsed(onUsed);
                reaped += n;
                if (n > 0) {
                    pollNs = 0;
                    dq.publish();
                    if (dq.needsKick()) {
                        kicks++;
                        io.jvhost.sys.EventFd.signal(driver.kickFds[firstQueue + q], driver.eventScratch);
                    }
                    stampSubmitted();
                }
            }
            if (epoll != null && reaped == 0) {
                // Interrupt mode: wait for a call eventfd (bounded, so the clock is still checked).
                int ev = epoll.await(100);
                for (int i = 0; i < ev; i++) io.jvhost.sys.EventFd.drain(driver.callFds[firstQueue + (int) epoll.data(i)], driver.eventScratch);
                iter |= 255;
            }
            if ((++iter & 255) != 0) continue;
            long now = System.nanoTime();
            if (!recording && now >= rampEnd) {
                recording = true;
                measureStart = now;
                nextTick = now + 1_000_000_000L;
                lastIos = 0;
            }
            if (recording && now >= nextTick) {
                sec++;
                if (cfg.progress()) {
                    long d = ios - lastIos;
                    out.printf("  %3ds  %,12d IOPS  %9.1f MiB/s  avg %8.2f us%n", sec, d, d * (double) cfg.blockSize() / (1 << 20),
                            hist.getTotalCount() == 0 ? 0.0 : hist.getMean() / 1000.0);
                }
                lastIos = ios;
                nextTick += 1_000_000_000L;
            }
            if (now >= end) {
                double secs = (now - measureStart) / 1e9;
                return new Result(cfg.workload().name().toLowerCase(), cfg.blockSize(), cfg.queueDepth(), cfg.queues(), secs, ios, bytes,
                        ios / secs, bytes / secs / (1 << 20), hist.getMean() / 1000.0, hist.getValueAtPercentile(50) / 1000.0,
                        hist.getValueAtPercentile(99) / 1000.0, hist.getValueAtPercentile(99.9) / 1000.0, hist.getMaxValue() / 1000.0,
                        errors, verifyErrors, kicks, cfg.ringLabel());
            }
        }
    }

    /** The ring layout in use: "split", "packed" or "packed-indirect". */
    public String ring() {
        return cfg.ringLabel();
    }

    /** Whether the initiator's memory is backed by hugepages. */
    public boolean hugepages() {
        return driver.mem.hugepages();
    }

    public void close() {
        driver.close();
    }
}
