package io.jvhost.initiator;

import io.jvhost.sys.EventFd;
import io.jvhost.sys.Fd;
import io.jvhost.virtio.DriverPackedQueue;
import io.jvhost.virtio.DriverQueue;
import io.jvhost.virtio.DriverSplitQueue;
import io.jvhost.virtio.SplitRing;
import io.jvhost.virtio.VirtioFeatures;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

/**
 * A poll-mode virtio driver over vhost-user with no VM (SPDK: virtio-user): shared memory from a
 * memfd, the front-end handshake of a {@link FrontendProfile} (ours by default, or one that
 * imitates QEMU, SPDK, libblkio, ...), split rings we lay out ourselves, and a scratch area plus
 * a data area in that memory for requests. Device-specific request builders
 * ({@link BlkInitiator}, {@link ScsiInitiator}) sit on top. Each queue is owned by one thread.
 *
 * <p>Memory is one memfd mapping, described to the back-end as one or more regions (the
 * profile's {@link FrontendProfile.Layout}): rings and scratch in the first, the data area in the
 * last, so no buffer straddles two regions.
 */
public class VhostUserDriver implements AutoCloseable {
    /** What kind of device the driver talks to. */
    public enum Kind { BLK, SCSI }

    /**
     * The ring layout: split (VIRTIO 1.2, 2.7) or packed (2.8, VIRTIO_F_RING_PACKED, asked for
     * and required: a target that does not offer it fails the connection).
     */
    public enum Ring {
        SPLIT, PACKED;

        /** "split" or "packed". */
        public String label() { return name().toLowerCase(); }
    }

    /**
     * One region of the shared memory as the back-end sees it: {@code size} bytes at mapping
     * offset {@code offset}, at guest-physical address {@code gpa}.
     */
    public record Region(long offset, long size, long gpa) {}

    /** Where the default layout puts guest memory (above 4 GiB, so a zero address is never valid). */
    static final long DEFAULT_GPA_BASE = 0x100000000L;
    private static final long SCRATCH_BYTES = 65536;

    protected final VhostUserFrontend fe;
    protected final SharedMemory mem;
    protected final Kind kind;
    /** One per ring: {@link DriverSplitQueue} or {@link DriverPackedQueue}, as {@link #ring} says. */
    protected final DriverQueue[] queues;
    protected final Ring ring;
    protected final int[] kickFds;
    protected final int[] callFds;
    protected final int queueSize;
    protected final long wantFeatures;
    protected final int configSize;
    protected final FrontendProfile profile;
    private final long[] descOff, availOff, usedOff;
    private final List<Region> regions = new ArrayList<>();
    protected long negotiated;
    protected long protocolFeatures;
    protected byte[] config = new byte[0];
    /** 64 KiB of scratch for request/response headers. */
    protected final long scratchOff;
    protected final long dataOff;
    protected final long dataLen;
    private final Arena arena = Arena.ofShared();
    protected final MemorySegment eventScratch = arena.allocate(8, 8);
    private int lastUsedLen;
    private int lastHead = -1;
    private boolean stopped;

    protected VhostUserDriver(String socket, int numQueues, int queueSize, long dataBytes, long wantFeatures, int configSize) throws IOException {
        this(socket, Kind.BLK, numQueues, queueSize, dataBytes, wantFeatures, configSize, FrontendProfile.JVHOST, false);
    }

    /** Split rings. */
    protected VhostUserDriver(String socket, Kind kind, int numQueues, int queueSize, long dataBytes, long wantFeatures, int configSize,
                              FrontendProfile profile, boolean hugepages) throws IOException {
        this(socket, kind, numQueues, queueSize, dataBytes, wantFeatures, configSize, profile, hugepages, Ring.SPLIT);
    }

    /**
     * @param hugepages shared memory from 2 MiB hugepages ({@link SharedMemory}), as SPDK's target needs
     * @param ring      split or packed rings; packed adds VIRTIO_F_RING_PACKED to {@code wantFeatures}
     */
    protected VhostUserDriver(String socket, Kind kind, int numQueues, int queueSize, long dataBytes, long wantFeatures, int configSize,
                              FrontendProfile profile, boolean hugepages, Ring ring) throws IOException {
        if (ring == Ring.PACKED && (queueSize < 1 || queueSize > DriverPackedQueue.MAX_SIZE)) {
            throw new IllegalArgumentException("packed queue size " + queueSize + " (1.." + DriverPackedQueue.MAX_SIZE + ")");
        }
        if (ring == Ring.SPLIT && !SplitRing.validSize(queueSize)) {
            throw new IllegalArgumentException("split queue size " + queueSize + " is not a power of two (packed rings may have any size)");
        }
        long ringBytes = (long) numQueues * (SplitRing.descTableBytes(queueSize) + SplitRing.availBytes(queueSize) + SplitRing.usedBytes(queueSize) + 3 * 4096);
        long low = (ringBytes + SCRATCH_BYTES + 0x1fffff) & ~0x1fffffL;
        long high = (dataBytes + 0x1fffff) & ~0x1fffffL;
        // Memory first: a missing hugepage pool is reported before the target sees a connection.
        SharedMemory m = new SharedMemory(low + high, DEFAULT_GPA_BASE, hugepages);
        VhostUserFrontend f;
        try {
            f = VhostUserFrontend.connect(socket);
        } catch (RuntimeException e) {
            m.close();
            throw e;
        }
        this.fe = f;
        this.mem = m;
        this.kind = kind;
        this.profile = profile;
        this.queueSize = queueSize;
        this.ring = ring;
        this.wantFeatures = ring == Ring.PACKED ? wantFeatures | VirtioFeatures.bit(VirtioFeatures.RING_PACKED)
                : wantFeatures & ~VirtioFeatures.bit(VirtioFeatures.RING_PACKED);
        this.configSize = configSize;
        this.queues = new DriverQueue[numQueues];
        this.kickFds = new int[numQueues];
        this.callFds = new int[numQueues];
        this.descOff = new long[numQueues];
        this.availOff = new long[numQueues];
        this.usedOff = new long[numQueues];
        java.util.Arrays.fill(kickFds, -1);
        java.util.Arrays.fill(callFds, -1);
        try {
            for (int q = 0; q < numQueues; q++) {
                if (ring == Ring.PACKED) {
                    // descriptor ring; the driver and device event suppression areas (what
                    // SET_VRING_ADDR carries as "avail" and "used") each on a cache line of its own
                    descOff[q] = mem.allocate(DriverPackedQueue.ringBytes(queueSize), 4096);
                    availOff[q] = mem.allocate(DriverPackedQueue.EVENT_BYTES, 64);
                    usedOff[q] = mem.allocate(DriverPackedQueue.EVENT_BYTES, 64);
                } else {
                    descOff[q] = mem.allocate(SplitRing.descTableBytes(queueSize), 4096);
                    availOff[q] = mem.allocate(SplitRing.availBytes(queueSize), 4096);
                    usedOff[q] = mem.allocate(SplitRing.usedBytes(queueSize), 4096);
                }
                kickFds[q] = EventFd.create(true);
                callFds[q] = EventFd.create(true);
            }
            scratchOff = mem.allocate(SCRATCH_BYTES, 4096);
            mem.allocate(low - (scratchOff + SCRATCH_BYTES), 1); // the rest of the low part
            dataLen = dataBytes;
            dataOff = mem.allocate(dataBytes, 4096);
            regions.addAll(profile.layout().regions(mem, low));
            profile.start(this);
            boolean eventIdx = VirtioFeatures.has(negotiated, VirtioFeatures.RING_EVENT_IDX);
            MemorySegment s = mem.segment();
            for (int q = 0; q < numQueues; q++) {
                queues[q] = ring == Ring.PACKED
                        ? new DriverPackedQueue(queueSize, s.asSlice(descOff[q]), s.asSlice(availOff[q]), s.asSlice(usedOff[q]), eventIdx)
                        : new DriverSplitQueue(queueSize, s.asSlice(descOff[q]), s.asSlice(availOff[q]), s.asSlice(usedOff[q]), eventIdx);
            }
        } catch (IOException | RuntimeException e) {
            close();
            throw e;
        }
    }

    /** Features the driver asks for by default: all but packed rings. */
    public static long defaultFeatures() {
        // Not VHOST_F_LOG_ALL either: a front-end sets it only while it migrates.
        // -Djvhost.initiator.maskFeatures=0x...: feature bits not to ask for (experiments, e.g.
        // 0x20000000 drives a target without VIRTIO_RING_F_EVENT_IDX as SPDK's virtio driver does).
        return ~0L & ~VirtioFeatures.bit(VirtioFeatures.RING_PACKED) & ~VirtioFeatures.bit(VirtioFeatures.LOG_ALL)
                & ~Long.getLong("jvhost.initiator.maskFeatures", 0L);
    }

    public long negotiatedFeatures() { return negotiated; }
    public long negotiatedProtocolFeatures() { return protocolFeatures; }
    public byte[] config() { return config.clone(); }
    public VhostUserFrontend frontend() { return fe; }
    public SharedMemory memory() { return mem; }
    /** Queue {@code q} of a split-ring driver (tests that write raw split rings); see {@link #ring(int)}. */
    public DriverSplitQueue queue(int q) {
        if (queues[q] instanceof DriverSplitQueue sq) return sq;
        throw new IllegalStateException("queue " + q + " is a packed ring: use ring(q) or packedQueue(q)");
    }
    /** Queue {@code q}, whatever its layout. */
    public DriverQueue ring(int q) { return queues[q]; }
    /** Queue {@code q} of a packed-ring driver. */
    public DriverPackedQueue packedQueue(int q) {
        if (queues[q] instanceof DriverPackedQueue pq) return pq;
        throw new IllegalStateException("queue " + q + " is a split ring");
    }
    /** The ring layout negotiated and in use. */
    public Ring ringLayout() { return ring; }
    public int queueCount() { return queues.length; }
    public int queueSize() { return queueSize; }
    public int kickFd(int q) { return kickFds[q]; }
    public int callFd(int q) { return callFds[q]; }
    public Kind kind() { return kind; }
    public FrontendProfile profile() { return profile; }
    /** The regions the back-end was given. */
    public List<Region> regions() { return List.copyOf(regions); }

    // ---- for profiles: what the handshake needs ----

    /** Features this driver would ack: the caller's wish, narrowed by the profile. */
    long wantedFeatures() { return wantFeatures; }
    int wantedConfigSize() { return configSize; }
    /** Records the features the profile acks; fails when packed rings were asked for and not offered. */
    void negotiated(long features) throws IOException {
        if (ring == Ring.PACKED && !VirtioFeatures.has(features, VirtioFeatures.RING_PACKED)) {
            throw new IOException("the target does not offer VIRTIO_F_RING_PACKED (feature bit 34), or the " + profile.name()
                    + " front-end profile does not ack it: use split rings");
        }
        negotiated = features;
    }

    /**
     * The SET_VRING_BASE value for a fresh ring: 0 for split; for packed (vhost-user.rst, as QEMU
     * and DPDK encode it) bits 0-14 the next avail position, bit 15 the avail wrap counter: 0x8000.
     */
    int initialVringBase(int q) {
        return queues[q] instanceof DriverPackedQueue pq ? pq.vringBase() : ring == Ring.PACKED ? 0x8000 : 0;
    }
    void protocolFeatures(long pf) { protocolFeatures = pf; }
    void config(byte[] c) { config = c; }
    long descUva(int q) { return mem.uva(descOff[q]); }
    long availUva(int q) { return mem.uva(availOff[q]); }
    long usedUva(int q) { return mem.uva(usedOff[q]); }

    /** Guest-physical address of mapping offset {@code off}. */
    public long gpaOf(long off) {
        for (Region r : regions) {
            if (off >= r.offset() && off < r.offset() + r.size()) return r.gpa() + (off - r.offset());
        }
        throw new IllegalArgumentException("offset 0x" + Long.toHexString(off) + " is in no region");
    }

    /** The data buffer area. */
    public MemorySegment data() { return mem.segment().asSlice(dataOff, dataLen); }
    public long dataGpa() { return gpaOf(dataOff); }
    /** The 64 KiB header scratch area. */
    public MemorySegment scratch() { return mem.segment().asSlice(scratchOff, SCRATCH_BYTES); }
    public long scratchGpa() { return gpaOf(scratchOff); }

    /** Publishes what was queued on {@code q} and kicks if the device wants a kick. */
    public void publishAndKick(int q) {
        queues[q].publish();
        if (queues[q].needsKick()) EventFd.signal(kickFds[q], eventScratch);
    }

    /** Busy-waits until {@code head} comes back on queue {@code q}; returns its used length. */
    public int waitFor(int q, int head, Duration timeout) throws IOException {
        long deadline = System.nanoTime() + timeout.toNanos();
        lastHead = -1;
        while (true) {
            queues[q].pollUsed((h, len) -> {
                lastHead = h;
                lastUsedLen = len;
            });
            if (lastHead == head) return lastUsedLen;
            if (System.nanoTime() > deadline) throw new IOException("no completion for head " + head + " on queue " + q + " within " + timeout);
            Thread.onSpinWait();
        }
    }

    /**
     * Stops the device as the profile's front-end does (QEMU: disable and GET_VRING_BASE each
     * ring; SPDK: GET_VRING_BASE each ring); returns the avail index the back-end reported per
     * ring. The connection stays open.
     */
    public int[] stop() throws IOException {
        stopped = true;
        return profile.stop(this);
    }

    public boolean stopped() { return stopped; }

    @Override
    public void close() {
        fe.close();
        for (int f : kickFds) Fd.closeQuietly(f);
        for (int f : callFds) Fd.closeQuietly(f);
        mem.close();
        arena.close();
    }
}
