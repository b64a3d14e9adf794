package io.jvhost.initiator;

import io.jvhost.virtio.LittleEndian;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.time.Duration;

import static io.jvhost.virtio.ScsiLayout.*;

/**
 * virtio-scsi requests over a {@link VhostUserDriver}: queue 0 control, 1 event, 2.. requests.
 * Synchronous single commands (tests, smoke checks).
 */
public final class ScsiInitiator extends VhostUserDriver {
    /** The response of one command. */
    public record Response(int response, int status, int residual, byte[] sense, int usedLen) {}

    private ScsiInitiator(String socket, int requestQueues, int queueSize, long dataBytes, boolean hugepages) throws IOException {
        super(socket, Kind.SCSI, FIRST_REQUEST_QUEUE + requestQueues, queueSize, dataBytes, defaultFeatures(), CONFIG_SIZE, FrontendProfile.JVHOST, hugepages);
    }

    private ScsiInitiator(String socket, int requestQueues, int queueSize, long dataBytes, boolean hugepages, Ring ring) throws IOException {
        super(socket, Kind.SCSI, FIRST_REQUEST_QUEUE + requestQueues, queueSize, dataBytes, defaultFeatures(), CONFIG_SIZE, FrontendProfile.JVHOST, hugepages, ring);
    }

    /** With the ring layout given ({@link Ring#PACKED} fails with an {@link IOException} if the target does not offer it). */
    public static ScsiInitiator connect(String socket, int requestQueues, int queueSize, long dataBytes, boolean hugepages, Ring ring) throws IOException {
        return new ScsiInitiator(socket, requestQueues, queueSize, dataBytes, hugepages, ring);
    }

    public static ScsiInitiator connect(String socket, int requestQueues, int queueSize, long dataBytes) throws IOException {
        return new ScsiInitiator(socket, requestQueues, queueSize, dataBytes, false);
    }

    /** As {@link #connect(String, int, int, long)}, with the shared memory from 2 MiB hugepages when asked. */
    public static ScsiInitiator connect(String socket, int requestQueues, int queueSize, long dataBytes, boolean hugepages) throws IOException {
        return new ScsiInitiator(socket, requestQueues, queueSize, dataBytes, hugepages);
    }

    private ScsiInitiator(String socket, FrontendProfile profile, int requestQueues, int queueSize, long dataBytes) throws IOException {
        super(socket, Kind.SCSI, FIRST_REQUEST_QUEUE + requestQueues, queueSize, dataBytes, defaultFeatures(), CONFIG_SIZE, profile, false);
    }

    /** Connects the way {@code profile}'s front-end does (its handshake, features and memory layout). */
    public static ScsiInitiator connect(String socket, FrontendProfile profile, int requestQueues, int queueSize, long dataBytes) throws IOException {
        if (!profile.supports(Kind.SCSI)) throw new IllegalArgumentException(profile.name() + " does not drive virtio-scsi");
        return new ScsiInitiator(socket, profile, requestQueues, queueSize, dataBytes);
    }

    /**
     * Runs {@code cdb} on target {@code target}, LUN {@code lun}, on request queue {@code rq}
     * (0-based): {@code dataOut} bytes from {@link #data()} to the device, or {@code dataIn}
     * bytes from the device into {@link #data()}.
     */
    public Response command(int rq, int target, int lun, byte[] cdb, long dataOut, long dataIn) throws IOException {
        int q = FIRST_REQUEST_QUEUE + rq;
        MemorySegment s = scratch();
        int reqSize = REQ_HEADER + DEFAULT_CDB_SIZE;
        int respSize = RESP_HEADER + DEFAULT_SENSE_SIZE;
        s.asSlice(0, 256).fill((byte) 0);
        s.set(ValueLayout.JAVA_BYTE, 0, (byte) 1);
        s.set(ValueLayout.JAVA_BYTE, 1, (byte) target);
        s.set(ValueLayout.JAVA_BYTE, 2, (byte) (0x40 | (lun >> 8)));
        s.set(ValueLayout.JAVA_BYTE, 3, (byte) lun);
        s.set(LittleEndian.U64, REQ_ID, 0x1234L);
        MemorySegment.copy(cdb, 0, s, ValueLayout.JAVA_BYTE, REQ_CDB, cdb.length);
        long respOff = 128;
        s.asSlice(respOff, respSize).fill((byte) 0xee);
        var dq = queues[q];
        int n = 2 + (dataOut > 0 ? 1 : 0) + (dataIn > 0 ? 1 : 0);
        if (!dq.begin(n)) throw new IOException("queue " + q + " full");
        dq.add(scratchGpa(), reqSize, false);
        if (dataOut > 0) dq.add(dataGpa(), (int) dataOut, false);
        dq.add(scratchGpa() + respOff, respSize, true);
        if (dataIn > 0) dq.add(dataGpa(), (int) dataIn, true);
        int head = dq.end();
        publishAndKick(q);
        int used = waitFor(q, head, Duration.ofSeconds(10));
        int senseLen = s.get(LittleEndian.U32, respOff + RESP_SENSE_LEN);
        byte[] sense = new byte[Math.max(0, Math.min(senseLen, DEFAULT_SENSE_SIZE))];
        MemorySegment.copy(s, ValueLayout.JAVA_BYTE, respOff + RESP_SENSE, sense, 0, sense.length);
        return new Response(Byte.toUnsignedInt(s.get(ValueLayout.JAVA_BYTE, respOff + RESP_RESPONSE)),
                Byte.toUnsignedInt(s.get(ValueLayout.JAVA_BYTE, respOff + RESP_STATUS)),
                s.get(LittleEndian.U32, respOff + RESP_RESIDUAL), sense, used);
    }

    /** Sends a task management function on the control queue; returns the response byte. */
    public int taskManagement(int subtype, int target, int lun, long tag) throws IOException {
        MemorySegment s = scratch();
        long at = 1024;
        s.asSlice(at, 64).fill((byte) 0);
        s.set(LittleEndian.U32, at, T_TMF);
        s.set(LittleEndian.U32, at + 4, subtype);
        s.set(ValueLayout.JAVA_BYTE, at + 8, (byte) 1);
        s.set(ValueLayout.JAVA_BYTE, at + 9, (byte) target);
        s.set(ValueLayout.JAVA_BYTE, at + 10, (byte) (0x40 | (lun >> 8)));
        s.set(ValueLayout.JAVA_BYTE, at + 11, (byte) lun);
        s.set(LittleEndian.U64, at + 16, tag);
        s.set(ValueLayout.JAVA_BYTE, at + 32, (byte) 0xee);
        var dq = queues[CONTROL_QUEUE];
        dq.begin(2);
        dq.add(scratchGpa() + at, TMF_REQ_SIZE, false);
        dq.add(scratchGpa() + at + 32, TMF_RESP_SIZE, true);
        int head = dq.end();
        publishAndKick(CONTROL_QUEUE);
        waitFor(CONTROL_QUEUE, head, Duration.ofSeconds(10));
        return Byte.toUnsignedInt(s.get(ValueLayout.JAVA_BYTE, at + 32));
    }

    /** Posts {@code n} 16-byte event buffers (at scratch offset 2048 + 16*i) on the event queue. */
    public int[] postEventBuffers(int n) {
        int[] heads = new int[n];
        var dq = queues[EVENT_QUEUE];
        for (int i = 0; i < n; i++) {
            scratch().asSlice(2048 + 16L * i, 16).fill((byte) 0xee);
            dq.begin(1);
            dq.add(scratchGpa() + 2048 + 16L * i, EVENT_SIZE, true);
            heads[i] = dq.end();
        }
        publishAndKick(EVENT_QUEUE);
        return heads;
    }

    /** Waits for the next event on the event queue; returns {event, target, reason, bufferIndex}. */
    public int[] awaitEvent(Duration timeout) throws IOException {
        long deadline = System.nanoTime() + timeout.toNanos();
        int[] got = {-1, 0};
        while (got[0] < 0) {
            queues[EVENT_QUEUE].pollUsed((h, len) -> {
                got[0] = h;
                got[1] = len;
            });
            if (got[0] >= 0) break;
            if (System.nanoTime() > deadline) throw new IOException("no event within " + timeout);
            Thread.onSpinWait();
        }
        // buffer i was allocated with head i (fresh queue, single-descriptor chains in order)
        long at = 2048 + 16L * got[0];
        MemorySegment s = scratch();
        return new int[] {s.get(LittleEndian.U32, at), Byte.toUnsignedInt(s.get(ValueLayout.JAVA_BYTE, at + 5)),
                s.get(LittleEndian.U32, at + 12), got[0]};
    }
}
