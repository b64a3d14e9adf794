package io.jvhost.initiator;

import io.jvhost.sys.UnixSocket;
import io.jvhost.vhostuser.VhostUserConnection;
import io.jvhost.vhostuser.VhostUserMessage;
import io.jvhost.vhostuser.VhostUserPayloads;
import io.jvhost.vhostuser.VhostUserRequest;
import io.jvhost.vhostuser.VringAddr;
import io.jvhost.virtio.DriverPackedQueue;
import io.jvhost.virtio.VirtioFeatures;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.EOFException;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;

import static io.jvhost.virtio.VirtioFeatures.bit;
import static org.assertj.core.api.Assertions.assertThat;

/**
 * What our front-end tells a back-end about a packed ring, checked on the wire against a
 * recording back-end (no target): VIRTIO_F_RING_PACKED acked, SET_VRING_BASE with the packed
 * encoding (vhost-user.rst: bits 0-14 last avail index, bit 15 its wrap counter; 0x8000 for a
 * fresh ring, as QEMU and DPDK send it), SET_VRING_ADDR with the descriptor ring and the driver
 * and device event suppression areas (in the avail and used fields), laid out in our memory as
 * 2.8.10.1 wants them. And the same handshake for split rings sends base 0 and no packed bit.
 */
class PackedRingHandshakeTest {
    @TempDir
    Path dir;

    /** What a back-end offering {@code offered} (and the MQ protocol feature, two queues) was sent. */
    record Seen(long features, List<int[]> bases, List<VringAddr> addrs) {}

    private Seen handshake(long offered, VhostUserDriver.Ring ring, int queueSize) throws Exception {
        String path = dir.resolve("fake-" + ring).toString();
        List<int[]> bases = new CopyOnWriteArrayList<>();
        List<VringAddr> addrs = new CopyOnWriteArrayList<>();
        long[] features = {-1};
        try (UnixSocket.Listener l = UnixSocket.Listener.bind(path)) {
            Thread backEnd = Thread.ofPlatform().start(() -> {
                try (VhostUserConnection c = new VhostUserConnection(l.accept(), true);
                     VhostUserMessage in = new VhostUserMessage(); VhostUserMessage out = new VhostUserMessage()) {
                    while (true) {
                        c.receive(in);
                        in.closeFds();
                        switch (in.request) {
                            case GET_FEATURES -> {
                                out.putU64(0, offered);
                                c.reply(out, VhostUserRequest.GET_FEATURES, 8);
                            }
                            case GET_PROTOCOL_FEATURES -> {
                                out.putU64(0, 1L << io.jvhost.vhostuser.VhostUserProtocol.PF_MQ);
                                c.reply(out, VhostUserRequest.GET_PROTOCOL_FEATURES, 8);
                            }
                            case GET_QUEUE_NUM -> {
                                out.putU64(0, 2);
                                c.reply(out, VhostUserRequest.GET_QUEUE_NUM, 8);
                            }
                            case SET_FEATURES -> features[0] = in.u64(0);
                            case SET_VRING_BASE -> {
                                var s = VhostUserPayloads.vringState(in);
                                bases.add(new int[] {s.index(), s.num()});
                            }
                            case SET_VRING_ADDR -> addrs.add(VhostUserPayloads.vringAddr(in));
                            default -> { }
                        }
                    }
                } catch (EOFException e) {
                    // front-end closed: done
                } catch (Exception e) {
                    throw new RuntimeException(e);
                }
            });
            try (BlkInitiator ini = BlkInitiator.connect(path, 2, queueSize, 1 << 20, false, ring)) {
                if (ring == VhostUserDriver.Ring.PACKED) {
                    // the driver's rings are where SET_VRING_ADDR said
                    for (VringAddr a : addrs) {
                        long base = ini.memory().userAddr();
                        assertThat(a.descUva() - base).isBetween(0L, ini.memory().size());
                    }
                    assertThat(ini.packedQueue(1).size()).isEqualTo(queueSize);
                }
            }
            backEnd.join(TimeUnit.SECONDS.toMillis(10));
            assertThat(backEnd.isAlive()).isFalse();
        }
        return new Seen(features[0], bases, addrs);
    }

    @Test
    void packedRingsAreAnnouncedWithThePackedBaseAndTheirThreeAreas() throws Exception {
        long offered = bit(VirtioFeatures.VERSION_1) | bit(VirtioFeatures.RING_PACKED) | bit(VirtioFeatures.RING_EVENT_IDX)
                | bit(VirtioFeatures.VHOST_USER_PROTOCOL_FEATURES);
        Seen s = handshake(offered, VhostUserDriver.Ring.PACKED, 256);
        assertThat(VirtioFeatures.has(s.features(), VirtioFeatures.RING_PACKED)).as("SET_FEATURES acks RING_PACKED").isTrue();
        assertThat(s.bases()).extracting(b -> b[1]).containsExactly(0x8000, 0x8000);
        assertThat(s.addrs()).hasSize(2);
        for (VringAddr a : s.addrs()) {
            assertThat(a.descUva() % 16).as("descriptor ring 16-byte aligned").isZero();
            assertThat(a.availUva() % 4).as("driver area 4-byte aligned").isZero();
            assertThat(a.usedUva() % 4).as("device area 4-byte aligned").isZero();
            // the event areas lie outside the 256 x 16-byte ring and on different cache lines
            assertThat(a.availUva()).isGreaterThanOrEqualTo(a.descUva() + DriverPackedQueue.ringBytes(256));
            assertThat(a.usedUva()).isGreaterThanOrEqualTo(a.descUva() + DriverPackedQueue.ringBytes(256));
            assertThat(a.availUva() / 64).isNotEqualTo(a.usedUva() / 64);
        }
        assertThat(s.addrs().get(0).descUva()).isNotEqualTo(s.addrs().get(1).descUva());
    }

    @Test
    void splitRingsSendBaseZeroAndDoNotAckPacked() throws Exception {
        long offered = bit(VirtioFeatures.VERSION_1) | bit(VirtioFeatures.RING_PACKED) | bit(VirtioFeatures.VHOST_USER_PROTOCOL_FEATURES);
        Seen s = handshake(offered, VhostUserDriver.Ring.SPLIT, 256);
        assertThat(VirtioFeatures.has(s.features(), VirtioFeatures.RING_PACKED)).isFalse();
        assertThat(s.bases()).extracting(b -> b[1]).containsExactly(0, 0);
    }
}
