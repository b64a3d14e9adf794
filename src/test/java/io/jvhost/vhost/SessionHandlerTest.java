package io.jvhost.vhost;

import io.jvhost.bdev.MallocBlockDevice;
import io.jvhost.initiator.VhostUserFrontend;
import io.jvhost.runtime.IdleStrategy;
import io.jvhost.sys.EventFd;
import io.jvhost.sys.Fd;
import io.jvhost.virtio.VirtioFeatures;
import io.jvhost.vhostuser.InflightPayload;
import io.jvhost.vhostuser.LogPayload;
import io.jvhost.vhostuser.VhostUserProtocol;
import io.jvhost.vhostuser.VringAddr;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * The session as the vhost-user handler, through a real connection: what the typed handler keeps
 * (SET_VRING_ADDR's log fields), how the migration/reconnect requests it does not offer are
 * answered (never a hang, the connection stays usable), and the gating decisions as a whole
 * session applies them.
 */
@Timeout(value = 20, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class SessionHandlerTest {
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

    private VhostUserFrontend connect() {
        return VhostUserFrontend.connect(dir.resolve("blk").toString());
    }

    private void negotiate(VhostUserFrontend fe, long protocolFeatures) throws Exception {
        fe.getFeatures();
        fe.setFeatures(VirtioFeatures.bit(VirtioFeatures.VERSION_1) | VirtioFeatures.bit(VirtioFeatures.VHOST_USER_PROTOCOL_FEATURES));
        fe.getProtocolFeatures();
        fe.setProtocolFeatures(protocolFeatures);
        fe.useReplyAck((protocolFeatures & (1L << VhostUserProtocol.PF_REPLY_ACK)) != 0);
    }

    @Test
    void vringAddrLogFlagAndLogAddressAreKeptInTheRingState() throws Exception {
        try (VhostUserFrontend fe = connect()) {
            negotiate(fe, 1L << VhostUserProtocol.PF_REPLY_ACK);
            fe.setVringAddr(new VringAddr(1, VhostUserProtocol.VRING_ADDR_F_LOG, 0x10000, 0x12000, 0x11000, 0x7654000));
            VringAddr kept = ctrl.session().vringAddr(1);
            assertThat(kept).isEqualTo(new VringAddr(1, VhostUserProtocol.VRING_ADDR_F_LOG, 0x10000, 0x12000, 0x11000, 0x7654000));
            assertThat(kept.logging()).isTrue();
            fe.resetDevice();
            assertThat(ctrl.session().vringAddr(1)).as("RESET_DEVICE forgets ring addresses, log fields included").isNull();
        }
    }

    @Test
    void dirtyLogRequestsAreRefusedAndTheConnectionGoesOn() throws Exception {
        int fd = EventFd.create(false);
        try (VhostUserFrontend fe = connect()) {
            negotiate(fe, 1L << VhostUserProtocol.PF_REPLY_ACK);
            assertThatThrownBy(() -> fe.setLogBase(new LogPayload(0x1000, 0, -1), fd, false)).hasMessageContaining("rejected");
            assertThat(fe.getFeatures()).as("still talking").isNotZero();
            assertThat(ctrl.stats.unsupportedRequests.get()).isEqualTo(1);
            assertThat(ctrl.stats.failedRequests.get()).isEqualTo(1);
        } finally {
            Fd.closeQuietly(fd);
        }
    }

    @Test
    void getInflightFdIsAnsweredWithNoAreaNotSilence() throws Exception {
        try (VhostUserFrontend fe = connect()) {
            negotiate(fe, 0);
            InflightPayload p = fe.getInflightFd(2, 128);
            assertThat(p.mmapSize()).as("QEMU reads mmap_size 0 as 'no inflight area'").isZero();
            assertThat(fe.getFeatures()).isNotZero();
            assertThat(ctrl.stats.unsupportedRequests.get()).isEqualTo(1);
        }
    }

    @Test
    void requestsGatedOnFeaturesTheFrontEndDidNotNegotiateAreServedAndCounted() throws Exception {
        try (VhostUserFrontend fe = connect()) {
            negotiate(fe, 1L << VhostUserProtocol.PF_REPLY_ACK); // no MQ, CONFIG, RESET_DEVICE, CONFIGURE_MEM_SLOTS
            assertThat(fe.getQueueNum()).as("SPDK's virtio-user asks whatever MQ says").isEqualTo(2);
            assertThat(fe.getMaxMemSlots()).isEqualTo(VhostUserProtocol.MAX_MEM_SLOTS);
            assertThat(fe.getConfig(0, 8)).hasSize(8);
            fe.resetDevice();
            assertThat(ctrl.stats.toleratedDeviations.get()).isEqualTo(4);
            assertThat(ctrl.stats.failedRequests.get()).isZero();
        }
    }

    @Test
    void aFrontEndThatNegotiatesEverythingItUsesIsNotCounted() throws Exception {
        try (VhostUserFrontend fe = connect()) {
            negotiate(fe, Session.offeredProtocolFeatures());
            fe.getQueueNum();
            fe.getMaxMemSlots();
            fe.getConfig(0, 8);
            fe.resetDevice();
            assertThat(ctrl.stats.toleratedDeviations.get()).isZero();
        }
    }
}
