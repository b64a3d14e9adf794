package io.jvhost.vhost;

import io.jvhost.initiator.SharedMemory;
import io.jvhost.initiator.VhostUserFrontend;
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
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;

import static io.jvhost.virtio.BlkLayout.*;

/**
 * A vhost-user-blk front-end for attacks on guest memory (test only): one queue of 64 whose
 * rings and request headers lie in {@code ringMem} (desc at 0, avail at 4 KiB, used at 8 KiB,
 * headers and status bytes from 12 KiB) and whose data buffers lie in {@code dataMem} (the same
 * memory or a second region). Either memory may be unsealable, so the test can truncate it
 * under the live target.
 */
final class TruncatingFrontEnd implements AutoCloseable {
    static final int QUEUE_SIZE = 64;
    static final long DESC = 0, AVAIL = 4096, USED = 8192, HEADERS = 12288;

    final VhostUserFrontend fe;
    final SharedMemory ringMem;
    final SharedMemory dataMem;
    final DriverSplitQueue q;
    final int kick = EventFd.create(true);
    final int call = EventFd.create(true);
    /** The ring's error eventfd (SET_VRING_ERR): the target signals it when the queue faults. */
    final int err = EventFd.create(true);
    private final long dataOff;
    private final MemorySegment scratch = Arena.ofAuto().allocate(8, 8);
    private int lastHead = -1;
    private int lastLen;

    TruncatingFrontEnd(Path socket, SharedMemory ringMem, SharedMemory dataMem, boolean eventIdx) throws IOException {
        this(socket, ringMem, dataMem, eventIdx, 0);
    }

    /** @param ring the one ring to set up (2 = the first virtio-scsi request queue) */
    TruncatingFrontEnd(Path socket, SharedMemory ringMem, SharedMemory dataMem, boolean eventIdx, int ring) throws IOException {
        this.ringMem = ringMem;
        this.dataMem = dataMem;
        this.fe = VhostUserFrontend.connect(socket.toString());
        dataOff = dataMem == ringMem ? 65536 : 0;
        long offered = fe.getFeatures();
        fe.setProtocolFeatures(fe.getProtocolFeatures() & (1L << VhostUserProtocol.PF_REPLY_ACK));
        fe.useReplyAck(true);
        fe.setOwner();
        long want = VirtioFeatures.bit(VirtioFeatures.VHOST_USER_PROTOCOL_FEATURES) | VirtioFeatures.bit(VirtioFeatures.VERSION_1)
                | (eventIdx ? VirtioFeatures.bit(VirtioFeatures.RING_EVENT_IDX) : 0);
        fe.setFeatures(offered & want);
        if (dataMem == ringMem) fe.setMemTable(ringMem);
        else fe.setMemTable(ringMem, dataMem);
        MemorySegment s = ringMem.segment();
        q = new DriverSplitQueue(QUEUE_SIZE, s.asSlice(DESC), s.asSlice(AVAIL), s.asSlice(USED), eventIdx);
        fe.setVringNum(ring, QUEUE_SIZE);
        fe.setVringBase(ring, 0);
        fe.setVringAddr(ring, ringMem.uva(DESC), ringMem.uva(USED), ringMem.uva(AVAIL));
        fe.setVringKick(ring, kick);
        fe.setVringCall(ring, call);
        fe.setVringErr(ring, err);
        fe.setVringEnable(ring, true);
    }

    /** Where a virtio-scsi response goes (in the ring memory, after the request header). */
    static final long SCSI_RESP = HEADERS + 256;

    /**
     * Queues (unpublished) a virtio-scsi READ(10) of {@code blocks} 512-byte blocks at LBA 0 from
     * target 0 LUN 0: request header and response in the ring memory, data-in in the data memory.
     */
    int prepareScsiRead(int blocks) {
        MemorySegment m = ringMem.segment();
        m.asSlice(HEADERS, 256 + 256).fill((byte) 0);
        m.set(ValueLayout.JAVA_BYTE, HEADERS, (byte) 1); // lun[0] = 1, target 0, LUN 0
        m.set(ValueLayout.JAVA_BYTE, HEADERS + 2, (byte) 0x40);
        long cdb = HEADERS + io.jvhost.virtio.ScsiLayout.REQ_CDB;
        m.set(ValueLayout.JAVA_BYTE, cdb, (byte) 0x28);
        m.set(ValueLayout.JAVA_BYTE, cdb + 8, (byte) blocks);
        m.set(ValueLayout.JAVA_BYTE, SCSI_RESP + io.jvhost.virtio.ScsiLayout.RESP_RESPONSE, (byte) 0xff);
        if (!q.begin(3)) throw new IllegalStateException("no descriptors");
        q.add(ringMem.gpa(HEADERS), io.jvhost.virtio.ScsiLayout.REQ_HEADER + 32, false);
        q.add(ringMem.gpa(SCSI_RESP), io.jvhost.virtio.ScsiLayout.RESP_HEADER + 96, true);
        q.add(dataMem.gpa(dataOff), blocks * 512, true);
        return q.end();
    }

    MemorySegment data() {
        return dataMem.segment().asSlice(dataOff);
    }

    /**
     * Queues one request (header, {@code bytes} of data, status) and publishes it; kicks when
     * {@code kick}. The header lies in the data memory when {@code headerInData}. Returns the head.
     */
    int queue(int type, long sector, int bytes, boolean headerInData, boolean kick) {
        int head = prepare(type, sector, bytes, headerInData);
        q.publish();
        if (kick) kick();
        return head;
    }

    /** Writes the request and its descriptors but does not publish it yet; returns the head. */
    int prepare(int type, long sector, int bytes, boolean headerInData) {
        MemorySegment hdrMem = headerInData ? dataMem.segment() : ringMem.segment();
        long hdrOff = headerInData ? dataOff + (1 << 19) : HEADERS;
        hdrMem.set(ValueLayout.JAVA_INT_UNALIGNED, hdrOff, type);
        hdrMem.set(ValueLayout.JAVA_INT_UNALIGNED, hdrOff + 4, 0);
        hdrMem.set(ValueLayout.JAVA_LONG_UNALIGNED, hdrOff + 8, sector);
        ringMem.segment().set(ValueLayout.JAVA_BYTE, HEADERS + 16, (byte) 0xff);
        if (!q.begin(3)) throw new IllegalStateException("no descriptors");
        q.add((headerInData ? dataMem : ringMem).gpa(hdrOff), HEADER_SIZE, false);
        q.add(dataMem.gpa(dataOff), bytes, type == T_IN);
        q.add(ringMem.gpa(HEADERS + 16), 1, true);
        return q.end();
    }

    /** Publishes what {@link #prepare} queued and kicks (touches only the avail ring). */
    void publishAndKick() {
        q.publish();
        kick();
    }

    void kick() {
        EventFd.signal(kick, scratch);
    }

    /** Notifications the target sent on the error eventfd so far (drains it). */
    long errorSignals() {
        return Math.max(0, EventFd.drain(err, scratch));
    }

    /** The status byte of the last request (0xff until the target writes it). */
    int status() {
        return Byte.toUnsignedInt(ringMem.segment().get(ValueLayout.JAVA_BYTE, HEADERS + 16));
    }

    private int reaped;

    /**
     * Runs {@code n} requests of one shape in batches of 16 (all sharing one header and status
     * byte), so the target's data path gets compiled; throws if one is not answered S_OK.
     */
    void warmUp(int n, int type, boolean headerInData) throws IOException {
        warmUp(n, type, headerInData, 4096);
    }

    /** As above with requests of {@code bytes} (all into or from the same data buffer). */
    void warmUp(int n, int type, boolean headerInData, int bytes) throws IOException {
        for (int done = 0; done < n; done += 16) {
            for (int i = 0; i < 16; i++) prepare(type, 0, bytes, headerInData);
            publishAndKick();
            reaped = 0;
            long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
            while (reaped < 16) {
                q.pollUsed((h, len) -> reaped++);
                if (System.nanoTime() > deadline) throw new IOException("warm-up batch not completed");
                Thread.onSpinWait();
            }
            if (status() != S_OK) throw new IOException("warm-up request failed: status " + status());
        }
    }

    /** One complete request; returns its status. */
    int request(int type, long sector, int bytes) throws IOException {
        return request(type, sector, bytes, false);
    }

    /** One complete request, its header in the data memory when {@code headerInData}; returns its status. */
    int request(int type, long sector, int bytes, boolean headerInData) throws IOException {
        int head = queue(type, sector, bytes, headerInData, true);
        long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
        lastHead = -1;
        while (lastHead != head) {
            q.pollUsed((h, len) -> {
                lastHead = h;
                lastLen = len;
            });
            if (System.nanoTime() > deadline) throw new IOException("no completion for head " + head);
            Thread.onSpinWait();
        }
        return status();
    }

    private boolean closed;

    @Override
    public void close() {
        if (closed) return;
        closed = true;
        fe.close();
        Fd.closeQuietly(kick);
        Fd.closeQuietly(call);
        Fd.closeQuietly(err);
    }

    /** Mappings of {@code fd}'s file in this process (/proc/self/maps, matched by inode). */
    static long mappings(int fd) throws IOException {
        long ino = ((Number) Files.getAttribute(Path.of("/proc/self/fd/" + fd), "unix:ino")).longValue();
        try (var lines = Files.lines(Path.of("/proc/self/maps"))) {
            return lines.map(l -> l.trim().split("\\s+")).filter(f -> f.length >= 5 && f[4].equals(Long.toString(ino))).count();
        }
    }
}
