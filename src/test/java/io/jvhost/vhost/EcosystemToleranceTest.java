package io.jvhost.vhost;

import io.jvhost.bdev.MallocBlockDevice;
import io.jvhost.initiator.BlkInitiator;
import io.jvhost.initiator.VhostUserFrontend;
import io.jvhost.runtime.IdleStrategy;
import io.jvhost.sys.EventFd;
import io.jvhost.sys.Fd;
import io.jvhost.sys.UnixSocket;
import io.jvhost.virtio.VirtioFeatures;
import io.jvhost.vhostuser.VhostUserProtocol;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.time.Duration;

import static io.jvhost.virtio.BlkLayout.S_OK;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;

/**
 * The session's "liberal where the ecosystem is" decisions (README, Compatibility): each request
 * that DPDK's vhost library and libvhost-user both accept is accepted and counted, and each check
 * kept for safety still refuses. One test per decision.
 */
class EcosystemToleranceTest {
    static final Duration T = Duration.ofSeconds(10);
    @TempDir
    Path dir;
    VhostTarget target;
    Controller ctrl;

    @BeforeEach
    void setUp() {
        target = new VhostTarget(dir, 1, IdleStrategy.BACKOFF);
        target.bdevs().register(new MallocBlockDevice("Malloc0", 4096, 512, null));
        ctrl = target.createBlkController("blk", "Malloc0", false, 2, null);
    }

    @AfterEach
    void tearDown() {
        target.close();
    }

    private String sock() {
        return dir.resolve("blk").toString();
    }

    private long tolerated() {
        return ctrl.stats.toleratedDeviations.get();
    }

    @Test
    void needReplyIsAnsweredEvenWithoutReplyAckNegotiated() {
        assertTimeoutPreemptively(T, () -> {
            try (VhostUserFrontend fe = VhostUserFrontend.connect(sock())) {
                fe.getFeatures();
                fe.useReplyAck(true); // NEED_REPLY from now on, though REPLY_ACK was never negotiated
                fe.setOwner();
                fe.setFeatures(VirtioFeatures.bit(VirtioFeatures.VERSION_1));
                assertThatThrownBy(() -> fe.setVringNum(0, 100)).as("a NACK still arrives as one").hasMessageContaining("rejected");
                assertThat(fe.getQueueNum()).as("the stream stays in step").isEqualTo(2);
                assertThat(tolerated()).isPositive();
            }
        });
    }

    @Test
    void needReplyOnRequestsWithTheirOwnReplyGetsExactlyOneReply() {
        assertTimeoutPreemptively(T, () -> {
            try (BlkInitiator ini = BlkInitiator.connect(sock(), 1, 64, 1 << 20)) {
                VhostUserFrontend fe = ini.frontend();
                fe.needReplyOnEveryMessage(true); // rust-vmm's vhost crate
                long f = fe.getFeatures();
                assertThat(fe.getQueueNum()).isEqualTo(2);
                assertThat(fe.getConfig(8)).hasSize(8);
                assertThat(fe.getFeatures()).isEqualTo(f);
                // a second reply (an ack after the real one) would have shown up as a mismatch above
                assertThat(tolerated()).isZero();
            }
        });
    }

    @Test
    void vringEnableWithoutProtocolFeaturesIsApplied() {
        assertTimeoutPreemptively(T, () -> {
            try (VhostUserFrontend fe = VhostUserFrontend.connect(sock())) {
                fe.getFeatures();
                fe.setFeatures(VirtioFeatures.bit(VirtioFeatures.VERSION_1)); // no VHOST_USER_F_PROTOCOL_FEATURES
                fe.setVringEnable(0, true);
                fe.setVringEnable(1, false);
                fe.getFeatures(); // requests are handled in order: the two above are done (GET_QUEUE_NUM would count: no MQ here)
                assertThat(ctrl.stats.failedRequests.get()).isZero();
                assertThat(tolerated()).isEqualTo(2);
            }
        });
    }

    @Test
    void vringBaseWiderThan16BitsUsesItsLow16Bits() throws Exception {
        try (BlkInitiator ini = BlkInitiator.connect(sock(), 1, 64, 1 << 20)) {
            VhostUserFrontend fe = ini.frontend();
            assertThat(fe.getVringBase(0)).isZero();
            fe.setVringBase(0, 0x8_0005);
            assertThat(fe.getVringBase(0)).isEqualTo(5);
            assertThat(tolerated()).isEqualTo(1);
        }
    }

    @Test
    void ringSizeZeroIsAcceptedAndTheRingStaysStopped() throws Exception {
        try (BlkInitiator ini = BlkInitiator.connect(sock(), 1, 64, 1 << 20)) {
            VhostUserFrontend fe = ini.frontend();
            fe.getVringBase(0);
            int kick = EventFd.create(true);
            try {
                fe.setVringNum(0, 0);
                fe.setVringKick(0, kick);
                assertThat(ctrl.session().runningQueues()).isEmpty();
                fe.setVringNum(0, 64);
                assertThat(ctrl.session().runningQueues()).hasSize(1);
            } finally {
                Fd.closeQuietly(kick);
            }
            assertThatThrownBy(() -> fe.setVringNum(0, 2048)).as("beyond what we preallocate for: kept").hasMessageContaining("rejected");
            assertThatThrownBy(() -> fe.setVringNum(0, 48)).as("not a power of two: kept").hasMessageContaining("rejected");
        }
    }

    @Test
    void anEmptyMemoryTableStopsTheRingsUntilMemoryComesBack() throws Exception {
        try (BlkInitiator ini = BlkInitiator.connect(sock(), 2, 64, 1 << 20)) {
            VhostUserFrontend fe = ini.frontend();
            fe.setMemTable();
            assertThat(ctrl.session().runningQueues()).isEmpty();
            fe.setMemTable(ini.memory(), ini.regions());
            assertThat(ctrl.session().runningQueues()).hasSize(2);
            ini.data().set(ValueLayout.JAVA_LONG, 0, 0x1122334455667788L);
            assertThat(ini.write(1, 8, 512)).isEqualTo(S_OK);
            ini.data().fill((byte) 0);
            assertThat(ini.read(0, 8, 512)).isEqualTo(S_OK);
            assertThat(ini.data().get(ValueLayout.JAVA_LONG, 0)).isEqualTo(0x1122334455667788L);
        }
    }

    @Test
    void configReadAtRustVmmsOffset0x100IsTheConfigSpace() throws Exception {
        try (BlkInitiator ini = BlkInitiator.connect(sock(), 1, 64, 1 << 20)) {
            VhostUserFrontend fe = ini.frontend();
            assertThat(fe.getConfig(0x100, 60)).isEqualTo(fe.getConfig(0, 60));
            assertThat(fe.getConfig(0x100 + 8, 8)).isEqualTo(java.util.Arrays.copyOfRange(fe.getConfig(0, 60), 8, 16));
            assertThat(tolerated()).isEqualTo(2);
            // outside the config space either way: an empty reply, which the front-end refuses
            assertThatThrownBy(() -> fe.getConfig(0x100 + 250, 60)).hasMessageContaining("GET_CONFIG reply");
            assertThatThrownBy(() -> fe.getConfig(200, 60)).hasMessageContaining("GET_CONFIG reply");
        }
    }

    @Test
    void aRequestWithVersionBitsOtherThanOneIsAnswered() throws Exception {
        try (UnixSocket s = UnixSocket.connect(sock()); Arena a = Arena.ofConfined()) {
            MemorySegment b = a.allocate(12);
            b.set(ValueLayout.JAVA_INT_UNALIGNED, 0, 1); // GET_FEATURES
            b.set(ValueLayout.JAVA_INT_UNALIGNED, 4, 0x0); // version 0
            b.set(ValueLayout.JAVA_INT_UNALIGNED, 8, 0);
            s.send(b, 12);
            MemorySegment r = a.allocate(20);
            assertThat(s.recv(r, 20).bytes()).isEqualTo(20);
            assertThat(r.get(ValueLayout.JAVA_INT_UNALIGNED, 4)).as("the reply is by the spec").isEqualTo(0x5);
            assertThat(r.get(ValueLayout.JAVA_LONG_UNALIGNED, 12) & VirtioFeatures.bit(VirtioFeatures.VERSION_1)).isNotZero();
        }
        assertThat(tolerated()).isEqualTo(1);
        assertThat(ctrl.stats.protocolErrors.get()).isZero();
    }

    @Test
    void featureBitsNeverOfferedAreStillRefused() {
        assertTimeoutPreemptively(T, () -> {
            try (VhostUserFrontend fe = VhostUserFrontend.connect(sock())) {
                fe.getFeatures();
                fe.setProtocolFeatures(1L << VhostUserProtocol.PF_REPLY_ACK);
                fe.useReplyAck(true);
                // DPDK refuses both; libvhost-user takes both: not "both accept", so kept
                assertThatThrownBy(() -> fe.setProtocolFeatures((1L << VhostUserProtocol.PF_REPLY_ACK) | (1L << VhostUserProtocol.PF_HOST_NOTIFIER)))
                        .hasMessageContaining("rejected");
                assertThatThrownBy(() -> fe.setFeatures(VirtioFeatures.bit(VirtioFeatures.RING_PACKED))).hasMessageContaining("rejected");
                // device-specific bits never offered (QEMU 7.2's scsi passes its own through) are dropped
                fe.setFeatures(VirtioFeatures.bit(VirtioFeatures.VERSION_1) | (1L << 23));
                assertThat(ctrl.session().negotiatedFeatures()).isEqualTo(VirtioFeatures.bit(VirtioFeatures.VERSION_1));
                assertThat(tolerated()).isZero();
            }
        });
    }

    @Test
    void theCounterOnlyMovesForDeviations() throws Exception {
        try (BlkInitiator ini = BlkInitiator.connect(sock(), 2, 64, 1 << 20)) {
            assertThat(ini.write(0, 0, 512)).isEqualTo(S_OK);
        }
        await().atMost(T).until(() -> ctrl.session() == null || ctrl.session().runningQueues().isEmpty());
        assertThat(tolerated()).isZero();
    }
}
