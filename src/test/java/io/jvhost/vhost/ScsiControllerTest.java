package io.jvhost.vhost;

import io.jvhost.bdev.MallocBlockDevice;
import io.jvhost.initiator.ScsiInitiator;
import io.jvhost.runtime.IdleStrategy;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;

import static io.jvhost.virtio.ScsiLayout.*;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

/** The vhost-user-scsi controller driven in-process by our virtio-scsi initiator. */
class ScsiControllerTest {
    @TempDir
    Path dir;
    VhostTarget target;
    MallocBlockDevice m0;

    @BeforeEach
    void setUp() {
        target = new VhostTarget(dir, 1, IdleStrategy.BACKOFF);
        m0 = new MallocBlockDevice("Malloc0", 8192, 512, null);
        target.bdevs().register(m0);
        target.bdevs().register(new MallocBlockDevice("Malloc1", 4096, 4096, null));
        target.bdevs().register(new MallocBlockDevice("Malloc2", 2048, 512, null));
        target.createScsiController("scsi0", 2, null);
        assertThat(target.addScsiTarget("scsi0", 0, "Malloc0")).isZero();
    }

    @AfterEach
    void tearDown() {
        target.close();
    }

    /** Buffers the running event queue holds, or -1 while it does not run. */
    int eventQueueInFlight() {
        var session = target.controller("scsi0").session();
        if (session == null) return -1;
        return session.runningQueues().stream().filter(q -> q.index() == EVENT_QUEUE).findFirst().map(q -> q.inFlight()).orElse(-1);
    }

    ScsiInitiator connect() throws Exception {
        return ScsiInitiator.connect(dir.resolve("scsi0").toString(), 2, 128, 1 << 20);
    }

    static byte[] cdb(int... b) {
        byte[] r = new byte[b.length];
        for (int i = 0; i < b.length; i++) r[i] = (byte) b[i];
        return r;
    }

    @Test
    void inquiryAndReadCapacity() throws Exception {
        try (ScsiInitiator ini = connect()) {
            ScsiInitiator.Response r = ini.command(0, 0, 0, cdb(0x12, 0, 0, 0, 96, 0), 0, 96);
            assertThat(r.response()).isEqualTo(S_OK);
            assertThat(r.status()).isZero();
            byte[] inq = new byte[36];
            MemorySegment.copy(ini.data(), ValueLayout.JAVA_BYTE, 0, inq, 0, 36);
            assertThat(inq[0]).isZero(); // direct-access block device, connected
            assertThat(new String(inq, 8, 8, StandardCharsets.US_ASCII).trim()).isEqualTo("JVHOST");
            assertThat(new String(inq, 16, 16, StandardCharsets.US_ASCII).trim()).isEqualTo("Malloc disk");
            assertThat(r.usedLen()).isEqualTo(RESP_HEADER + DEFAULT_SENSE_SIZE + 96 - r.residual());
            r = ini.command(1, 0, 0, cdb(0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0), 0, 8);
            assertThat(r.status()).isZero();
            assertThat(Integer.reverseBytes(ini.data().get(ValueLayout.JAVA_INT_UNALIGNED, 0))).isEqualTo(8191);
            assertThat(Integer.reverseBytes(ini.data().get(ValueLayout.JAVA_INT_UNALIGNED, 4))).isEqualTo(512);
        }
    }

    @Test
    void writeThenReadBackOnBothQueues() throws Exception {
        try (ScsiInitiator ini = connect()) {
            for (int i = 0; i < 8192; i++) ini.data().set(ValueLayout.JAVA_BYTE, i, (byte) (i * 31 + 7));
            // WRITE(10) LBA 100, 16 blocks
            ScsiInitiator.Response w = ini.command(0, 0, 0, cdb(0x2a, 0, 0, 0, 0, 100, 0, 0, 16, 0), 8192, 0);
            assertThat(w.status()).isZero();
            assertThat(w.response()).isEqualTo(S_OK);
            for (int i = 0; i < 8192; i++) assertThat(m0.memory().get(ValueLayout.JAVA_BYTE, 100 * 512 + i)).isEqualTo((byte) (i * 31 + 7));
            ini.data().asSlice(0, 8192).fill((byte) 0);
            ScsiInitiator.Response r = ini.command(1, 0, 0, cdb(0x28, 0, 0, 0, 0, 100, 0, 0, 16, 0), 0, 8192);
            assertThat(r.status()).isZero();
            assertThat(r.residual()).isZero();
            assertThat(r.usedLen()).isEqualTo(RESP_HEADER + DEFAULT_SENSE_SIZE + 8192);
            for (int i = 0; i < 8192; i++) assertThat(ini.data().get(ValueLayout.JAVA_BYTE, i)).isEqualTo((byte) (i * 31 + 7));
        }
    }

    @Test
    void errorsComeBackAsSenseData() throws Exception {
        try (ScsiInitiator ini = connect()) {
            // READ(10) past the end: CHECK CONDITION, ILLEGAL REQUEST / LBA OUT OF RANGE (21h/00h)
            ScsiInitiator.Response r = ini.command(0, 0, 0, cdb(0x28, 0, 0, 0, 0x20, 0, 0, 0, 1, 0), 0, 512);
            assertThat(r.response()).isEqualTo(S_OK);
            assertThat(r.status()).isEqualTo(2);
            assertThat(r.sense().length).isGreaterThanOrEqualTo(18);
            assertThat(r.sense()[0] & 0x7f).isEqualTo(0x70);
            assertThat(r.sense()[2] & 0x0f).isEqualTo(5);
            assertThat(r.sense()[12] & 0xff).isEqualTo(0x21);
            // unknown opcode: 20h/00h
            r = ini.command(0, 0, 0, cdb(0xc7, 0, 0, 0, 0, 0), 0, 0);
            assertThat(r.status()).isEqualTo(2);
            assertThat(r.sense()[12] & 0xff).isEqualTo(0x20);
        }
    }

    @Test
    void missingTargetIsBadTarget() throws Exception {
        try (ScsiInitiator ini = connect()) {
            ScsiInitiator.Response r = ini.command(0, 5, 0, cdb(0x00, 0, 0, 0, 0, 0), 0, 0);
            assertThat(r.response()).isEqualTo(S_BAD_TARGET);
            assertThat(ini.taskManagement(5 /* LUN RESET */, 5, 0, 0)).isEqualTo(S_BAD_TARGET);
        }
    }

    @Test
    void taskManagement() throws Exception {
        try (ScsiInitiator ini = connect()) {
            assertThat(ini.taskManagement(5 /* LOGICAL_UNIT_RESET */, 0, 0, 0)).isEqualTo(S_OK);
            assertThat(ini.taskManagement(0 /* ABORT_TASK, nothing in flight */, 0, 0, 77)).isEqualTo(S_OK);
            assertThat(ini.taskManagement(6 /* QUERY_TASK */, 0, 0, 77)).isEqualTo(S_OK);
            assertThat(ini.taskManagement(2 /* CLEAR_ACA */, 0, 0, 0)).isEqualTo(S_FUNCTION_REJECTED);
            assertThat(ini.taskManagement(99, 0, 0, 0)).isEqualTo(S_FUNCTION_REJECTED);
            // after the reset, the next command reports the unit attention (29h)
            ScsiInitiator.Response r = ini.command(0, 0, 0, cdb(0x00, 0, 0, 0, 0, 0), 0, 0);
            assertThat(r.status()).isEqualTo(2);
            assertThat(r.sense()[12] & 0xff).isEqualTo(0x29);
        }
    }

    @Test
    void hotAttachAndDetachAreAnnouncedOnTheEventQueue() throws Exception {
        try (ScsiInitiator ini = connect()) {
            ini.postEventBuffers(4);
            // the event queue runs (a hotplug event before that has no guest to go to) and holds the buffers
            await().atMost(Duration.ofSeconds(10)).until(() -> eventQueueInFlight() == 4);
            assertThat(target.addScsiTarget("scsi0", -1, "Malloc1")).isEqualTo(1);
            int[] e = ini.awaitEvent(Duration.ofSeconds(5));
            assertThat(e[0]).isEqualTo(T_TRANSPORT_RESET);
            assertThat(e[1]).isEqualTo(1);
            assertThat(e[2]).isEqualTo(EVT_RESET_RESCAN);
            ScsiInitiator.Response r = ini.command(0, 1, 0, cdb(0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0), 0, 8);
            assertThat(r.status()).isZero();
            assertThat(Integer.reverseBytes(ini.data().get(ValueLayout.JAVA_INT_UNALIGNED, 4))).isEqualTo(4096);
            target.removeScsiTarget("scsi0", 1);
            e = ini.awaitEvent(Duration.ofSeconds(5));
            assertThat(e[0]).isEqualTo(T_TRANSPORT_RESET);
            assertThat(e[1]).isEqualTo(1);
            assertThat(e[2]).isEqualTo(EVT_RESET_REMOVED);
            assertThat(ini.command(0, 1, 0, cdb(0x00, 0, 0, 0, 0, 0), 0, 0).response()).isEqualTo(S_BAD_TARGET);
            // the bdev is free again
            assertThat(target.bdevs().claimedBy("Malloc1")).isEmpty();
        }
    }

    @Test
    void eventsWaitForBuffersAndAreDeliveredLater() throws Exception {
        try (ScsiInitiator ini = connect()) {
            await().atMost(Duration.ofSeconds(10)).until(() -> eventQueueInFlight() == 0);
            // queued on the reactor before addScsiTarget returns, with no buffer to go to yet
            target.addScsiTarget("scsi0", 3, "Malloc2");
            ini.postEventBuffers(2);
            int[] e = ini.awaitEvent(Duration.ofSeconds(5));
            assertThat(e[0]).isEqualTo(T_TRANSPORT_RESET);
            assertThat(e[1]).isEqualTo(3);
            assertThat(e[2]).isEqualTo(EVT_RESET_RESCAN);
        }
    }

    /** READ(10) of {@code blocks} 512-byte blocks at LBA 0, data-in split into {@code segs} descriptors; returns the response byte. */
    static int readInSegments(ScsiInitiator ini, int blocks, int segs) throws Exception {
        MemorySegment s = ini.scratch();
        s.asSlice(0, 256).fill((byte) 0);
        s.set(ValueLayout.JAVA_BYTE, 0, (byte) 1);
        s.set(ValueLayout.JAVA_BYTE, 2, (byte) 0x40);
        byte[] c = cdb(0x28, 0, 0, 0, 0, 0, 0, (blocks >> 8) & 0xff, blocks & 0xff, 0);
        MemorySegment.copy(c, 0, s, ValueLayout.JAVA_BYTE, REQ_CDB, c.length);
        long bytes = blocks * 512L;
        var dq = ini.queue(FIRST_REQUEST_QUEUE);
        dq.begin(segs + 2);
        dq.add(ini.scratchGpa(), REQ_HEADER + DEFAULT_CDB_SIZE, false);
        dq.add(ini.scratchGpa() + 128, RESP_HEADER + DEFAULT_SENSE_SIZE, true);
        long per = bytes / segs;
        for (int k = 0; k < segs; k++) dq.add(ini.dataGpa() + k * per, (int) (k < segs - 1 ? per : bytes - per * (segs - 1)), true);
        int head = dq.end();
        ini.publishAndKick(FIRST_REQUEST_QUEUE);
        ini.waitFor(FIRST_REQUEST_QUEUE, head, Duration.ofSeconds(10));
        return Byte.toUnsignedInt(s.get(ValueLayout.JAVA_BYTE, 128 + RESP_RESPONSE));
    }

    static int statusOfLastRead(ScsiInitiator ini) {
        return Byte.toUnsignedInt(ini.scratch().get(ValueLayout.JAVA_BYTE, 128 + RESP_STATUS));
    }

    @Test
    void segmentsBeyondOurSegMaxAreServedAndTransfersBeyondMaxSectorsAreRefusedByTheLun() throws Exception {
        try (ScsiInitiator ini = ScsiInitiator.connect(dir.resolve("scsi0").toString(), 2, 256, 5 << 20)) {
            MemorySegment c = MemorySegment.ofArray(ini.config());
            assertThat(c.get(ValueLayout.JAVA_INT_UNALIGNED, C_SEG_MAX)).isEqualTo(VirtioScsiDevice.SEG_MAX);
            assertThat(c.get(ValueLayout.JAVA_INT_UNALIGNED, C_MAX_SECTORS)).isEqualTo(VirtioScsiDevice.MAX_SECTORS);
            var stats = target.controller("scsi0").session().runningQueues().stream()
                    .filter(q -> q.index() == FIRST_REQUEST_QUEUE).findFirst().orElseThrow().stats();
            // QEMU shows a guest seg_max = virtqueue_size - 2 of its own: 254 on a 256-entry queue
            m0.memory().asSlice(0, 254 * 512).fill((byte) 0x77);
            ini.data().fill((byte) 0);
            assertThat(readInSegments(ini, 254, 254)).isEqualTo(S_OK);
            assertThat(statusOfLastRead(ini)).isZero();
            assertThat(ini.data().get(ValueLayout.JAVA_BYTE, 253 * 512)).isEqualTo((byte) 0x77);
            // one sector past max_sectors: the LUN refuses the CDB (CHECK CONDITION), nothing is read
            ini.data().fill((byte) 0);
            assertThat(readInSegments(ini, VirtioScsiDevice.MAX_SECTORS + 1, 1)).isEqualTo(S_OK);
            assertThat(statusOfLastRead(ini)).isEqualTo(2);
            assertThat(ini.data().get(ValueLayout.JAVA_BYTE, 0)).isZero();
            assertThat(stats.chainErrors()).isZero();
        }
    }

    @Test
    void badTargetOperationsAreClearErrors() {
        assertThatThrownBy(() -> target.addScsiTarget("scsi0", 0, "Malloc1")).hasMessageContaining("in use");
        assertThat(target.bdevs().claimedBy("Malloc1")).isEmpty();
        assertThatThrownBy(() -> target.addScsiTarget("scsi0", 9, "Malloc1")).hasMessageContaining("0..7");
        assertThatThrownBy(() -> target.removeScsiTarget("scsi0", 6)).hasMessageContaining("does not exist");
        assertThatThrownBy(() -> target.addScsiTarget("nope", 0, "Malloc1")).hasMessageContaining("does not exist");
        assertThatThrownBy(() -> target.addScsiTarget("scsi0", 1, "Malloc0")).hasMessageContaining("already in use");
    }

    /** Pushes one raw chain of (gpa offset in scratch, length, writable) buffers on queue q and waits; returns the used length. */
    static int raw(ScsiInitiator ini, int q, long[][] bufs) throws Exception {
        var dq = ini.queue(q);
        dq.begin(bufs.length);
        for (long[] b : bufs) dq.add(ini.scratchGpa() + b[0], (int) b[1], b[2] != 0);
        int head = dq.end();
        ini.publishAndKick(q);
        return ini.waitFor(q, head, Duration.ofSeconds(5));
    }

    @Test
    void malformedChainsOnEveryQueueAreReturnedAndTheQueuesGoOn() throws Exception {
        try (ScsiInitiator ini = connect()) {
            // request queue: a header shorter than lun+id+attrs+cdb (51 bytes)
            assertThat(raw(ini, FIRST_REQUEST_QUEUE, new long[][] {{4096, 20, 0}, {8192, 108, 1}})).isZero();
            // request queue: no room for the 108-byte response
            assertThat(raw(ini, FIRST_REQUEST_QUEUE, new long[][] {{4096, 51, 0}, {8192, 10, 1}})).isZero();
            // control queue: type field cut short, and a TMF shorter than its 24 bytes
            assertThat(raw(ini, CONTROL_QUEUE, new long[][] {{4096, 2, 0}, {8192, 1, 1}})).isZero();
            ini.scratch().set(ValueLayout.JAVA_INT_UNALIGNED, 4096, T_TMF);
            assertThat(raw(ini, CONTROL_QUEUE, new long[][] {{4096, 8, 0}, {8192, 1, 1}})).isEqualTo(TMF_RESP_SIZE);
            assertThat(ini.scratch().get(ValueLayout.JAVA_BYTE, 8192)).isEqualTo((byte) S_FAILURE);
            // unknown control request type
            ini.scratch().set(ValueLayout.JAVA_INT_UNALIGNED, 4096, 77);
            assertThat(raw(ini, CONTROL_QUEUE, new long[][] {{4096, 24, 0}, {8192, 1, 1}})).isEqualTo(TMF_RESP_SIZE);
            assertThat(ini.scratch().get(ValueLayout.JAVA_BYTE, 8192)).isEqualTo((byte) S_FAILURE);
            // event queue: a buffer too small for an event, and a device-readable one
            assertThat(raw(ini, EVENT_QUEUE, new long[][] {{4096, 8, 1}})).isZero();
            assertThat(raw(ini, EVENT_QUEUE, new long[][] {{4096, 16, 0}})).isZero();
            // everything still works
            assertThat(ini.command(0, 0, 0, cdb(0x00, 0, 0, 0, 0, 0), 0, 0).status()).isZero();
            assertThat(ini.taskManagement(5, 0, 0, 0)).isEqualTo(S_OK);
        }
    }
}
