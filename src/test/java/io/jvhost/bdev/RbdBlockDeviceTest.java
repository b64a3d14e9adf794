package io.jvhost.bdev;

import io.jvhost.sys.NativeException;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.management.ManagementFactory;
import java.time.Duration;
import java.util.Arrays;
import java.util.Map;
import java.util.Random;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

/**
 * The RBD bdev and its librbd binding against a real Ceph cluster: scatter-gather writes land
 * where they should (checked through {@code rbd export}, librbd's own reader), read back
 * through readv, survive flush; discard and write-zeroes give zeros; resize changes the image;
 * a missing image or pool fails cleanly; the submitting thread allocates nothing per request.
 */
@Tag("ceph")
@ExtendWith(CephCluster.class)
class RbdBlockDeviceTest {
    private static RbdCluster cluster;
    private static final Arena arena = Arena.ofShared();

    @BeforeAll
    static void connect() {
        cluster = RbdCluster.connect("test", null, null, CephCluster.get().confFile(), null);
    }

    @AfterAll
    static void disconnect() {
        if (cluster != null) cluster.shutdown();
    }

    /** Submits on this thread (the channel's owner) and polls until the completion arrives; returns the status. */
    private static int io(BlockChannel ch, BlockRequest r) {
        int[] status = {Integer.MIN_VALUE};
        r.completion((req, st) -> status[0] = st);
        assertThat(ch.submit(r)).isZero();
        await().pollInSameThread().pollInterval(Duration.ofMillis(1)).atMost(Duration.ofSeconds(60)).until(() -> {
            ch.poll();
            return status[0] != Integer.MIN_VALUE;
        });
        return status[0];
    }

    private static BlockRequest req(BlockRequest.Op op, long offset, MemorySegment... bufs) {
        BlockRequest r = new BlockRequest(8);
        r.reset(op, offset);
        for (MemorySegment b : bufs) r.addBuffer(b, 0, b.byteSize());
        return r;
    }

    private static MemorySegment random(int len, long seed) {
        byte[] b = new byte[len];
        new Random(seed).nextBytes(b);
        MemorySegment s = arena.allocate(len, 4096);
        MemorySegment.copy(b, 0, s, ValueLayout.JAVA_BYTE, 0, len);
        return s;
    }

    @Test
    void scatterGatherRoundTripMatchesRbdExport() throws Exception {
        CephCluster.get().createImage("rt", 16);
        try (RbdBlockDevice d = RbdBlockDevice.open("R0", "rbd", "rt", 512, null, cluster, null, null)) {
            assertThat(d.sizeBytes()).isEqualTo(16L << 20);
            BlockChannel ch = d.openChannel();
            MemorySegment a = random(4096, 1), b = random(512, 2), c = random(8192, 3);
            long off = 3L << 20;
            assertThat(io(ch, req(BlockRequest.Op.WRITE, off, a, b, c))).isZero();
            assertThat(io(ch, req(BlockRequest.Op.FLUSH, 0))).isZero();
            MemorySegment back1 = arena.allocate(512), back2 = arena.allocate(12288);
            assertThat(io(ch, req(BlockRequest.Op.READ, off, back1, back2))).isZero();
            byte[] expected = concat(a, b, c);
            assertThat(concat(back1, back2)).isEqualTo(expected);
            ch.close();
            d.close();
            byte[] img = CephCluster.get().export("rt");
            assertThat(Arrays.copyOfRange(img, (int) off, (int) off + expected.length)).isEqualTo(expected);
            assertThat(Arrays.copyOfRange(img, 0, (int) off)).containsOnly(0);
        } finally {
            CephCluster.get().removeImage("rt");
        }
    }

    @Test
    void discardAndWriteZeroesGiveZeros() throws Exception {
        CephCluster.get().createImage("z", 16);
        try (RbdBlockDevice d = RbdBlockDevice.open("R1", "rbd", "z", 4096, null, cluster, null, null)) {
            BlockChannel ch = d.openChannel();
            MemorySegment data = random(1 << 20, 7);
            for (long off = 0; off < (16L << 20); off += data.byteSize()) assertThat(io(ch, req(BlockRequest.Op.WRITE, off, data))).isZero();
            // write-zeroes an unaligned-to-object range; discard one whole 4 MiB object
            BlockRequest wz = new BlockRequest(1);
            wz.reset(BlockRequest.Op.WRITE_ZEROES, 8192);
            wz.length = 65536;
            assertThat(io(ch, wz)).isZero();
            BlockRequest un = new BlockRequest(1);
            un.reset(BlockRequest.Op.UNMAP, 4L << 20);
            un.length = 4L << 20;
            assertThat(io(ch, un)).isZero();
            MemorySegment back = arena.allocate(1 << 20);
            assertThat(io(ch, req(BlockRequest.Op.READ, 0, back))).isZero();
            byte[] got = back.toArray(ValueLayout.JAVA_BYTE), want = data.toArray(ValueLayout.JAVA_BYTE);
            Arrays.fill(want, 8192, 8192 + 65536, (byte) 0);
            assertThat(got).isEqualTo(want);
            assertThat(io(ch, req(BlockRequest.Op.READ, 4L << 20, back))).isZero();
            assertThat(back.toArray(ValueLayout.JAVA_BYTE)).containsOnly(0);
            ch.close();
        } finally {
            CephCluster.get().removeImage("z");
        }
    }

    @Test
    void resizeGrowsTheImage() throws Exception {
        CephCluster.get().createImage("rs", 8);
        try (RbdBlockDevice d = RbdBlockDevice.open("R2", "rbd", "rs", 512, null, cluster, null, null)) {
            d.resizeImage(24L << 20);
            assertThat(d.imageSize()).isEqualTo(24L << 20);
            assertThat(CephCluster.get().tool("rbd", "info", "--format", "json", "rbd/rs")).contains("\"size\":25165824");
        } finally {
            CephCluster.get().removeImage("rs");
        }
    }

    @Test
    void missingImageOrPoolFailsCleanly() {
        assertThatThrownBy(() -> RbdBlockDevice.open("R3", "rbd", "no-such-image", 512, null, cluster, null, null))
                .isInstanceOf(NativeException.class).hasMessageContaining("rbd_open(no-such-image)")
                .satisfies(e -> assertThat(((NativeException) e).errno()).isEqualTo(2));
        assertThatThrownBy(() -> RbdBlockDevice.open("R3", "no-such-pool", "x", 512, null, cluster, null, null))
                .isInstanceOf(NativeException.class).hasMessageContaining("no-such-pool");
        assertThat(cluster.users()).isZero();
    }

    @Test
    void privateConnectionFromConfigMap() throws Exception {
        CephCluster.get().createImage("p", 4);
        try (RbdBlockDevice d = RbdBlockDevice.open("R4", "rbd", "p", 512, null, null, null,
                Map.of("mon_host", CephCluster.get().monHost(), "auth_client_required", "none"))) {
            assertThat(d.privateCluster()).isTrue();
            BlockChannel ch = d.openChannel();
            MemorySegment a = random(4096, 9);
            assertThat(io(ch, req(BlockRequest.Op.WRITE, 0, a))).isZero();
            ch.close();
        } finally {
            CephCluster.get().removeImage("p");
        }
    }

    @Test
    void submittingThreadAllocatesNothingPerRequest() throws Exception {
        CephCluster.get().createImage("alloc", 8);
        try (RbdBlockDevice d = RbdBlockDevice.open("R5", "rbd", "alloc", 512, null, cluster, null, null)) {
            BlockChannel ch = d.openChannel();
            MemorySegment buf = random(4096, 11);
            BlockRequest[] reqs = new BlockRequest[16];
            int[] done = {0};
            BlockRequest.Completion c = (r, st) -> {
                if (st != 0) throw new AssertionError("status " + st);
                done[0]++;
            };
            for (int i = 0; i < reqs.length; i++) {
                reqs[i] = new BlockRequest(4);
                reqs[i].completion(c);
            }
            var mx = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
            long tid = Thread.currentThread().threadId();
            long before = 0;
            int rounds = 400;
            for (int round = 0; round < rounds; round++) {
                if (round == rounds / 2) before = mx.getThreadAllocatedBytes(tid);
                done[0] = 0;
                for (int i = 0; i < reqs.length; i++) {
                    reqs[i].reset((i & 1) == 0 ? BlockRequest.Op.WRITE : BlockRequest.Op.READ, 4096L * i);
                    reqs[i].addBuffer(buf, 0, 4096);
                    if (ch.submit(reqs[i]) != 0) throw new AssertionError("submit refused");
                }
                while (done[0] < reqs.length) ch.poll();
            }
            long perRequest = (mx.getThreadAllocatedBytes(tid) - before) / (rounds / 2L * reqs.length);
            assertThat(perRequest).as("bytes allocated per request on the submitting thread").isZero();
            ch.close();
        } finally {
            CephCluster.get().removeImage("alloc");
        }
    }

    private static byte[] concat(MemorySegment... segs) {
        int n = 0;
        for (MemorySegment s : segs) n += (int) s.byteSize();
        byte[] out = new byte[n];
        int p = 0;
        for (MemorySegment s : segs) {
            MemorySegment.copy(s, ValueLayout.JAVA_BYTE, 0, out, p, (int) s.byteSize());
            p += (int) s.byteSize();
        }
        return out;
    }
}
