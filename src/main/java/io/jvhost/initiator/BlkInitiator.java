package io.jvhost.initiator;

import io.jvhost.virtio.LittleEndian;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.time.Duration;

import static io.jvhost.virtio.BlkLayout.*;

/** virtio-blk requests over a {@link VhostUserDriver}; synchronous single requests. */
public final class BlkInitiator extends VhostUserDriver {
    /** Result of one request: status byte and the used length the target reported. */
    public record Completion(int status, int usedLen) {}

    private BlkInitiator(String socket, int numQueues, int queueSize, long dataBytes, long want, boolean hugepages) throws IOException {
        super(socket, Kind.BLK, numQueues, queueSize, dataBytes, want, CONFIG_SIZE, FrontendProfile.JVHOST, hugepages);
    }

    private BlkInitiator(String socket, int numQueues, int queueSize, long dataBytes, long want, boolean hugepages, Ring ring) throws IOException {
        super(socket, Kind.BLK, numQueues, queueSize, dataBytes, want, CONFIG_SIZE, FrontendProfile.JVHOST, hugepages, ring);
    }

    /**
     * As {@link #connect(String, int, int, long, boolean)} with the ring layout given: {@link Ring#PACKED}
     * negotiates VIRTIO_F_RING_PACKED and fails with an {@link IOException} if the target does not offer it.
     */
    public static BlkInitiator connect(String socket, int numQueues, int queueSize, long dataBytes, boolean hugepages, Ring ring) throws IOException {
        return new BlkInitiator(socket, numQueues, queueSize, dataBytes, defaultFeatures(), hugepages, ring);
    }

    private BlkInitiator(String socket, FrontendProfile profile, int numQueues, int queueSize, long dataBytes) throws IOException {
        super(socket, Kind.BLK, numQueues, queueSize, dataBytes, defaultFeatures(), CONFIG_SIZE, profile, false);
    }

    /** Connects the way {@code profile}'s front-end does (its handshake, features and memory layout). */
    public static BlkInitiator connect(String socket, FrontendProfile profile, int numQueues, int queueSize, long dataBytes) throws IOException {
        return new BlkInitiator(socket, profile, numQueues, queueSize, dataBytes);
    }

    /**
     * Connects to a vhost-user-blk target at {@code socket} and sets up {@code numQueues} queues
     * of {@code queueSize} entries, with {@code dataBytes} of data buffer space.
     */
    public static BlkInitiator connect(String socket, int numQueues, int queueSize, long dataBytes) throws IOException {
        return new BlkInitiator(socket, numQueues, queueSize, dataBytes, defaultFeatures(), false);
    }

    public static BlkInitiator connect(String socket, int numQueues, int queueSize, long dataBytes, long wantFeatures) throws IOException {
        return new BlkInitiator(socket, numQueues, queueSize, dataBytes, wantFeatures, false);
    }

    /** As {@link #connect(String, int, int, long)}, with the shared memory from 2 MiB hugepages when asked. */
    public static BlkInitiator connect(String socket, int numQueues, int queueSize, long dataBytes, boolean hugepages) throws IOException {
        return new BlkInitiator(socket, numQueues, queueSize, dataBytes, defaultFeatures(), hugepages);
    }

    /** Capacity in 512-byte sectors from the config space. */
    public long capacitySectors() {
        return MemorySegment.ofArray(config).get(LittleEndian.U64, C_CAPACITY);
    }

    /**
     * Sends one request: header (type, sector), then {@code dataBytes} of data from the start of
     * {@link #data()} split into descriptors of at most {@code segBytes} (device-readable for
     * writes and discards, device-writable for reads and GET_ID), then the status byte. Waits
     * for the completion.
     */
    public Completion request(int q, int type, long sector, long dataBytes, int segBytes, Duration timeout) throws IOException {
        boolean deviceWrites = type == T_IN || type == T_GET_ID;
        MemorySegment s = scratch();
        s.set(LittleEndian.U32, 0, type);
        s.set(LittleEndian.U32, 4, 0);
        s.set(LittleEndian.U64, 8, sector);
        s.set(ValueLayout.JAVA_BYTE, 16, (byte) 0xff);
        int segs = dataBytes == 0 ? 0 : (int) ((dataBytes + segBytes - 1) / segBytes);
        var dq = queues[q];
        if (!dq.begin(segs + 2)) throw new IOException("queue " + q + " has too few free descriptors for " + (segs + 2));
        dq.add(scratchGpa(), HEADER_SIZE, false);
        for (long off = 0; off < dataBytes; off += segBytes) {
            dq.add(dataGpa() + off, (int) Math.min(segBytes, dataBytes - off), deviceWrites);
        }
        dq.add(scratchGpa() + 16, 1, true);
        int head = dq.end();
        publishAndKick(q);
        int used = waitFor(q, head, timeout);
        return new Completion(Byte.toUnsignedInt(s.get(ValueLayout.JAVA_BYTE, 16)), used);
    }

    /** Writes {@code bytes} at {@code sector} from {@link #data()}; returns the status. */
    public int write(int q, long sector, long bytes) throws IOException {
        return request(q, T_OUT, sector, bytes, 64 * 1024, Duration.ofSeconds(10)).status();
    }

    /** Reads {@code bytes} at {@code sector} into {@link #data()}; returns the status. */
    public int read(int q, long sector, long bytes) throws IOException {
        return request(q, T_IN, sector, bytes, 64 * 1024, Duration.ofSeconds(10)).status();
    }
}
