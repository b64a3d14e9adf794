package io.jvhost.vhost;

import io.jvhost.bdev.BdevException;
import io.jvhost.bdev.MallocBlockDevice;
import io.jvhost.initiator.BlkInitiator;
import io.jvhost.initiator.ScsiInitiator;
import io.jvhost.runtime.IdleStrategy;
import io.jvhost.runtime.Reactor;
import io.jvhost.scsi.ScsiLun;
import io.jvhost.virtio.LittleEndian;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import static io.jvhost.virtio.ScsiLayout.*;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

/**
 * Placement over two reactors: least-loaded choice of the reactor, queues of one controller
 * spread over reactors (blk and scsi, driven by the in-process initiator), task management
 * reaching tasks that run on another reactor than the control queue, and deletion that does not
 * hold the target's lock while it waits.
 */
class PlacementTest {
    @TempDir
    Path dir;
    VhostTarget target;
    Reactor r0, r1;

    @BeforeEach
    void setUp() {
        target = new VhostTarget(dir, 2, IdleStrategy.BACKOFF);
        r0 = target.reactors()[0];
        r1 = target.reactors()[1];
        for (String n : new String[] {"M0", "M1", "M2", "M3", "M4", "M5"}) target.bdevs().register(new MallocBlockDevice(n, 8192, 512, null));
    }

    @AfterEach
    void tearDown() {
        target.close();
    }

    private Reactor home(String ctrlr) {
        return target.controller(ctrlr).device().reactor();
    }

    @Test
    void controllersWithoutCpumaskGoToTheLeastLoadedReactor() {
        target.createBlkController("a", "M0", false, 2, null);   // loads 0/0: r0
        target.createBlkController("b", "M1", false, 2, null);   // 2/0: r1
        target.createBlkController("c", "M2", false, 1, null);   // 2/2: a tie goes to r0
        target.createBlkController("d", "M3", false, 4, null);   // 3/2: r1
        target.createScsiController("s", 1, null);               // 3/6: r0 (control, event and one request queue)
        assertThat(home("a")).isSameAs(r0);
        assertThat(home("b")).isSameAs(r1);
        assertThat(home("c")).isSameAs(r0);
        assertThat(home("d")).isSameAs(r1);
        assertThat(home("s")).isSameAs(r0);
        // A one-core cpumask pins, whatever the load; a wider one picks the least loaded in it.
        target.createBlkController("pinned", "M4", false, 1, "0x2");   // 6/6 before: r1 as asked
        assertThat(home("pinned")).isSameAs(r1);
        assertThat(target.reactorFor("[0,1]")).isSameAs(r0);           // 6/7
        // Deleting frees the load: d's four queues leave r1.
        target.deleteController("d");
        assertThat(target.reactorFor(null)).isSameAs(r1);               // 6/3
        assertThatThrownBy(() -> target.createBlkController("bad", "M5", false, 1, "0x4"))
                .hasMessageContaining("selects core 2");
    }

    @Test
    void spreadBlkControllerRunsEachQueueOnItsOwnReactorWithDataIntact() throws Exception {
        Controller c = target.createBlkController("blk", "M0", false, 2, null, QueuePlacement.Mode.SPREAD);
        VhostUserDevice d = c.device();
        assertThat(d.reactor(0)).isSameAs(r0);
        assertThat(d.reactor(1)).isSameAs(r1);
        try (BlkInitiator ini = BlkInitiator.connect(c.socketPath(), 2, 64, 1 << 20)) {
            // Each reactor polls exactly one queue of this controller.
            await().atMost(Duration.ofSeconds(10)).until(() -> r0.stats().pollables() == 1 && r1.stats().pollables() == 1);
            byte[] a = pattern(64 * 1024, 1), b = pattern(64 * 1024, 2);
            MemorySegment data = ini.data();
            MemorySegment.copy(a, 0, data, ValueLayout.JAVA_BYTE, 0, a.length);
            assertThat(ini.write(0, 0, a.length)).isZero();            // queue 0 on r0
            MemorySegment.copy(b, 0, data, ValueLayout.JAVA_BYTE, 0, b.length);
            assertThat(ini.write(1, 2048, b.length)).isZero();         // queue 1 on r1
            data.asSlice(0, a.length).fill((byte) 0);
            assertThat(ini.read(1, 0, a.length)).isZero();             // what r0 wrote, read on r1
            assertThat(data.asSlice(0, a.length).toArray(ValueLayout.JAVA_BYTE)).isEqualTo(a);
            data.asSlice(0, b.length).fill((byte) 0);
            assertThat(ini.read(0, 2048, b.length)).isZero();          // what r1 wrote, read on r0
            assertThat(data.asSlice(0, b.length).toArray(ValueLayout.JAVA_BYTE)).isEqualTo(b);
            // The queues' counters say who served what.
            var qs = c.session().runningQueues();
            assertThat(qs).hasSize(2).allSatisfy(q -> assertThat(q.stats().requests()).isEqualTo(2));
        }
    }

    @Test
    void spreadScsiControllerRunsRequestQueuesOnBothReactorsWithDataIntact() throws Exception {
        Controller c = target.createScsiController("scsi", 2, null, QueuePlacement.Mode.SPREAD);
        target.addScsiTarget("scsi", 0, "M0");
        VhostUserDevice d = c.device();
        assertThat(d.reactor(CONTROL_QUEUE)).isSameAs(r0);
        assertThat(d.reactor(EVENT_QUEUE)).isSameAs(r0);
        assertThat(d.reactor(FIRST_REQUEST_QUEUE)).isSameAs(r0);
        assertThat(d.reactor(FIRST_REQUEST_QUEUE + 1)).isSameAs(r1);
        try (ScsiInitiator ini = ScsiInitiator.connect(c.socketPath(), 2, 64, 1 << 20)) {
            await().atMost(Duration.ofSeconds(10)).until(() -> r0.stats().pollables() == 3 && r1.stats().pollables() == 1);
            byte[] a = pattern(32 * 1024, 3), b = pattern(32 * 1024, 4);
            MemorySegment data = ini.data();
            MemorySegment.copy(a, 0, data, ValueLayout.JAVA_BYTE, 0, a.length);
            assertThat(ini.command(0, 0, 0, rw(0x2a, 0, 64), a.length, 0).status()).isZero();     // rq0 (r0)
            MemorySegment.copy(b, 0, data, ValueLayout.JAVA_BYTE, 0, b.length);
            assertThat(ini.command(1, 0, 0, rw(0x2a, 1024, 64), b.length, 0).status()).isZero();  // rq1 (r1)
            data.asSlice(0, a.length).fill((byte) 0);
            assertThat(ini.command(1, 0, 0, rw(0x28, 0, 64), 0, a.length).status()).isZero();
            assertThat(data.asSlice(0, a.length).toArray(ValueLayout.JAVA_BYTE)).isEqualTo(a);
            data.asSlice(0, b.length).fill((byte) 0);
            assertThat(ini.command(0, 0, 0, rw(0x28, 1024, 64), 0, b.length).status()).isZero();
            assertThat(data.asSlice(0, b.length).toArray(ValueLayout.JAVA_BYTE)).isEqualTo(b);
        }
    }

    /** Scratch offsets of the in-flight command and the control request, clear of the initiator's own. */
    private static final long CMD_AT = 8192, TMF_AT = 12288;

    @Test
    void taskManagementReachesATaskInFlightOnAnotherReactor() throws Exception {
        GatedBdev gated = new GatedBdev(new MallocBlockDevice("G", 8192, 512, null));
        target.bdevs().register(gated);
        Controller c = target.createScsiController("scsi", 2, null, QueuePlacement.Mode.SPREAD);
        target.addScsiTarget("scsi", 0, "G");
        ScsiLun lun = ((VirtioScsiDevice) c.device()).scsi().target(0).lun(0);
        try (ScsiInitiator ini = ScsiInitiator.connect(c.socketPath(), 2, 64, 1 << 20)) {
            await().atMost(Duration.ofSeconds(10)).until(() -> r1.stats().pollables() == 1);
            // A READ on request queue 1 (reactor 1) that stays in the block layer.
            gated.close(true);
            int cmd = startRead(ini, 1, 0x55);
            await().atMost(Duration.ofSeconds(10)).until(() -> gated.held.get() == 1);

            // QUERY TASK from the control queue (reactor 0) finds it on reactor 1.
            assertThat(ini.taskManagement(6 /* QUERY_TASK */, 0, 0, 0x55)).isEqualTo(S_FUNCTION_SUCCEEDED);
            assertThat(ini.taskManagement(6 /* QUERY_TASK */, 0, 0, 0x56)).isEqualTo(S_OK);

            // ABORT TASK: answered only once the aborted READ has left reactor 1.
            int tmf = startTmf(ini, 0 /* ABORT_TASK */, 0x55);
            await().atMost(Duration.ofSeconds(10)).until(() -> r1.call(() -> lun.pendingTaskManagement(1)).get(5, TimeUnit.SECONDS) == 1);
            gated.close(false);
            ini.waitFor(FIRST_REQUEST_QUEUE + 1, cmd, Duration.ofSeconds(10));
            assertThat(response(ini, CMD_AT)).isEqualTo(S_ABORTED);
            ini.waitFor(CONTROL_QUEUE, tmf, Duration.ofSeconds(10));
            assertThat(tmfResponse(ini)).isEqualTo(S_OK);
        }
    }

    @Test
    void lunResetWaitsForEveryReactorAndLeavesOneUnitAttention() throws Exception {
        GatedBdev gated = new GatedBdev(new MallocBlockDevice("G", 8192, 512, null));
        target.bdevs().register(gated);
        Controller c = target.createScsiController("scsi", 2, null, QueuePlacement.Mode.SPREAD);
        target.addScsiTarget("scsi", 0, "G");
        ScsiLun lun = ((VirtioScsiDevice) c.device()).scsi().target(0).lun(0);
        try (ScsiInitiator ini = ScsiInitiator.connect(c.socketPath(), 2, 64, 1 << 20)) {
            await().atMost(Duration.ofSeconds(10)).until(() -> r1.stats().pollables() == 1);
            gated.close(true);
            int cmd = startRead(ini, 1, 0x77);
            await().atMost(Duration.ofSeconds(10)).until(() -> gated.held.get() == 1);
            int tmf = startTmf(ini, 5 /* LOGICAL_UNIT_RESET */, 0);
            await().atMost(Duration.ofSeconds(10)).until(() -> r1.call(() -> lun.pendingTaskManagement(1)).get(5, TimeUnit.SECONDS) == 1);
            gated.close(false);
            ini.waitFor(FIRST_REQUEST_QUEUE + 1, cmd, Duration.ofSeconds(10));
            assertThat(response(ini, CMD_AT)).isEqualTo(S_ABORTED);
            ini.waitFor(CONTROL_QUEUE, tmf, Duration.ofSeconds(10));
            assertThat(tmfResponse(ini)).isEqualTo(S_OK);
            // The reset's unit attention is the LUN's, reported once, on whichever queue asks first.
            ScsiInitiator.Response r = ini.command(0, 0, 0, new byte[] {0, 0, 0, 0, 0, 0}, 0, 0);
            assertThat(r.status()).isEqualTo(2);
            assertThat(r.sense()[12] & 0xff).isEqualTo(0x29);
            assertThat(ini.command(1, 0, 0, new byte[] {0, 0, 0, 0, 0, 0}, 0, 0).status()).isZero();
        }
    }

    @Test
    void deletionWaitingOnAStuckReactorDoesNotStallOtherRequests() throws Exception {
        Controller victim = target.createScsiController("victim", 1, "0x1");
        target.addScsiTarget("victim", 0, "M0");
        target.createBlkController("other", "M1", false, 1, "0x2");
        // Reactor 0 stops answering: deleting "victim" waits for it to close its channels.
        CountDownLatch stuck = new CountDownLatch(1);
        CountDownLatch blocked = new CountDownLatch(1);
        r0.call(() -> {
            blocked.countDown();
            stuck.await();
            return null;
        });
        assertThat(blocked.await(10, TimeUnit.SECONDS)).isTrue();
        CompletableFuture<Void> deletion = CompletableFuture.runAsync(() -> target.deleteController("victim"));
        await().atMost(Duration.ofSeconds(10)).until(() -> !Files.exists(Path.of(victim.socketPath())));
        try {
            // Meanwhile the target answers (a deletion holding its lock would stall all of these).
            assertThat(CompletableFuture.supplyAsync(target::controllers).get(8, TimeUnit.SECONDS)).extracting(Controller::name)
                    .contains("victim", "other");
            assertThat(CompletableFuture.supplyAsync(() -> target.controller("other").name()).get(8, TimeUnit.SECONDS)).isEqualTo("other");
            target.bdevs().register(new MallocBlockDevice("M9", 64, 512, null));
            CompletableFuture.runAsync(() -> target.createBlkController("new", "M9", false, 1, "0x2")).get(8, TimeUnit.SECONDS);
            // The controller being deleted takes no changes, and its name stays taken.
            assertThatThrownBy(() -> target.addScsiTarget("victim", 1, "M2")).isInstanceOf(BdevException.class)
                    .hasMessageContaining("being deleted");
            assertThatThrownBy(() -> target.createBlkController("victim", "M2", false, 1, null)).hasMessageContaining("already exists");
            assertThat(deletion).isNotDone();
        } finally {
            stuck.countDown();
        }
        deletion.get(20, TimeUnit.SECONDS);
        assertThat(target.controllers()).extracting(Controller::name).containsExactly("other", "new");
        assertThat(target.bdevs().claimedBy("M0")).isEmpty();
    }

    // ---- helpers ----

    private static byte[] pattern(int n, long seed) {
        byte[] b = new byte[n];
        new Random(seed).nextBytes(b);
        return b;
    }

    /** READ(10)/WRITE(10) of {@code blocks} 512-byte blocks at {@code lba}. */
    private static byte[] rw(int op, int lba, int blocks) {
        return new byte[] {(byte) op, 0, (byte) (lba >>> 24), (byte) (lba >>> 16), (byte) (lba >>> 8), (byte) lba, 0, (byte) (blocks >>> 8), (byte) blocks, 0};
    }

    /** Posts a 4 KiB READ(10) with {@code tag} on request queue {@code rq} without waiting; returns its head. */
    private static int startRead(ScsiInitiator ini, int rq, long tag) {
        int q = FIRST_REQUEST_QUEUE + rq;
        MemorySegment s = ini.scratch();
        s.asSlice(CMD_AT, 256).fill((byte) 0);
        s.set(ValueLayout.JAVA_BYTE, CMD_AT, (byte) 1);
        s.set(ValueLayout.JAVA_BYTE, CMD_AT + 2, (byte) 0x40);
        s.set(LittleEndian.U64, CMD_AT + REQ_ID, tag);
        byte[] cdb = rw(0x28, 0, 8);
        MemorySegment.copy(cdb, 0, s, ValueLayout.JAVA_BYTE, CMD_AT + REQ_CDB, cdb.length);
        s.asSlice(CMD_AT + 128, RESP_HEADER + DEFAULT_SENSE_SIZE).fill((byte) 0xee);
        var dq = ini.queue(q);
        assertThat(dq.begin(3)).isTrue();
        dq.add(ini.scratchGpa() + CMD_AT, REQ_HEADER + DEFAULT_CDB_SIZE, false);
        dq.add(ini.scratchGpa() + CMD_AT + 128, RESP_HEADER + DEFAULT_SENSE_SIZE, true);
        dq.add(ini.dataGpa(), 4096, true);
        int head = dq.end();
        ini.publishAndKick(q);
        return head;
    }

    private static int response(ScsiInitiator ini, long at) {
        return Byte.toUnsignedInt(ini.scratch().get(ValueLayout.JAVA_BYTE, at + 128 + RESP_RESPONSE));
    }

    /** Posts a task management request on the control queue without waiting; returns its head. */
    private static int startTmf(ScsiInitiator ini, int subtype, long tag) {
        MemorySegment s = ini.scratch();
        s.asSlice(TMF_AT, 64).fill((byte) 0);
        s.set(LittleEndian.U32, TMF_AT, T_TMF);
        s.set(LittleEndian.U32, TMF_AT + 4, subtype);
        s.set(ValueLayout.JAVA_BYTE, TMF_AT + 8, (byte) 1);
        s.set(ValueLayout.JAVA_BYTE, TMF_AT + 10, (byte) 0x40);
        s.set(LittleEndian.U64, TMF_AT + 16, tag);
        s.set(ValueLayout.JAVA_BYTE, TMF_AT + 32, (byte) 0xee);
        var dq = ini.queue(CONTROL_QUEUE);
        assertThat(dq.begin(2)).isTrue();
        dq.add(ini.scratchGpa() + TMF_AT, TMF_REQ_SIZE, false);
        dq.add(ini.scratchGpa() + TMF_AT + 32, TMF_RESP_SIZE, true);
        int head = dq.end();
        ini.publishAndKick(CONTROL_QUEUE);
        return head;
    }

    private static int tmfResponse(ScsiInitiator ini) {
        return Byte.toUnsignedInt(ini.scratch().get(ValueLayout.JAVA_BYTE, TMF_AT + 32));
    }
}
