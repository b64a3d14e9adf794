package io.jvhost.initiator;

import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.jvhost.bdev.MallocBlockDevice;
import io.jvhost.rpc.Methods;
import io.jvhost.rpc.RpcException;
import io.jvhost.runtime.IdleStrategy;
import io.jvhost.vhost.VhostTarget;
import io.jvhost.virtio.VirtioFeatures;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.time.Duration;

import static io.jvhost.virtio.BlkLayout.S_OK;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeFalse;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Our initiator on packed rings against jvhost's own target, end to end: data written and read
 * back through chains that lap the ring, {@code jvhost bench}'s engine with verify on direct and
 * indirect chains, and interrupt mode, on a controller created with {@code packed_ring: true}
 * (skipped, with the target's reason, on a tree whose target refuses that parameter: the two
 * sides of packed rings were built on separate branches). A controller without it does not offer
 * VIRTIO_F_RING_PACKED, and asking for packed rings there fails with the reason.
 */
class PackedRingInitiatorTest {
    @TempDir
    Path dir;
    VhostTarget target;
    Methods methods;

    @BeforeEach
    void setUp() {
        target = new VhostTarget(dir, 1, IdleStrategy.BACKOFF);
        target.bdevs().register(new MallocBlockDevice("Ram", 16384, 512, null));
        target.bdevs().register(new MallocBlockDevice("Ram2", 16384, 512, null));
        methods = new Methods(target);
    }

    @AfterEach
    void tearDown() {
        target.close();
    }

    /** Creates {@code ctrlr} on bdev Ram with packed_ring; skips the test if jvhost refuses packed rings. */
    private String packedController(String ctrlr) {
        ObjectNode p = JsonNodeFactory.instance.objectNode();
        p.put("ctrlr", ctrlr).put("dev_name", "Ram").put("packed_ring", true).put("num_queues", 2);
        try {
            methods.call("vhost_create_blk_controller", p);
        } catch (RpcException e) {
            assumeTrue(false, "jvhost's target does not do packed rings yet (" + e.getMessage() + ")");
        }
        return dir.resolve(ctrlr).toString();
    }

    private static long offeredFeatures(String socket) throws IOException {
        try (VhostUserFrontend fe = VhostUserFrontend.connect(socket)) {
            return fe.getFeatures();
        }
    }

    @Test
    void dataWrittenThroughPackedChainsReadsBackOverManyLaps() throws Exception {
        String sock = packedController("pk");
        try (BlkInitiator ini = BlkInitiator.connect(sock, 2, 16, 1 << 20, false, VhostUserDriver.Ring.PACKED)) {
            assertThat(ini.ringLayout()).isEqualTo(VhostUserDriver.Ring.PACKED);
            assertThat(VirtioFeatures.has(ini.negotiatedFeatures(), VirtioFeatures.RING_PACKED)).isTrue();
            MemorySegment data = ini.data();
            // 5-descriptor chains (header, 3 x 4 KiB, status) on a 16-slot ring: every few requests lap it
            for (int round = 0; round < 60; round++) {
                int q = round % 2;
                for (int i = 0; i < 3 * 4096; i += 8) data.set(ValueLayout.JAVA_LONG_UNALIGNED, i, round * 1_000_003L + i);
                long sector = (round * 24L) % 16000;
                var w = ini.request(q, io.jvhost.virtio.BlkLayout.T_OUT, sector, 3 * 4096, 4096, Duration.ofSeconds(10));
                assertThat(w.status()).isEqualTo(S_OK);
                data.asSlice(0, 3 * 4096).fill((byte) 0);
                var r = ini.request(q, io.jvhost.virtio.BlkLayout.T_IN, sector, 3 * 4096, 4096, Duration.ofSeconds(10));
                assertThat(r.status()).isEqualTo(S_OK);
                for (int i = 0; i < 3 * 4096; i += 8) {
                    assertThat(data.get(ValueLayout.JAVA_LONG_UNALIGNED, i)).as("round %d offset %d", round, i).isEqualTo(round * 1_000_003L + i);
                }
            }
            assertThat(ini.packedQueue(0).inFlight()).isZero();
        }
    }

    private BenchEngine.Result bench(String sock, boolean indirect, boolean interrupts) throws Exception {
        return bench(sock, indirect, interrupts, 64);
    }

    private BenchEngine.Result bench(String sock, boolean indirect, boolean interrupts, int queueSize) throws Exception {
        BenchEngine.Config cfg = new BenchEngine.Config(sock, BenchEngine.Type.BLK, BenchEngine.Workload.RANDRW, 50, 4096, 16, 2,
                Duration.ofSeconds(1), Duration.ZERO, true, -1, queueSize, true, interrupts, false).withRing(VhostUserDriver.Ring.PACKED, indirect);
        BenchEngine e = new BenchEngine(cfg, new PrintStream(new ByteArrayOutputStream()));
        try {
            return e.run();
        } finally {
            e.close();
        }
    }

    @Test
    void benchVerifiesCleanOnPackedRings() throws Exception {
        String sock = packedController("pk");
        BenchEngine.Result r = bench(sock, false, false);
        assertThat(r.ring()).isEqualTo("packed");
        assertThat(r.ios()).as("a 64-slot ring lapped many times").isGreaterThan(1000);
        assertThat(r.errors()).isZero();
        assertThat(r.verifyErrors()).isZero();
    }

    /**
     * A packed ring of 100 entries (not a power of two; VIRTIO 1.2 2.8) between our initiator
     * and our target: the bench with verify laps it many times on both queues without an error
     * or a mismatch ({@code jvhost bench --ring packed --queue-size 100 --verify}).
     */
    @Test
    void benchVerifiesCleanOnAPackedRingOf100() throws Exception {
        String sock = packedController("pk");
        BenchEngine.Result r = bench(sock, false, false, 100);
        assertThat(r.ring()).isEqualTo("packed");
        assertThat(r.ios()).as("a 100-slot ring lapped many times").isGreaterThan(1000);
        assertThat(r.errors()).isZero();
        assertThat(r.verifyErrors()).isZero();
    }

    /** Data through 5-descriptor chains on a 13-slot packed ring: almost every request straddles the ring's end. */
    @Test
    void dataReadsBackThroughAPackedRingOf13() throws Exception {
        String sock = packedController("pk");
        try (BlkInitiator ini = BlkInitiator.connect(sock, 1, 13, 1 << 20, false, VhostUserDriver.Ring.PACKED)) {
            assertThat(target.controller("pk").session().runningQueues()).singleElement().satisfies(q -> assertThat(q.size()).isEqualTo(13));
            MemorySegment data = ini.data();
            for (int round = 0; round < 40; round++) {
                for (int i = 0; i < 3 * 4096; i += 8) data.set(ValueLayout.JAVA_LONG_UNALIGNED, i, round * 7_000_003L + i);
                long sector = (round * 24L) % 16000;
                assertThat(ini.request(0, io.jvhost.virtio.BlkLayout.T_OUT, sector, 3 * 4096, 4096, Duration.ofSeconds(10)).status()).isEqualTo(S_OK);
                data.asSlice(0, 3 * 4096).fill((byte) 0);
                assertThat(ini.request(0, io.jvhost.virtio.BlkLayout.T_IN, sector, 3 * 4096, 4096, Duration.ofSeconds(10)).status()).isEqualTo(S_OK);
                for (int i = 0; i < 3 * 4096; i += 8) {
                    assertThat(data.get(ValueLayout.JAVA_LONG_UNALIGNED, i)).as("round %d offset %d", round, i).isEqualTo(round * 7_000_003L + i);
                }
            }
            assertThat(ini.packedQueue(0).availPosition()).as("80 chains of 5 slots on 13").isEqualTo(80 * 5 % 13);
        }
    }

    @Test
    void benchVerifiesCleanOnPackedRingsWithIndirectTables() throws Exception {
        String sock = packedController("pk");
        assumeTrue(VirtioFeatures.has(offeredFeatures(sock), VirtioFeatures.RING_INDIRECT_DESC), "target offers no indirect descriptors");
        BenchEngine.Result r = bench(sock, true, false);
        assertThat(r.ring()).isEqualTo("packed-indirect");
        assertThat(r.ios()).isGreaterThan(1000);
        assertThat(r.errors()).isZero();
        assertThat(r.verifyErrors()).isZero();
    }

    @Test
    void benchInInterruptModeOnPackedRings() throws Exception {
        String sock = packedController("pk");
        BenchEngine.Result r = bench(sock, false, true);
        assertThat(r.ios()).isPositive();
        assertThat(r.errors()).isZero();
        assertThat(r.verifyErrors()).isZero();
    }

    @Test
    void aTargetWithoutPackedRingsIsRefusedWithTheReason() throws Exception {
        target.createBlkController("split", "Ram2", false, 1, null);
        String sock = dir.resolve("split").toString();
        assumeFalse(VirtioFeatures.has(offeredFeatures(sock), VirtioFeatures.RING_PACKED), "this controller offers packed rings");
        assertThatThrownBy(() -> BlkInitiator.connect(sock, 1, 64, 1 << 20, false, VhostUserDriver.Ring.PACKED))
                .isInstanceOf(IOException.class).hasMessageContaining("VIRTIO_F_RING_PACKED");
        // and split still works on the same controller afterwards
        try (BlkInitiator ini = BlkInitiator.connect(sock, 1, 64, 1 << 20, false, VhostUserDriver.Ring.SPLIT)) {
            assertThat(ini.write(0, 0, 4096)).isEqualTo(S_OK);
        }
    }
}
