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
import java.lang.foreign.ValueLayout;
import java.time.Duration;

import static io.jvhost.virtio.BlkLayout.*;

/**
 * A poll-mode virtio-blk driver over vhost-user, with no VM: shared memory from a memfd, the
 * front-end handshake QEMU would do, split rings we lay out ourselves, and requests built in
 * that memory. This first version offers synchronous single requests (tests, smoke checks);
 * each queue is owned by the calling thread.
 */
public final class BlkInitiator implements AutoCloseable {
    /** Result of one request: status byte and the used length the target reported. */
    public record Completion(int status, int usedLen) {}

    private final VhostUserFrontend fe;
    private final SharedMemory mem;
    private final DriverSplitQueue[] queues;
    private final int[] kickFds;
    private final int[] callFds;
    private final long negotiated;
    private final byte[] config;
    private final long dataOff;
    private final long dataLen;
    private final long hdrOff;
    private final Arena arena = Arena.ofShared();
    private final MemorySegment scratch = arena.allocate(8, 8);
    private int lastUsedLen;
    private int lastHead = -1;

    private BlkInitiator(VhostUserFrontend fe, SharedMemory mem, int numQueues, int queueSize, long wantFeatures, long dataBytes) throws IOException {
        this.fe = fe;
        this.mem = mem;
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
        config = (pf & (1L << VhostUserProtocol.PF_CONFIG)) != 0 ? fe.getConfig(CONFIG_SIZE) : new byte[0];
        boolean eventIdx = VirtioFeatures.has(negotiated, VirtioFeatures.RING_EVENT_IDX);
        queues = new DriverSplitQueue[numQueues];
        kickFds = new int[numQueues];
        callFds = new int[numQueues];
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
        hdrOff = mem.allocate(4096, 4096);
        dataLen = dataBytes;
        dataOff = mem.allocate(dataBytes, 4096);
    }

    /**
     * Connects to a vhost-user-blk target at {@code socket} and sets up {@code numQueues} queues
     * of {@code queueSize} entries, with {@code dataBytes} of data buffer space.
     */
    public static BlkInitiator connect(String socket, int numQueues, int queueSize, long dataBytes) throws IOException {
        long want = ~0L & ~VirtioFeatures.bit(VirtioFeatures.RING_PACKED);
        return connect(socket, numQueues, queueSize, dataBytes, want);
    }

    public static BlkInitiator connect(String socket, int numQueues, int queueSize, long dataBytes, long wantFeatures) throws IOException {
        VhostUserFrontend fe = VhostUserFrontend.connect(socket);
        long ringBytes = (long) numQueues * 3 * (SplitRing.usedBytes(queueSize) + 8192);
        SharedMemory mem = new SharedMemory(((ringBytes + dataBytes + 4096 * 4) + 0x1fffff) & ~0x1fffffL, 0x100000000L);
        try {
            return new BlkInitiator(fe, mem, numQueues, queueSize, wantFeatures, dataBytes);
        } catch (IOException | RuntimeException e) {
            fe.close();
            mem.close();
            throw e;
        }
    }

    public long negotiatedFeatures() { return negotiated; }
    public byte[] config() { return config.clone(); }
    public VhostUserFrontend frontend() { return fe; }
    public SharedMemory memory() { return mem; }
    public DriverSplitQueue queue(int q) { return queues[q]; }
    public int kickFd(int q) { return kickFds[q]; }

    /** The data buffer area (reads land here, writes are taken from here). */
    public MemorySegment data() {
        return mem.segment().asSlice(dataOff, dataLen);
    }

    public long dataGpa() {
        return mem.gpa(dataOff);
    }

    /** Capacity in 512-byte sectors from the config space. */
    public long capacitySectors() {
        return MemorySegment.ofArray(config).get(ValueLayout.JAVA_LONG_UNALIGNED, C_CAPACITY);
    }

    /**
     * Sends one request: header (type, sector), then {@code dataBytes} of data from the start of
     * {@link #data()} split into descriptors of at most {@code segBytes} (device-readable for
     * writes and discards, device-writable for reads and GET_ID), then the status byte. Waits
     * for the completion.
     */
    public Completion request(int q, int type, long sector, long dataBytes, int segBytes, Duration timeout) throws IOException {
        boolean deviceWrites = type == T_IN || type == T_GET_ID;
        MemorySegment s = mem.segment();
        s.set(ValueLayout.JAVA_INT_UNALIGNED, hdrOff, type);
        s.set(ValueLayout.JAVA_INT_UNALIGNED, hdrOff + 4, 0);
        s.set(ValueLayout.JAVA_LONG_UNALIGNED, hdrOff + 8, sector);
        s.set(ValueLayout.JAVA_BYTE, hdrOff + 16, (byte) 0xff);
        int segs = dataBytes == 0 ? 0 : (int) ((dataBytes + segBytes - 1) / segBytes);
        DriverSplitQueue dq = queues[q];
        if (!dq.begin(segs + 2)) throw new IOException("queue " + q + " has too few free descriptors for " + (segs + 2));
        dq.add(mem.gpa(hdrOff), HEADER_SIZE, false);
        for (long off = 0; off < dataBytes; off += segBytes) {
            dq.add(mem.gpa(dataOff + off), (int) Math.min(segBytes, dataBytes - off), deviceWrites);
        }
        dq.add(mem.gpa(hdrOff + 16), 1, true);
        int head = dq.end();
        dq.publish();
        if (dq.needsKick()) EventFd.signal(kickFds[q], scratch);
        waitFor(q, head, timeout);
        return new Completion(Byte.toUnsignedInt(s.get(ValueLayout.JAVA_BYTE, hdrOff + 16)), lastUsedLen);
    }

    /** Busy-waits (with short sleeps) until {@code head} comes back on queue {@code q}. */
    public void waitFor(int q, int head, Duration timeout) throws IOException {
        long deadline = System.nanoTime() + timeout.toNanos();
        lastHead = -1;
        while (true) {
            queues[q].pollUsed((h, len) -> {
                lastHead = h;
                lastUsedLen = len;
            });
            if (lastHead == head) return;
            if (System.nanoTime() > deadline) throw new IOException("no completion for head " + head + " on queue " + q + " within " + timeout);
            Thread.onSpinWait();
        }
    }

    /** Writes {@code bytes} at {@code sector} from {@link #data()}; returns the status. */
    public int write(int q, long sector, long bytes) throws IOException {
        return request(q, T_OUT, sector, bytes, 64 * 1024, Duration.ofSeconds(10)).status();
    }

    /** Reads {@code bytes} at {@code sector} into {@link #data()}; returns the status. */
    public int read(int q, long sector, long bytes) throws IOException {
        return request(q, T_IN, sector, bytes, 64 * 1024, Duration.ofSeconds(10)).status();
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
