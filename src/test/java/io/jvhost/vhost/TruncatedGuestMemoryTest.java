package io.jvhost.vhost;

import io.jvhost.bdev.MallocBlockDevice;
import io.jvhost.initiator.BlkInitiator;
import io.jvhost.initiator.SharedMemory;
import io.jvhost.runtime.IdleStrategy;
import io.jvhost.runtime.Reactor;
import io.jvhost.sys.Fd;
import io.jvhost.virtio.ChainError;
import io.jvhost.virtio.VirtQueue;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

import static io.jvhost.virtio.BlkLayout.*;
import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.awaitility.Awaitility.await;

/**
 * Issue 15 items 1 and 5, issue 8 item 5: a front-end hands over guest memory that cannot be
 * sealed, then truncates it under live rings (SIGBUS on access, an {@link InternalError} in
 * Java). Only that front-end's queue may fail: a bystander controller on the same reactor keeps
 * its I/O going, the reactor survives and sleeps again when idle, the faulted queue stops at
 * once, the session tears down completely (no queue left on the reactor, no mapping left) and
 * the controller takes a new connection right away.
 */
class TruncatedGuestMemoryTest {
    static final long RING_GPA = 0x1_0000_0000L;
    static final long DATA_GPA = 0x2_0000_0000L;

    @TempDir
    Path dir;
    VhostTarget target;
    Controller victim;
    Reactor reactor;
    BlkInitiator bystander;
    long bystanderValue;

    @BeforeEach
    void setUp() throws Exception {
        target = new VhostTarget(dir, 1, IdleStrategy.BACKOFF);
        target.bdevs().register(new MallocBlockDevice("Bad", 2048, 512, null));
        target.bdevs().register(new MallocBlockDevice("Good", 2048, 512, null));
        victim = target.createBlkController("bad", "Bad", false, 1, null);
        target.createBlkController("good", "Good", false, 1, null);
        reactor = target.reactors()[0];
        bystander = BlkInitiator.connect(dir.resolve("good").toString(), 1, 64, 1 << 20);
        bystanderStillServes();
    }

    @AfterEach
    void tearDown() {
        bystander.close();
        target.close();
    }

    private void bystanderStillServes() throws IOException {
        long v = ++bystanderValue;
        bystander.data().set(ValueLayout.JAVA_LONG, 0, v);
        assertThat(bystander.write(0, 5, 512)).isEqualTo(S_OK);
        bystander.data().fill((byte) 0);
        assertThat(bystander.read(0, 5, 512)).isEqualTo(S_OK);
        assertThat(bystander.data().get(ValueLayout.JAVA_LONG, 0)).isEqualTo(v);
    }

    private VirtQueue victimQueue() {
        List<VirtQueue> qs = victim.session().runningQueues();
        assertThat(qs).hasSize(1);
        return qs.get(0);
    }

    private void awaitVictimFaulted() {
        await().atMost(Duration.ofSeconds(10)).until(() -> victimQueue().isFaulted());
        VirtQueue q = victimQueue();
        assertThat(q.brokenReason()).isEqualTo(ChainError.GUEST_MEMORY_FAULT);
        assertThat(q.stats().faults()).isEqualTo(1);
        assertThat(reactor.stats().dead()).isFalse();
        assertThat(reactor.stats().errors()).isPositive();
    }

    /**
     * After the attacker disconnects: the session ends well within the 30 s stop timeout, the
     * queue leaves the reactor, the target's mapping of {@code attacked} is gone, the reactor
     * sleeps again, and the controller serves a new front-end.
     */
    private void teardownIsComplete(TruncatingFrontEnd fe, SharedMemory... attacked) throws Exception {
        fe.close();
        await().atMost(Duration.ofSeconds(10)).until(() -> victim.session() == null);
        for (SharedMemory m : attacked) {
            assertThat(TruncatingFrontEnd.mappings(m.fd())).as("target mappings left of the attacked memory").isEqualTo(1);
        }
        await().atMost(Duration.ofSeconds(5)).until(() -> reactor.stats().pollables() == 1); // the bystander's queue
        assertThat(reactor.call(reactor::wakeFdCount).get(5, java.util.concurrent.TimeUnit.SECONDS)).as("kick fds in epoll").isEqualTo(1);
        long sleeps = reactor.stats().sleeps();
        await().atMost(Duration.ofSeconds(10)).until(() -> reactor.stats().sleeps() >= sleeps + 2);
        bystanderStillServes();
        try (BlkInitiator again = BlkInitiator.connect(dir.resolve("bad").toString(), 1, 64, 1 << 20)) {
            again.data().set(ValueLayout.JAVA_LONG, 0, 42);
            assertThat(again.write(0, 9, 512)).isEqualTo(S_OK);
            assertThat(again.read(0, 9, 512)).isEqualTo(S_OK);
        }
        assertThat(reactor.stats().dead()).isFalse();
    }

    @Test
    void ringsTruncatedToZeroFailOnlyThatQueue() throws Exception {
        try (SharedMemory mem = SharedMemory.unsealable(1 << 20, RING_GPA);
             TruncatingFrontEnd fe = new TruncatingFrontEnd(dir.resolve("bad"), mem, mem, false)) {
            assertThat(fe.request(T_OUT, 0, 4096)).isEqualTo(S_OK);
            assertThat(TruncatingFrontEnd.mappings(mem.fd())).as("ours and the target's").isEqualTo(2);
            assertThat(fe.errorSignals()).isZero();
            Fd.ftruncate(mem.fd(), 0);
            fe.kick(); // the woken reactor touches the ring: poll or afterWake faults
            awaitVictimFaulted();
            assertThat(fe.errorSignals()).as("SET_VRING_ERR eventfd signalled").isEqualTo(1);
            bystanderStillServes();
            teardownIsComplete(fe, mem);
        }
    }

    @Test
    void usedRingCutFaultsWhenTheReactorPreparesToSleep() throws Exception {
        // desc and avail stay, the used ring (where EVENT_IDX's avail_event is written before
        // sleeping) is cut: the first access is the re-enabling of kicks in prepareSleep.
        try (SharedMemory mem = SharedMemory.unsealable(1 << 20, RING_GPA);
             TruncatingFrontEnd fe = new TruncatingFrontEnd(dir.resolve("bad"), mem, mem, true)) {
            assertThat(fe.request(T_OUT, 0, 4096)).isEqualTo(S_OK);
            Fd.ftruncate(mem.fd(), TruncatingFrontEnd.USED);
            bystanderStillServes(); // wakes the reactor; it goes back to sleep through prepareSleep
            awaitVictimFaulted();
            bystanderStillServes();
            teardownIsComplete(fe, mem);
        }
    }

    /** Rings sealed and intact, data buffers in a second, unsealed region truncated under a request. */
    private void dataRegionTruncated(int type, boolean headerInData) throws Exception {
        dataRegionTruncated(type, headerInData, 0);
    }

    /**
     * As above, after {@code warmUp} requests of the same shape, so that the data path runs as
     * compiled code: there the JVM reports the fault late (at the next safepoint poll).
     */
    private void dataRegionTruncated(int type, boolean headerInData, int warmUp) throws Exception {
        dataRegionTruncated(type, headerInData, warmUp, 4096);
    }

    /** As above with requests of {@code bytes}. */
    private void dataRegionTruncated(int type, boolean headerInData, int warmUp, int bytes) throws Exception {
        try (SharedMemory rings = new SharedMemory(1 << 20, RING_GPA);
             SharedMemory data = SharedMemory.unsealable(1 << 20, DATA_GPA);
             TruncatingFrontEnd fe = new TruncatingFrontEnd(dir.resolve("bad"), rings, data, false)) {
            fe.data().set(ValueLayout.JAVA_LONG, 0, 7);
            fe.warmUp(warmUp, type, headerInData, bytes);
            assertThat(fe.request(T_OUT, 0, bytes)).isEqualTo(S_OK);
            assertThat(fe.request(T_IN, 0, bytes)).isEqualTo(S_OK);
            int usedBefore = fe.q.usedIndex();
            fe.prepare(type, 0, bytes, headerInData);
            Fd.ftruncate(data.fd(), 0);
            fe.publishAndKick();
            awaitVictimFaulted();
            VirtQueue q = victimQueue();
            // The ring and the status byte survived: the request is answered, not left hanging.
            await().atMost(Duration.ofSeconds(5)).until(() -> fe.q.usedIndex() == usedBefore + 1);
            // How it is answered depends on where HotSpot delivers the fault. Interpreted, or
            // inside the copy stub's own error exit, the copy throws and the request fails
            // (S_IOERR). Once the path is compiled, HotSpot may deliver the InternalError of a
            // faulting unsafe copy asynchronously, at the next safepoint poll after the copy
            // returned: the request has then completed with what the copy moved (S_OK), or is
            // counted dropped as well. Which one happens varies from run to run with the JIT's
            // state (CI and by hand: ~1 run in 3-5), so any of them is accepted; what must hold
            // is below and in the rest of this method: the queue faulted, the bystander serves,
            // the ring stops at once, and the session tears down completely.
            int status = fe.status();
            assertThat(status).as("status of the request that faulted").isIn(S_IOERR, S_OK);
            if (status == S_IOERR) assertThat(q.stats().requestErrors()).isEqualTo(1);
            assertThat(q.stats().requestErrors() + q.stats().droppedRequests()).as("requests failed or dropped").isBetween(0L, 2L);
            bystanderStillServes();
            // GET_VRING_BASE stops the faulted ring at once (not after the 30 s stop timeout)
            int base = assertTimeoutPreemptively(Duration.ofSeconds(10), () -> fe.fe.getVringBase(0));
            assertThat(base).isEqualTo((3 + warmUp) & 0xffff);
            assertThat(reactor.stats().pollables()).isEqualTo(1);
            teardownIsComplete(fe, data);
        }
    }

    @Test
    void writeFromTruncatedDataFailsOnlyThatQueue() throws Exception {
        dataRegionTruncated(T_OUT, false);
    }

    @Test
    void readIntoTruncatedDataFailsOnlyThatQueue() throws Exception {
        dataRegionTruncated(T_IN, false);
    }

    @Test
    void headerInTruncatedDataFailsOnlyThatQueue() throws Exception {
        dataRegionTruncated(T_OUT, true);
    }

    @Test
    void headerInTruncatedDataFailsOnlyThatQueueInCompiledCode() throws Exception {
        dataRegionTruncated(T_OUT, true, 20_000);
    }

    /**
     * A 128 KiB read into memory truncated under it after 20,000 of them (so the malloc bdev's
     * copy runs as C2 code and faults inside HotSpot's copy stub, its 64-byte vector loop on
     * AVX-512 CPUs; GuestCopyFaultTest checks in fresh JVMs that the stub itself turns the fault
     * into an InternalError): the request fails with an I/O error and only that queue stops; the
     * process and the bystander go on.
     */
    @Test
    void read128KiBIntoTruncatedDataInCompiledCodeFailsOnlyThatQueue() throws Exception {
        dataRegionTruncated(T_IN, false, 20_000, 128 << 10);
    }

    @Test
    void requestWhoseStatusByteVanishedIsDroppedNotWritten() throws Exception {
        try (SharedMemory rings = new SharedMemory(1 << 20, RING_GPA);
             SharedMemory data = SharedMemory.unsealable(1 << 20, DATA_GPA);
             TruncatingFrontEnd fe = new TruncatingFrontEnd(dir.resolve("bad"), rings, data, false)) {
            assertThat(fe.request(T_OUT, 0, 4096)).isEqualTo(S_OK);
            int usedBefore = fe.q.usedIndex();
            // header and data in the data region, status byte too: the whole request vanishes
            long hdr = 1 << 19;
            data.segment().set(ValueLayout.JAVA_INT_UNALIGNED, hdr, T_OUT);
            data.segment().set(ValueLayout.JAVA_LONG_UNALIGNED, hdr + 8, 0);
            fe.q.begin(3);
            fe.q.add(data.gpa(hdr), HEADER_SIZE, false);
            fe.q.add(data.gpa(0), 4096, false);
            fe.q.add(data.gpa(hdr + 16), 1, true);
            fe.q.end();
            Fd.ftruncate(data.fd(), 0);
            fe.publishAndKick();
            awaitVictimFaulted();
            VirtQueue q = victimQueue();
            await().atMost(Duration.ofSeconds(5)).until(() -> q.stats().droppedRequests() == 1);
            assertThat(q.ringUsable()).isTrue();
            bystanderStillServes();
            int base = assertTimeoutPreemptively(Duration.ofSeconds(10), () -> fe.fe.getVringBase(0));
            assertThat(base).isEqualTo(2);
            teardownIsComplete(fe, data);
        }
    }

    @Test
    void disconnectRightAfterTheFaultTearsDownAtOnce() throws Exception {
        try (SharedMemory rings = new SharedMemory(1 << 20, RING_GPA);
             SharedMemory data = SharedMemory.unsealable(1 << 20, DATA_GPA);
             TruncatingFrontEnd fe = new TruncatingFrontEnd(dir.resolve("bad"), rings, data, true)) {
            fe.prepare(T_OUT, 0, 4096, true);
            Fd.ftruncate(data.fd(), 4096); // cuts all but the first page: data buffers from 0, headers at 512 KiB
            fe.publishAndKick();
            awaitVictimFaulted();
            assertTimeoutPreemptively(Duration.ofSeconds(15), () -> teardownIsComplete(fe, data));
        }
    }

    @Test
    void sealableMemoryCannotBeTruncatedUnderTheTarget() throws Exception {
        try (SharedMemory mem = new SharedMemory(1 << 20, RING_GPA);
             TruncatingFrontEnd fe = new TruncatingFrontEnd(dir.resolve("bad"), mem, mem, false)) {
            assertThat(fe.request(T_OUT, 0, 4096)).isEqualTo(S_OK);
            // The target sealed it against shrinking when it mapped it.
            assertThat(Fd.seals(mem.fd()) & Fd.F_SEAL_SHRINK).isNotZero();
            org.assertj.core.api.Assertions.assertThatThrownBy(() -> Fd.ftruncate(mem.fd(), 0)).isInstanceOf(RuntimeException.class);
            assertThat(fe.request(T_IN, 0, 4096)).isEqualTo(S_OK);
        }
    }

    @Test
    void scsiReadIntoTruncatedDataFailsTheTaskAndOnlyThatQueue() throws Exception {
        target.bdevs().register(new MallocBlockDevice("Scsi", 2048, 512, null));
        Controller scsi = target.createScsiController("scsi", 1, null);
        target.addScsiTarget("scsi", 0, "Scsi");
        try (SharedMemory rings = new SharedMemory(1 << 20, RING_GPA);
             SharedMemory data = SharedMemory.unsealable(1 << 20, DATA_GPA);
             TruncatingFrontEnd fe = new TruncatingFrontEnd(dir.resolve("scsi"), rings, data, false, 2)) {
            await().atMost(Duration.ofSeconds(5)).until(() -> scsi.session() != null && scsi.session().runningQueues().size() == 1);
            fe.prepareScsiRead(8);
            Fd.ftruncate(data.fd(), 0);
            fe.publishAndKick();
            await().atMost(Duration.ofSeconds(10)).until(() -> scsi.session().runningQueues().get(0).isFaulted());
            VirtQueue q = scsi.session().runningQueues().get(0);
            assertThat(q.brokenReason()).isEqualTo(ChainError.GUEST_MEMORY_FAULT);
            // The task was answered (CHECK CONDITION, HARDWARE ERROR), not left hanging.
            await().atMost(Duration.ofSeconds(5)).until(() -> fe.q.usedIndex() == 1);
            MemorySegmentView resp = new MemorySegmentView(rings.segment(), TruncatingFrontEnd.SCSI_RESP);
            assertThat(resp.u8(io.jvhost.virtio.ScsiLayout.RESP_RESPONSE)).isZero();
            assertThat(resp.u8(io.jvhost.virtio.ScsiLayout.RESP_STATUS)).isEqualTo(2);
            bystanderStillServes();
            int base = assertTimeoutPreemptively(Duration.ofSeconds(10), () -> fe.fe.getVringBase(2));
            assertThat(base).isEqualTo(1);
            fe.close();
            await().atMost(Duration.ofSeconds(10)).until(() -> scsi.session() == null);
            assertThat(TruncatingFrontEnd.mappings(data.fd())).isEqualTo(1);
            await().atMost(Duration.ofSeconds(5)).until(() -> reactor.stats().pollables() == 1);
            assertThat(reactor.stats().dead()).isFalse();
            bystanderStillServes();
        }
    }

    private record MemorySegmentView(java.lang.foreign.MemorySegment m, long base) {
        int u8(long off) {
            return Byte.toUnsignedInt(m.get(ValueLayout.JAVA_BYTE, base + off));
        }
    }
}
