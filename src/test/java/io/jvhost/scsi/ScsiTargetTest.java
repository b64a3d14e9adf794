package io.jvhost.scsi;

import io.jvhost.bdev.BlockChannel;
import io.jvhost.bdev.MallocBlockDevice;
import io.jvhost.scsi.Harness.Result;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

import static io.jvhost.scsi.Harness.cdb;
import static io.jvhost.scsi.Harness.inquiry;
import static io.jvhost.scsi.Harness.reportLuns;
import static io.jvhost.scsi.Harness.rw10;
import static io.jvhost.scsi.Harness.unmap;
import static io.jvhost.scsi.Harness.unmapList;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** Target state machine, missing LUNs, task management and the device container. */
class ScsiTargetTest {
    private final Harness h = new Harness(2048, 512);
    private final List<String> events = new ArrayList<>();

    @AfterEach
    void close() {
        h.close();
    }

    private static final byte[] TUR = cdb(0, 0, 0, 0, 0, 0);

    /** A task that logs its completion into {@link #events}. */
    private ScsiTask task(String name) {
        return new ScsiTask(4).completion(t -> events.add(name + ":" + ScsiStatus.name(t.status())));
    }

    /** Starts a one-block READ(10) without polling, so that it stays in flight. */
    private ScsiTask startRead(String name, long tag) {
        ScsiTask t = task(name);
        MemorySegment buf = h.arena.allocate(512);
        t.reset().cdb(rw10(ScsiOpcode.READ_10, tag, 1, 0)).tag(tag).direction(ScsiTask.Direction.FROM_DEVICE);
        t.addBuffer(buf, 0, 512);
        h.target.execute(t, h.channel);
        assertThat(t.busy()).isTrue();
        return t;
    }

    private ScsiTmf tmf(String name) {
        return new ScsiTmf().completion(m -> events.add(name + ":" + m.response()));
    }

    private void pollAll() {
        for (int i = 0; i < 100 && h.channel.inFlight() > 0; i++) h.channel.poll();
    }

    // ---------------------------------------------------------------- removal

    @Test
    void removalWaitsForInFlightTasksAndRefusesNewOnes() {
        ScsiTask a = startRead("a", 1);
        ScsiTask b = startRead("b", 2);
        assertThat(h.target.inFlight()).isEqualTo(2);
        AtomicInteger removed = new AtomicInteger();
        assertThat(h.target.remove(removed::incrementAndGet)).isTrue();
        assertThat(h.target.state()).isEqualTo(ScsiTarget.State.REMOVING);
        assertThat(removed).hasValue(0);
        assertThat(h.target.remove(removed::incrementAndGet)).as("second remove").isFalse();

        Result r = h.in(512, rw10(ScsiOpcode.READ_10, 0, 1, 0));
        r.assertCheck(ScsiSense.ILLEGAL_REQUEST, ScsiSense.LOGICAL_UNIT_NOT_SUPPORTED);
        assertThat(r.targetUnavailable()).isTrue();
        h.in(96, inquiry(0, 0, 96)).assertCheck(ScsiSense.ILLEGAL_REQUEST, ScsiSense.LOGICAL_UNIT_NOT_SUPPORTED);
        ScsiTask other = task("c").lun(3);
        h.target.execute(other.cdb(TUR), h.channel);
        assertThat(other.targetUnavailable()).isTrue();

        pollAll();
        assertThat(events).containsExactly("c:CHECK CONDITION", "a:GOOD", "b:GOOD");
        assertThat(a.dataTransferred()).isEqualTo(512);
        assertThat(b.status()).isEqualTo(ScsiStatus.GOOD);
        assertThat(h.target.state()).isEqualTo(ScsiTarget.State.REMOVED);
        assertThat(removed).hasValue(1);
        assertThat(h.target.inFlight()).isZero();
    }

    @Test
    void removalWithNothingInFlightIsImmediate() {
        AtomicInteger removed = new AtomicInteger();
        assertThat(h.target.remove(removed::incrementAndGet)).isTrue();
        assertThat(h.target.state()).isEqualTo(ScsiTarget.State.REMOVED);
        assertThat(removed).hasValue(1);
        h.none(TUR).assertCheck(ScsiSense.ILLEGAL_REQUEST, ScsiSense.LOGICAL_UNIT_NOT_SUPPORTED);
    }

    @Test
    void removalFromAnotherThreadWhileTheReactorRunsIo() throws Exception {
        try (MallocBlockDevice dev = new MallocBlockDevice("m", 1024, 512, UUID.randomUUID());
             Arena arena = Arena.ofShared()) {
            ScsiTarget target = new ScsiTarget(2, "t2", dev);
            CountDownLatch running = new CountDownLatch(1);
            CountDownLatch removedLatch = new CountDownLatch(1);
            AtomicLong good = new AtomicLong(), refused = new AtomicLong(), other = new AtomicLong();
            AtomicLong refusedBeforeRemoved = new AtomicLong();
            Thread reactor = new Thread(() -> {
                BlockChannel ch = dev.openChannel();
                MemorySegment buf = arena.allocate(16 * 4096);
                ScsiTask[] tasks = new ScsiTask[16];
                for (int i = 0; i < tasks.length; i++) {
                    tasks[i] = new ScsiTask(2).completion(t -> {
                        if (t.status() == ScsiStatus.GOOD) good.incrementAndGet();
                        else if (t.targetUnavailable()) refused.incrementAndGet();
                        else other.incrementAndGet();
                    });
                }
                running.countDown();
                int k = 0;
                while (target.state() != ScsiTarget.State.REMOVED || refused.get() < 1000) {
                    for (int i = 0; i < tasks.length; i++) {
                        ScsiTask t = tasks[i];
                        if (t.busy()) continue;
                        t.reset().cdb(rw10((k & 1) == 0 ? ScsiOpcode.READ_10 : ScsiOpcode.WRITE_10, k % 1000, 8, 0))
                                .direction((k & 1) == 0 ? ScsiTask.Direction.FROM_DEVICE : ScsiTask.Direction.TO_DEVICE);
                        t.addBuffer(buf, i * 4096L, 4096);
                        k++;
                        target.execute(t, ch);
                    }
                    ch.poll();
                }
                while (ch.inFlight() > 0) ch.poll();
                ch.close();
            });
            reactor.start();
            assertThat(running.await(10, TimeUnit.SECONDS)).isTrue();
            Thread.sleep(50);
            assertThat(target.remove(removedLatch::countDown)).isTrue();
            refusedBeforeRemoved.set(0);
            assertThat(removedLatch.await(10, TimeUnit.SECONDS)).isTrue();
            reactor.join(10_000);
            assertThat(reactor.isAlive()).isFalse();
            assertThat(target.state()).isEqualTo(ScsiTarget.State.REMOVED);
            assertThat(target.inFlight()).isZero();
            assertThat(good.get()).isPositive();
            assertThat(refused.get()).isGreaterThanOrEqualTo(1000);
            assertThat(other.get()).isZero();
        }
    }

    // ---------------------------------------------------------------- missing LUNs

    @Test
    void missingLunAnswers() {
        ScsiTask t = task("x");
        MemorySegment buf = h.arena.allocate(96);
        t.reset().cdb(inquiry(0, 0, 96)).lun(1).direction(ScsiTask.Direction.FROM_DEVICE).addBuffer(buf, 0, 96);
        h.target.execute(t, h.channel);
        assertThat(t.status()).isEqualTo(ScsiStatus.GOOD);
        assertThat(t.dataTransferred()).isEqualTo(96);
        assertThat(buf.get(java.lang.foreign.ValueLayout.JAVA_BYTE, 0)).as("PQ 011b, type 1Fh").isEqualTo((byte) 0x7F);

        t.reset().cdb(reportLuns(0, 64)).lun(5).direction(ScsiTask.Direction.FROM_DEVICE).addBuffer(buf, 0, 96);
        h.target.execute(t, h.channel);
        assertThat(t.status()).isEqualTo(ScsiStatus.GOOD);
        assertThat(t.dataTransferred()).isEqualTo(16);

        t.reset().cdb(cdb(ScsiOpcode.REQUEST_SENSE, 0, 0, 0, 18, 0)).lun(5).direction(ScsiTask.Direction.FROM_DEVICE)
                .addBuffer(buf, 0, 96);
        h.target.execute(t, h.channel);
        assertThat(t.status()).isEqualTo(ScsiStatus.GOOD);
        assertThat(buf.asSlice(0, 18).toArray(java.lang.foreign.ValueLayout.JAVA_BYTE))
                .isEqualTo(cdb(0x70, 0, 5, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x25, 0, 0, 0, 0, 0));

        for (int lun : new int[] {1, 255, 16383, -1}) {
            t.reset().cdb(TUR).lun(lun);
            h.target.execute(t, h.channel);
            assertThat(t.status()).isEqualTo(ScsiStatus.CHECK_CONDITION);
            assertThat(t.ascAscq()).isEqualTo(ScsiSense.LOGICAL_UNIT_NOT_SUPPORTED);
            assertThat(t.targetUnavailable()).isFalse();
        }
        t.reset().cdb(inquiry(1, 0x80, 96)).lun(1).direction(ScsiTask.Direction.FROM_DEVICE).addBuffer(buf, 0, 96);
        h.target.execute(t, h.channel);
        assertThat(t.ascAscq()).isEqualTo(ScsiSense.LOGICAL_UNIT_NOT_SUPPORTED);
    }

    // ---------------------------------------------------------------- task management

    @Test
    void abortTaskWaitsForTheIoThenReportsTaskAborted() {
        ScsiTask a = startRead("a", 7);
        ScsiTask b = startRead("b", 8);
        ScsiTmf m = tmf("abort").set(ScsiTmf.Function.ABORT_TASK, 0, 7);
        h.target.manage(m);
        assertThat(m.busy()).isTrue();
        assertThat(events).isEmpty();
        pollAll();
        assertThat(events).containsExactly("a:TASK ABORTED", "abort:FUNCTION_COMPLETE", "b:GOOD");
        assertThat(a.dataTransferred()).isZero();
        assertThat(a.senseLength()).isZero();
        assertThat(a.residual()).isEqualTo(512);
        assertThat(b.dataTransferred()).isEqualTo(512);
    }

    @Test
    void abortOfUnknownTaskCompletesAtOnce() {
        startRead("a", 7);
        ScsiTmf m = tmf("abort").set(ScsiTmf.Function.ABORT_TASK, 0, 99);
        h.target.manage(m);
        assertThat(events).containsExactly("abort:FUNCTION_COMPLETE");
        pollAll();
        assertThat(events).containsExactly("abort:FUNCTION_COMPLETE", "a:GOOD");
    }

    @Test
    void queryTaskAndTaskSet() {
        ScsiTmf q = tmf("q");
        h.target.manage(q.set(ScsiTmf.Function.QUERY_TASK_SET, 0, 0));
        startRead("a", 7);
        h.target.manage(q.set(ScsiTmf.Function.QUERY_TASK, 0, 7));
        h.target.manage(q.set(ScsiTmf.Function.QUERY_TASK, 0, 8));
        h.target.manage(q.set(ScsiTmf.Function.QUERY_TASK_SET, 0, 0));
        h.target.manage(q.set(ScsiTmf.Function.CLEAR_ACA, 0, 0));
        h.target.manage(q.set(ScsiTmf.Function.QUERY_TASK, 4, 7));
        assertThat(events).containsExactly("q:FUNCTION_COMPLETE", "q:FUNCTION_SUCCEEDED", "q:FUNCTION_COMPLETE",
                "q:FUNCTION_SUCCEEDED", "q:FUNCTION_REJECTED", "q:INCORRECT_LOGICAL_UNIT_NUMBER");
        pollAll();
    }

    @Test
    void abortTaskSetAbortsEverythingInFlightOnly() {
        startRead("a", 1);
        startRead("b", 2);
        ScsiTmf m = tmf("set");
        h.target.manage(m.set(ScsiTmf.Function.ABORT_TASK_SET, 0, 0));
        ScsiTask c = startRead("c", 3); // issued after the function: not affected
        pollAll();
        assertThat(events).containsExactly("a:TASK ABORTED", "b:TASK ABORTED", "set:FUNCTION_COMPLETE", "c:GOOD");
        assertThat(c.status()).isEqualTo(ScsiStatus.GOOD);
        // no unit attention after ABORT TASK SET
        h.none(TUR).assertGood();
    }

    @Test
    void lunResetAbortsAndRaisesUnitAttention() {
        startRead("a", 1);
        ScsiTmf m = tmf("reset");
        h.target.manage(m.set(ScsiTmf.Function.LOGICAL_UNIT_RESET, 0, 0));
        assertThat(m.busy()).isTrue();
        pollAll();
        assertThat(events).containsExactly("a:TASK ABORTED", "reset:FUNCTION_COMPLETE");
        assertThat(h.lun().unitAttentionPending()).isTrue();
        // INQUIRY and REPORT LUNS neither report nor clear it
        h.in(96, inquiry(0, 0, 96)).assertGood();
        h.in(64, reportLuns(0, 64)).assertGood();
        h.in(512, rw10(ScsiOpcode.READ_10, 0, 1, 0)).assertCheck(ScsiSense.UNIT_ATTENTION, ScsiSense.POWER_ON_RESET);
        h.in(512, rw10(ScsiOpcode.READ_10, 0, 1, 0)).assertGood();
    }

    @Test
    void requestSenseReportsAndClearsUnitAttention() {
        ScsiTmf m = tmf("reset");
        h.target.manage(m.set(ScsiTmf.Function.LOGICAL_UNIT_RESET, 0, 0));
        assertThat(events).containsExactly("reset:FUNCTION_COMPLETE");
        Result r = h.in(18, cdb(ScsiOpcode.REQUEST_SENSE, 0, 0, 0, 18, 0)).assertGood();
        assertThat(r.dataIn()).isEqualTo(cdb(0x70, 0, 6, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x29, 0, 0, 0, 0, 0));
        h.none(TUR).assertGood();
    }

    @Test
    void targetResetAndNexusReset() {
        startRead("a", 1);
        startRead("b", 2);
        h.target.manage(tmf("target").set(ScsiTmf.Function.TARGET_RESET, 9, 0)); // LUN field ignored
        pollAll();
        assertThat(events).containsExactly("a:TASK ABORTED", "b:TASK ABORTED", "target:FUNCTION_COMPLETE");
        h.none(TUR).assertCheck(ScsiSense.UNIT_ATTENTION, ScsiSense.POWER_ON_RESET);
        events.clear();
        h.target.manage(tmf("nexus").set(ScsiTmf.Function.I_T_NEXUS_RESET, 0, 0));
        assertThat(events).containsExactly("nexus:FUNCTION_COMPLETE");
    }

    @Test
    void overlappingFunctionsBothWait() {
        startRead("a", 1);
        h.target.manage(tmf("abort").set(ScsiTmf.Function.ABORT_TASK, 0, 1));
        h.target.manage(tmf("reset").set(ScsiTmf.Function.LOGICAL_UNIT_RESET, 0, 0));
        assertThat(events).isEmpty();
        pollAll();
        assertThat(events).containsExactly("a:TASK ABORTED", "abort:FUNCTION_COMPLETE", "reset:FUNCTION_COMPLETE");
    }

    @Test
    void abortStopsAMultiStepCommandBetweenSteps() {
        ScsiTask t = task("unmap");
        byte[] list = unmapList(0, 1, 10, 1, 20, 1);
        MemorySegment buf = h.arena.allocate(list.length);
        MemorySegment.copy(list, 0, buf, java.lang.foreign.ValueLayout.JAVA_BYTE, 0, list.length);
        t.reset().cdb(unmap(list.length)).tag(5).direction(ScsiTask.Direction.TO_DEVICE).addBuffer(buf, 0, list.length);
        h.target.execute(t, h.channel);
        h.target.manage(tmf("abort").set(ScsiTmf.Function.ABORT_TASK, 0, 5));
        pollAll();
        assertThat(events).containsExactly("unmap:TASK ABORTED", "abort:FUNCTION_COMPLETE");
        assertThat(h.bdev.ops).containsExactly("UNMAP@0+512");
    }

    @Test
    void busyTasksAndFunctionsCannotBeReused() {
        ScsiTask a = startRead("a", 1);
        assertThatThrownBy(() -> h.target.execute(a, h.channel)).isInstanceOf(IllegalStateException.class);
        assertThatThrownBy(a::reset).isInstanceOf(IllegalStateException.class);
        ScsiTmf m = tmf("abort").set(ScsiTmf.Function.ABORT_TASK, 0, 1);
        h.target.manage(m);
        assertThatThrownBy(() -> h.target.manage(m)).isInstanceOf(IllegalStateException.class);
        pollAll();
        assertThat(events).containsExactly("a:TASK ABORTED", "abort:FUNCTION_COMPLETE");
        assertThatThrownBy(() -> h.target.execute(new ScsiTask(1), h.channel)).isInstanceOf(IllegalStateException.class);
    }

    @Test
    void completionCallbackMayReuseTheTaskAtOnce() {
        MemorySegment buf = h.arena.allocate(512);
        AtomicInteger n = new AtomicInteger();
        ScsiTask t = new ScsiTask(2);
        t.completion(x -> {
            assertThat(x.status()).isEqualTo(ScsiStatus.GOOD);
            if (n.incrementAndGet() < 10) {
                x.reset().cdb(rw10(ScsiOpcode.READ_10, n.get(), 1, 0)).direction(ScsiTask.Direction.FROM_DEVICE)
                        .addBuffer(buf, 0, 512);
                h.target.execute(x, h.channel);
            }
        });
        t.reset().cdb(TUR);
        h.target.execute(t, h.channel);
        pollAll();
        assertThat(n).hasValue(10);
        assertThat(h.target.inFlight()).isZero();
        assertThat(h.lun().inFlight()).isZero();
    }

    // ---------------------------------------------------------------- device container

    @Test
    void deviceHoldsUpToEightTargets() {
        ScsiDevice d = new ScsiDevice("vhost.0");
        ScsiTarget t0 = d.addTarget(0, "disk0", h.bdev);
        ScsiTarget t7 = d.addTarget(7, "disk7", h.bdev);
        assertThat(d.target(0)).isSameAs(t0);
        assertThat(d.target(7)).isSameAs(t7);
        assertThat(d.target(3)).isNull();
        assertThat(d.target(8)).isNull();
        assertThat(d.target(-1)).isNull();
        assertThat(d.lun(0, 0)).isSameAs(t0.lun(0));
        assertThat(d.lun(0, 1)).isNull();
        assertThat(d.targets()).containsExactly(t0, t7);
        assertThatThrownBy(() -> d.addTarget(0, "again", h.bdev)).isInstanceOf(IllegalStateException.class);
        assertThatThrownBy(() -> d.addTarget(8, "x", h.bdev)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> d.addTarget(1, " ", h.bdev)).isInstanceOf(IllegalArgumentException.class);

        AtomicInteger removed = new AtomicInteger();
        assertThat(d.removeTarget(7, removed::incrementAndGet)).isTrue();
        assertThat(removed).hasValue(1);
        assertThat(d.target(7)).isNull();
        assertThat(t7.state()).isEqualTo(ScsiTarget.State.REMOVED);
        assertThat(d.removeTarget(7, null)).isFalse();
        assertThat(d.addTarget(7, "disk7b", h.bdev)).isNotSameAs(t7);
    }

    @Test
    void deviceSlotIsFreedOnlyWhenRemovalFinishes() {
        ScsiDevice d = new ScsiDevice("vhost.1");
        ScsiTarget t = d.addTarget(0, "disk0", h.bdev);
        ScsiTask a = new ScsiTask(2).completion(x -> {});
        MemorySegment buf = h.arena.allocate(512);
        a.reset().cdb(rw10(ScsiOpcode.READ_10, 0, 1, 0)).direction(ScsiTask.Direction.FROM_DEVICE).addBuffer(buf, 0, 512);
        t.execute(a, h.channel);
        assertThat(d.removeTarget(0, null)).isTrue();
        assertThat(d.target(0)).isSameAs(t);
        assertThat(d.lun(0, 0)).as("not ACTIVE").isNull();
        pollAll();
        assertThat(d.target(0)).isNull();
    }
}
