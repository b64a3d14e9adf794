package io.jvhost.vhost;

import io.jvhost.bdev.MallocBlockDevice;
import io.jvhost.initiator.SharedMemory;
import io.jvhost.initiator.VhostUserFrontend;
import io.jvhost.runtime.IdleStrategy;
import io.jvhost.sys.EventFd;
import io.jvhost.sys.Fd;
import io.jvhost.sys.UnixSocket;
import io.jvhost.vhostuser.VhostUserConnection;
import io.jvhost.vhostuser.VhostUserProtocol;
import io.jvhost.virtio.PackedVirtQueue;
import io.jvhost.virtio.VirtQueue;
import io.jvhost.virtio.VirtioFeatures;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import static io.jvhost.virtio.VirtioFeatures.bit;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * SET_VRING_NUM against a real {@link Session} over a socketpair: once VIRTIO_F_RING_PACKED is
 * negotiated a ring of 100 entries (not a power of two, VIRTIO 1.2 2.8) is accepted and starts as
 * a packed ring of that size; on split rings the same size is refused (NACK with REPLY_ACK,
 * counted as a failed request, the connection goes on); sizes above the session's bound are
 * refused for packed rings too.
 */
@Timeout(value = 30, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class PackedRingSizeHandshakeTest {
    @TempDir
    Path dir;
    VhostTarget target;
    Controller ctrl;
    final ExecutorService sessions = Executors.newCachedThreadPool();
    VhostUserFrontend fe;
    Future<?> done;

    @BeforeEach
    void setUp() {
        target = new VhostTarget(dir, 1, IdleStrategy.BACKOFF);
        target.bdevs().register(new MallocBlockDevice("Ram", 4096, 512, null));
        ctrl = target.createBlkController("blk", "Ram", false, 1, null, QueuePlacement.Mode.ONE_REACTOR, true);
    }

    @AfterEach
    void tearDown() throws Exception {
        if (fe != null) fe.close();
        if (done != null) done.get(20, TimeUnit.SECONDS); // the session ends when the front-end hangs up
        sessions.shutdownNow();
        target.close();
    }

    /** A session on one end of a socketpair, our front-end codec on the other. */
    private Session session() {
        UnixSocket[] pair = UnixSocket.pair();
        Session s = new Session(ctrl, ctrl.device(), new VhostUserConnection(pair[1], true), 1);
        done = sessions.submit(s);
        fe = new VhostUserFrontend(pair[0]);
        return s;
    }

    private void negotiate(boolean packed) throws Exception {
        long offered = fe.getFeatures();
        long want = bit(VirtioFeatures.VERSION_1) | bit(VirtioFeatures.VHOST_USER_PROTOCOL_FEATURES) | (packed ? bit(VirtioFeatures.RING_PACKED) : 0);
        assertThat(offered & want).as("the controller offers what the test asks for").isEqualTo(want);
        fe.setFeatures(want);
        fe.getProtocolFeatures();
        fe.setProtocolFeatures(1L << VhostUserProtocol.PF_REPLY_ACK);
        fe.useReplyAck(true);
        fe.setOwner();
    }

    @Test
    void aPackedRingOf100IsAcceptedAndStarts() throws Exception {
        Session s = session();
        negotiate(true);
        int kick = EventFd.create(true);
        int call = EventFd.create(true);
        try (SharedMemory mem = new SharedMemory(1 << 20, 0)) {
            fe.setMemTable(mem);
            long uva = mem.userAddr();
            fe.setVringNum(0, 100); // acked: REPLY_ACK would throw on a NACK
            fe.setVringBase(0, 0x8000);
            fe.setVringAddr(0, uva, uva + 0x2040, uva + 0x2000); // ring, device area, driver area
            fe.setVringCall(0, call);
            fe.setVringKick(0, kick);
            fe.setVringEnable(0, true);
            List<VirtQueue> running = s.runningQueues();
            assertThat(running).hasSize(1);
            assertThat(running.get(0)).isInstanceOf(PackedVirtQueue.class);
            assertThat(running.get(0).size()).isEqualTo(100);
            assertThat(fe.getVringBase(0)).as("GET_VRING_BASE: slot 0, wrap counter 1").isEqualTo(0x8000);
            assertThat(ctrl.stats.failedRequests.get()).isZero();
        } finally {
            Fd.closeQuietly(kick);
            Fd.closeQuietly(call);
        }
    }

    @Test
    void aSplitRingOf100IsRefusedAndTheConnectionGoesOn() throws Exception {
        session();
        negotiate(false);
        assertThatThrownBy(() -> fe.setVringNum(0, 100)).hasMessageContaining("rejected");
        assertThat(ctrl.stats.failedRequests.get()).isEqualTo(1);
        fe.setVringNum(0, 128);
        assertThat(fe.getQueueNum()).as("still talking").isEqualTo(1);
        assertThat(ctrl.stats.failedRequests.get()).isEqualTo(1);
    }

    /**
     * The size was taken for a packed ring, then SET_FEATURES drops VIRTIO_F_RING_PACKED: the
     * ring cannot start as a split ring of 100 (the request that would start it is refused),
     * and a power-of-two size afterwards starts it.
     */
    @Test
    void aPackedSizeThatTheFeaturesLaterMakeSplitDoesNotStart() throws Exception {
        Session s = session();
        negotiate(true);
        fe.setVringNum(0, 100);
        fe.setFeatures(bit(VirtioFeatures.VERSION_1) | bit(VirtioFeatures.VHOST_USER_PROTOCOL_FEATURES));
        int kick = EventFd.create(true);
        int call = EventFd.create(true);
        try (SharedMemory mem = new SharedMemory(1 << 20, 0)) {
            fe.setMemTable(mem);
            long uva = mem.userAddr();
            fe.setVringBase(0, 0);
            fe.setVringAddr(0, uva, uva + 0x3000, uva + 0x2000);
            fe.setVringCall(0, call);
            fe.setVringEnable(0, true);
            assertThatThrownBy(() -> fe.setVringKick(0, kick)).hasMessageContaining("rejected");
            assertThat(s.runningQueues()).isEmpty();
            fe.setVringNum(0, 128);
            assertThat(s.runningQueues()).singleElement().satisfies(q -> assertThat(q.size()).isEqualTo(128));
            assertThat(ctrl.stats.failedRequests.get()).isEqualTo(1);
        } finally {
            Fd.closeQuietly(kick);
            Fd.closeQuietly(call);
        }
    }

    @Test
    void aPackedRingLargerThanTheSessionBoundIsRefused() throws Exception {
        session();
        negotiate(true);
        assertThatThrownBy(() -> fe.setVringNum(0, Session.MAX_QUEUE_SIZE + 1)).hasMessageContaining("rejected");
        assertThatThrownBy(() -> fe.setVringNum(0, 32769)).hasMessageContaining("rejected");
        fe.setVringNum(0, Session.MAX_QUEUE_SIZE - 1);
        fe.setVringNum(0, 1);
        assertThat(ctrl.stats.failedRequests.get()).isEqualTo(2);
    }
}
