package io.jvhost.initiator;

import io.jvhost.sys.EventFd;
import io.jvhost.sys.Fd;
import io.jvhost.virtio.DriverSplitQueue;
import io.jvhost.virtio.SplitRing;
import io.jvhost.virtio.VirtioFeatures;
import io.jvhost.vhostuser.VhostUserProtocol;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.time.Duration;

/**
 * A poll-mode virtio driver over vhost-user with no VM (SPDK: virtio-user): shared memory from a
 * memfd, the front-end handshake QEMU would do, split rings we lay out ourselves, and a scratch
 * area plus a data area in that memory for requests. Device-specific request builders
 * ({@link BlkInitiator}, {@link ScsiInitiator}) sit on top. Each queue is owned by one thread.
 */
public class VhostUserDriver implements AutoCloseable {
    protected final VhostUserFrontend fe;
    protected final SharedMemory mem;
    protected final DriverSplitQueue[] queues;
    protected final int[] kickFds;
    protected final int[] callFds;
    protected final long negotiated;
    protected final byte[] config;
    /** 64 KiB of scratch for request/response headers. */
    protected final long scratchOff;
    protected final long dataOff;
    protected final long dataLen;
    private final Arena arena = Arena.ofShared();
    protected final MemorySegment eventScratch = arena.allocate(8, 8);
    private int lastUsedLen;
    private int lastHead = -1;

    protected VhostUserDriver(String socket, int numQueues, int queueSize, long dataBytes, long wantFeatures, int configSize) throws IOException {
        this(socket, numQueues, queueSize, dataBytes, wantFeatures, configSize, false);
    }

    /** @param hugepages shared memory from 2 MiB hugepages ({@link SharedMemory}), as SPDK's target needs */
    protected VhostUserDriver(String socket, int numQueues, int queueSize, long dataBytes, long wantFeatures, int configSize,
                              boolean hugepages) throws IOException {
        long ringBytes = (long) numQueues * 3 * (SplitRing.usedBytes(queueSize) + 8192);
        // Memory first: a missing hugepage pool is reported before the target sees a connection.
        SharedMemory m = new SharedMemory(((ringBytes + dataBytes + 65536 * 2) + 0x1fffff) & ~0x1fffffL, 0x100000000L, hugepages);
        VhostUserFrontend f;
        try {
            f = VhostUserFrontend.connect(socket);
        } catch (RuntimeException e) {
            m.close();
            throw e;
        }
        this.fe = f;
        this.mem = m;
        this.queues = new DriverSplitQueue[numQueues];
        this.kickFds = new int[numQueues];
        this.callFds = new int[numQueues];
        java.util.Arrays.fill(kickFds, -1);
        java.util.Arrays.fill(callFds, -1);
        try {
            long offered = fe.getFeatures();
            long pf = 0;
            if (VirtioFeatures.has(offered, VirtioFeatures.VHOST_USER_PROTOCOL_FEATURES)) {
                pf = fe.getProtocolFeatures() & ((1L << VhostUserProtocol.PF_MQ) | (1L << VhostUserProtocol.PF_REPLY_ACK)
                        | (1L << VhostUserProtocol.PF_CONFIG));
                fe.setProtocolFeatures(pf);
                fe.useReplyAck((pf & (1L << VhostUserProtocol.PF_REPLY_ACK)) != 0);
            }
            long maxQ = (pf & (1L << VhostUserProtocol.PF_MQ)) != 0 ? fe.getQueueNum() : 1;
            if (numQueues > maxQ) throw new IOException("target offers " + maxQ + " queues, " + numQueues + " requested");
            fe.setOwner();
            negotiated = offered & wantFeatures;
            fe.setFeatures(negotiated);
            fe.setMemTable(mem);
            config = (pf & (1L << VhostUserProtocol.PF_CONFIG)) != 0 ? fe.getConfig(configSize) : new byte[0];
            boolean eventIdx = VirtioFeatures.has(negotiated, VirtioFeatures.RING_EVENT_IDX);
            for (int q = 0; q < numQueues; q++) {
                long d = mem.allocate(SplitRing.descTableBytes(queueSize), 4096);
                long a = mem.allocate(SplitRing.availBytes(queueSize), 4096);
                long u = mem.allocate(SplitRing.usedBytes(queueSize), 4096);
                MemorySegment s = mem.segment();
                queues[q] = new DriverSplitQueue(queueSize, s.asSlice(d), s.asSlice(a), s.asSlice(u), eventIdx);
                kickFds[q] = EventFd.create(true);
                callFds[q] = EventFd.create(true);
                fe.setVringNum(q, queueSize);
                fe.setVringBase(q, 0);
                fe.setVringAddr(q, mem.uva(d), mem.uva(u), mem.uva(a));
                fe.setVringKick(q, kickFds[q]);
                fe.setVringCall(q, callFds[q]);
                if (VirtioFeatures.has(negotiated, VirtioFeatures.VHOST_USER_PROTOCOL_FEATURES)) fe.setVringEnable(q, true);
            }
            scratchOff = mem.allocate(65536, 4096);
            dataLen = dataBytes;
            dataOff = mem.allocate(dataBytes, 4096);
        } catch (IOException | RuntimeException e) {
            close();
            throw e;
        }
    }

    /** Features the driver asks for by default: all but packed rings. */
    public static long defaultFeatures() {
        return ~0L & ~VirtioFeatures.bit(VirtioFeatures.RING_PACKED);
    }

    public long negotiatedFeatures() { return negotiated; }
    public byte[] config() { return config.clone(); }
    public VhostUserFrontend frontend() { return fe; }
    public SharedMemory memory() { return mem; }
    public DriverSplitQueue queue(int q) { return queues[q]; }
    public int kickFd(int q) { return kickFds[q]; }

    /** The data buffer area. */
    public MemorySegment data() { return mem.segment().asSlice(dataOff, dataLen); }
    public long dataGpa() { return mem.gpa(dataOff); }
    /** The 64 KiB header scratch area. */
    public MemorySegment scratch() { return mem.segment().asSlice(scratchOff, 65536); }
    public long scratchGpa() { return mem.gpa(scratchOff); }

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

    @Override
    public void close() {
        fe.close();
        for (int f : kickFds) Fd.closeQuietly(f);
        for (int f : callFds) Fd.closeQuietly(f);
        mem.close();
        arena.close();
    }
}
