package io.jvhost.initiator;

import io.jvhost.bdev.MallocBlockDevice;
import io.jvhost.initiator.VhostUserDriver.Kind;
import io.jvhost.runtime.IdleStrategy;
import io.jvhost.sys.EventFd;
import io.jvhost.vhost.Controller;
import io.jvhost.vhost.VhostTarget;
import io.jvhost.virtio.VirtioFeatures;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.api.Named;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import io.jvhost.vhostuser.VhostUserRequest;
import java.util.stream.Stream;

import static io.jvhost.virtio.BlkLayout.*;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;
import static io.jvhost.vhostuser.VhostUserRequest.*;

/**
 * Each known front-end, imitated by a {@link FrontendProfile} (its message order, features,
 * sizes and memory layout), against the target: the handshake leaves every ring running with no
 * failed request and no protocol error, the blk request set (and the scsi one where the
 * front-end does scsi) works with the data landing where it belongs, and the front-end's way of
 * stopping gives back each ring's avail index.
 */
class FrontendProfilesTest {
    static final long SECTORS = 16 * 2048; // 16 MiB
    @TempDir
    Path dir;
    VhostTarget target;
    MallocBlockDevice blkDisk, scsiDisk;
    Controller blk, scsi;
    final Arena arena = Arena.ofShared();

    @BeforeEach
    void setUp() {
        target = new VhostTarget(dir, 1, IdleStrategy.BACKOFF);
        blkDisk = new MallocBlockDevice("Malloc0", SECTORS, 512, null);
        scsiDisk = new MallocBlockDevice("Malloc1", SECTORS, 512, null);
        target.bdevs().register(blkDisk);
        target.bdevs().register(scsiDisk);
        blk = target.createBlkController("blk", "Malloc0", false, 2, null);
        scsi = target.createScsiController("scsi", 2, null);
        assertThat(target.addScsiTarget("scsi", 0, "Malloc1")).isZero();
    }

    @AfterEach
    void tearDown() {
        target.close();
        arena.close();
    }

    static Stream<Arguments> blkProfiles() {
        return Stream.concat(Stream.of(FrontendProfile.JVHOST), FrontendProfile.all().stream()).map(p -> Arguments.of(Named.of(p.name(), p)));
    }

    static Stream<Arguments> scsiProfiles() {
        return Stream.concat(Stream.of(FrontendProfile.JVHOST), FrontendProfile.all().stream())
                .filter(p -> p.supports(Kind.SCSI)).map(p -> Arguments.of(Named.of(p.name(), p)));
    }

    private static void fill(MemorySegment s, long len, long seed) {
        Random r = new Random(seed);
        for (long i = 0; i < len; i++) s.set(ValueLayout.JAVA_BYTE, i, (byte) r.nextInt());
    }

    private static MemorySegment pattern(long len, long seed) {
        MemorySegment m = MemorySegment.ofArray(new byte[(int) len]);
        fill(m, len, seed);
        return m;
    }

    private void handshakeWasClean(Controller c, VhostUserDriver ini) {
        assertThat(c.stats.protocolErrors.get()).as("protocol errors").isZero();
        assertThat(c.stats.failedRequests.get()).as("failed requests").isZero();
        assertThat(c.stats.unsupportedRequests.get()).as("unsupported requests").isZero();
        // Front-ends without REPLY_ACK (SPDK) do not wait for the last messages to be handled.
        await().atMost(Duration.ofSeconds(10)).until(() -> c.session().runningQueues().size() == ini.queueCount());
        assertThat(c.session().negotiatedFeatures()).isEqualTo(ini.negotiatedFeatures());
        long offered = c.device().features() | VirtioFeatures.bit(VirtioFeatures.VHOST_USER_PROTOCOL_FEATURES); // LOG_ALL is offered too; no front-end acks it at start
        assertThat(ini.negotiatedFeatures()).as("what this front-end acks of what we offer")
                .isEqualTo(offered & ini.profile().features(ini.kind()));
        // SPDK sends SET_VRING_ENABLE with the ring size, rust-vmm reads config at 0x100: the
        // target tolerates and counts those; the others keep to the letter of the spec.
        boolean quirky = ini.profile() == FrontendProfile.SPDK_23_01_VIRTIO_USER || ini.profile() == FrontendProfile.RUST_VMM_CLOUD_HYPERVISOR;
        if (quirky) assertThat(c.stats.toleratedDeviations.get()).as("tolerated deviations").isPositive();
        else assertThat(c.stats.toleratedDeviations.get()).as("tolerated deviations").isZero();
    }

    private void stopsWithEveryRequestAccounted(VhostUserDriver ini, Controller c) throws Exception {
        int[] bases = ini.stop();
        for (int q = 0; q < ini.queueCount(); q++) {
            assertThat(bases[q]).as("ring %d stopped at the driver's avail index", q).isEqualTo(ini.queue(q).availIndex());
        }
        // GET_VRING_BASE has a reply: by then every ring has stopped
        assertThat(c.session().runningQueues()).isEmpty();
        assertThat(c.stats.protocolErrors.get()).isZero();
        assertThat(c.stats.failedRequests.get()).isZero();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("blkProfiles")
    void blkRequestSet(FrontendProfile p) throws Exception {
        try (BlkInitiator ini = BlkInitiator.connect(dir.resolve("blk").toString(), p, 2, 128, 4 << 20)) {
            handshakeWasClean(blk, ini);
            assertThat(ini.capacitySectors()).isEqualTo(SECTORS);
            long f = ini.negotiatedFeatures();

            // write on one queue, read back on the other, both sizes and both ends of the disk
            long[] sectors = {0, 7, SECTORS - 8, 4096};
            long[] sizes = {4096, 3 * 512, 4096, 1 << 20};
            for (int i = 0; i < sectors.length; i++) {
                fill(ini.data(), sizes[i], i);
                assertThat(ini.write(i % 2, sectors[i], sizes[i])).isEqualTo(S_OK);
                assertThat(blkDisk.memory().asSlice(sectors[i] * 512, sizes[i]).mismatch(pattern(sizes[i], i))).isEqualTo(-1);
                ini.data().asSlice(0, sizes[i]).fill((byte) 0);
                assertThat(ini.read(1 - i % 2, sectors[i], sizes[i])).isEqualTo(S_OK);
                assertThat(ini.data().asSlice(0, sizes[i]).mismatch(pattern(sizes[i], i))).isEqualTo(-1);
            }

            BlkInitiator.Completion id = ini.request(0, T_GET_ID, 0, ID_BYTES, ID_BYTES, Duration.ofSeconds(5));
            assertThat(id.status()).isEqualTo(S_OK);
            assertThat(new String(ini.data().asSlice(0, 7).toArray(ValueLayout.JAVA_BYTE), StandardCharsets.US_ASCII)).isEqualTo("Malloc0");

            if (VirtioFeatures.has(f, F_FLUSH)) {
                assertThat(ini.request(1, T_FLUSH, 0, 0, 512, Duration.ofSeconds(5)).status()).isEqualTo(S_OK);
            }
            MemorySegment seg = ini.data();
            if (VirtioFeatures.has(f, F_DISCARD)) {
                blkDisk.memory().asSlice(200 * 512, 16 * 512).fill((byte) 0x5a);
                seg.asSlice(0, 16).fill((byte) 0);
                seg.set(ValueLayout.JAVA_LONG_UNALIGNED, 0, 200);
                seg.set(ValueLayout.JAVA_INT_UNALIGNED, 8, 8);
                assertThat(ini.request(0, T_DISCARD, 0, 16, 16, Duration.ofSeconds(5)).status()).isEqualTo(S_OK);
                assertThat(blkDisk.memory().asSlice(200 * 512, 8 * 512).mismatch(MemorySegment.ofArray(new byte[8 * 512]))).isEqualTo(-1);
                assertThat(blkDisk.memory().get(ValueLayout.JAVA_BYTE, 208 * 512)).isEqualTo((byte) 0x5a);
            }
            if (VirtioFeatures.has(f, F_WRITE_ZEROES)) {
                seg.asSlice(0, 16).fill((byte) 0);
                seg.set(ValueLayout.JAVA_LONG_UNALIGNED, 0, 208);
                seg.set(ValueLayout.JAVA_INT_UNALIGNED, 8, 4);
                assertThat(ini.request(1, T_WRITE_ZEROES, 0, 16, 16, Duration.ofSeconds(5)).status()).isEqualTo(S_OK);
                assertThat(blkDisk.memory().asSlice(208 * 512, 4 * 512).mismatch(MemorySegment.ofArray(new byte[4 * 512]))).isEqualTo(-1);
            }
            if (p == FrontendProfile.SPDK_23_01_VIRTIO_USER) {
                // it leaves interrupts on while it polls: the target still signals its call fds
                assertThat(EventFd.drain(ini.callFd(0), arena.allocate(8, 8)) + EventFd.drain(ini.callFd(1), arena.allocate(8, 8))).isPositive();
            }
            stopsWithEveryRequestAccounted(ini, blk);
        }
    }

    static byte[] cdb(int... b) {
        byte[] r = new byte[b.length];
        for (int i = 0; i < b.length; i++) r[i] = (byte) b[i];
        return r;
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("scsiProfiles")
    void scsiRequestSet(FrontendProfile p) throws Exception {
        try (ScsiInitiator ini = ScsiInitiator.connect(dir.resolve("scsi").toString(), p, 2, 128, 1 << 20)) {
            handshakeWasClean(scsi, ini);
            ScsiInitiator.Response r = ini.command(0, 0, 0, cdb(0x12, 0, 0, 0, 96, 0), 0, 96);
            assertThat(r.response()).isZero();
            assertThat(r.status()).isZero();
            assertThat(ini.data().get(ValueLayout.JAVA_BYTE, 0) & 0x1f).as("direct-access device").isZero();

            r = ini.command(1, 0, 0, cdb(0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0), 0, 8);
            assertThat(r.status()).isZero();
            assertThat(Integer.reverseBytes(ini.data().get(ValueLayout.JAVA_INT_UNALIGNED, 0))).isEqualTo((int) SECTORS - 1);
            assertThat(Integer.reverseBytes(ini.data().get(ValueLayout.JAVA_INT_UNALIGNED, 4))).isEqualTo(512);

            fill(ini.data(), 8192, 77);
            r = ini.command(0, 0, 0, cdb(0x2a, 0, 0, 0, 0, 100, 0, 0, 16, 0), 8192, 0); // WRITE(10) 16 blocks at 100
            assertThat(r.status()).isZero();
            assertThat(scsiDisk.memory().asSlice(100 * 512, 8192).mismatch(pattern(8192, 77))).isEqualTo(-1);
            ini.data().asSlice(0, 8192).fill((byte) 0);
            r = ini.command(1, 0, 0, cdb(0x28, 0, 0, 0, 0, 100, 0, 0, 16, 0), 0, 8192); // READ(10)
            assertThat(r.status()).isZero();
            assertThat(ini.data().asSlice(0, 8192).mismatch(pattern(8192, 77))).isEqualTo(-1);
            stopsWithEveryRequestAccounted(ini, scsi);
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("blkProfiles")
    void dataLivesInTheRegionsTheProfileDescribes(FrontendProfile p) throws Exception {
        try (BlkInitiator ini = BlkInitiator.connect(dir.resolve("blk").toString(), p, 1, 64, 1 << 20)) {
            switch (p.layout()) {
                case IDENTITY -> assertThat(ini.dataGpa()).as("guest address = virtual address").isEqualTo(ini.data().address());
                case IDENTITY_PER_ALLOCATION -> {
                    assertThat(ini.regions()).hasSize(2);
                    assertThat(ini.dataGpa()).isEqualTo(ini.data().address());
                }
                case BELOW_AND_ABOVE_4G -> {
                    assertThat(ini.regions()).hasSize(2);
                    assertThat(ini.scratchGpa()).isLessThan(0x100000000L);
                    assertThat(ini.dataGpa()).isGreaterThanOrEqualTo(0x100000000L);
                }
                case ONE_REGION_AT_4G -> assertThat(ini.regions()).hasSize(1);
            }
            fill(ini.data(), 65536, 5);
            assertThat(ini.write(0, 64, 65536)).isEqualTo(S_OK);
            assertThat(blkDisk.memory().asSlice(64 * 512, 65536).mismatch(pattern(65536, 5))).isEqualTo(-1);
        }
    }

    /**
     * The qemu-7.2 profile sends what a real QEMU 7.2 sent to jvhost (debug-log capture of
     * JvhostBlkQemuTest and JvhostScsiQemuTest: realize, the Linux guest's start, shutdown) and
     * acks the same protocol features and, for our offer, the same virtio features.
     */
    @ParameterizedTest(name = "{0}")
    @org.junit.jupiter.params.provider.EnumSource(Kind.class)
    void qemuProfileSendsWhatTheCapturedQemuSent(Kind kind) throws Exception {
        int n = kind == Kind.BLK ? 2 : 4;
        List<VhostUserRequest> expect = new ArrayList<>(List.of(GET_FEATURES, GET_PROTOCOL_FEATURES, SET_PROTOCOL_FEATURES, GET_QUEUE_NUM,
                GET_MAX_MEM_SLOTS, SET_OWNER, GET_FEATURES));
        for (int q = 0; q < n; q++) expect.addAll(List.of(SET_VRING_CALL, SET_VRING_ERR));
        if (kind == Kind.BLK) {
            expect.add(GET_CONFIG);
            expect.add(SET_FEATURES);
            for (int q = 0; q < n; q++) expect.add(SET_VRING_CALL);
            expect.add(SET_FEATURES);
        } else {
            expect.addAll(List.of(RESET_DEVICE, RESET_DEVICE, SET_FEATURES));
        }
        expect.add(ADD_MEM_REG);
        expect.add(ADD_MEM_REG); // our layout has RAM above 4 GiB too: one more section
        for (int q = 0; q < n; q++) expect.addAll(List.of(SET_VRING_NUM, SET_VRING_BASE, SET_VRING_ADDR, SET_VRING_KICK));
        for (int q = 0; q < n; q++) expect.add(SET_VRING_ENABLE);
        if (kind == Kind.SCSI) for (int q = 0; q < n; q++) expect.add(SET_VRING_CALL);
        for (int q = 0; q < n; q++) expect.add(SET_VRING_ENABLE);
        for (int q = 0; q < n; q++) expect.add(GET_VRING_BASE);
        if (kind == Kind.SCSI) expect.add(RESET_DEVICE);

        VhostUserDriver ini = kind == Kind.BLK
                ? BlkInitiator.connect(dir.resolve("blk").toString(), FrontendProfile.QEMU_7_2, n, 128, 1 << 20)
                : ScsiInitiator.connect(dir.resolve("scsi").toString(), FrontendProfile.QEMU_7_2, n - 2, 128, 1 << 20);
        try (ini) {
            ini.stop();
            assertThat(ini.frontend().sent()).isEqualTo(expect);
            assertThat(ini.frontend().sentWithNeedReply()).as("flags 0x9 in the capture").containsExactly(ADD_MEM_REG, ADD_MEM_REG);
            // The capture's 0xa209 / 0xa009 plus LOG_SHMFD (1) and INFLIGHT_SHMFD (12), which jvhost
            // offers now and QEMU 7.2 acks whenever offered (its protocol feature mask has both).
            assertThat(ini.negotiatedProtocolFeatures()).isEqualTo(kind == Kind.BLK ? 0xb20bL : 0xb00bL);
            assertThat(ini.negotiatedFeatures()).isEqualTo(kind == Kind.BLK ? 0x170007e46L : 0x170000006L);
        }
    }
}
