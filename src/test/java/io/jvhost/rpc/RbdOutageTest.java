package io.jvhost.rpc;

import com.fasterxml.jackson.databind.JsonNode;
import io.jvhost.bdev.BlockChannel;
import io.jvhost.bdev.BlockRequest;
import io.jvhost.bdev.CephCluster;
import io.jvhost.bdev.RbdBlockDevice;
import io.jvhost.initiator.BlkInitiator;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import static io.jvhost.rpc.RpcFixture.json;
import static io.jvhost.virtio.BlkLayout.S_OK;
import static io.jvhost.virtio.BlkLayout.T_OUT;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowableOfType;
import static org.awaitility.Awaitility.await;

/**
 * The cluster going away under a served disk. With the OSD stopped, a guest write stalls
 * (the watchdog flags the bdev), the RPC server keeps answering, and deleting another bdev of
 * the same cluster, whose close needs the OSD, returns after the bounded wait instead of hanging;
 * when the OSD is back the stalled write completes, the background close finishes, and I/O goes
 * on. With the monitor stopped, I/O to the OSD still works and registering a new cluster fails
 * with a clear error (client_mount_timeout) instead of hanging. The image content at the end is
 * exactly what was written (rbd export). Runs on the shared test cluster and restores it.
 */
@Tag("ceph")
@ExtendWith(CephCluster.class)
@Timeout(400)
class RbdOutageTest {
    @TempDir
    Path dir;
    RpcFixture f;
    RpcClient c;

    @BeforeEach
    void start() throws Exception {
        f = new RpcFixture(dir);
        c = f.client();
        CephCluster.get().createImage("outage", 8);
        CephCluster.get().createImage("outage2", 4);
    }

    @AfterEach
    void stop() throws Exception {
        CephCluster.get().script("start-mon");
        CephCluster.get().script("start-osd");
        f.close();
        CephCluster.get().removeImage("outage");
        CephCluster.get().removeImage("outage2");
    }

    JsonNode call(String method, String params) throws Exception {
        return c.call(method, params == null ? null : json(params));
    }

    @Test
    void ioStallsDuringOsdOutageAndResumesRpcStaysResponsive() throws Exception {
        String conf = CephCluster.get().confFile();
        call("bdev_rbd_register_cluster", "{\"name\":\"c\",\"config_file\":\"" + conf + "\"}");
        call("bdev_rbd_create", "{\"name\":\"R\",\"pool_name\":\"rbd\",\"rbd_name\":\"outage\",\"block_size\":512,\"cluster_name\":\"c\"}");
        call("bdev_rbd_create", "{\"name\":\"R2\",\"pool_name\":\"rbd\",\"rbd_name\":\"outage2\",\"block_size\":512,\"cluster_name\":\"c\"}");
        call("vhost_create_blk_controller", "{\"ctrlr\":\"v\",\"dev_name\":\"R\"}");
        var r = (RbdBlockDevice) f.target.bdevs().get("R");
        dirty((RbdBlockDevice) f.target.bdevs().get("R2")); // R2 holds the exclusive lock: closing it needs the OSD

        byte[] expected = new byte[8 << 20];
        Random rnd = new Random(7);
        try (BlkInitiator ini = BlkInitiator.connect(dir.resolve("v").toString(), 1, 64, 1 << 20)) {
            write(ini, rnd, expected, 0, 65536);

            CephCluster.get().script("stop-osd");
            byte[] chunk = new byte[65536];
            rnd.nextBytes(chunk);
            MemorySegment.copy(chunk, 0, ini.data(), ValueLayout.JAVA_BYTE, 0, chunk.length);
            System.arraycopy(chunk, 0, expected, 1024 * 512, chunk.length);
            CompletableFuture<Integer> stalled = CompletableFuture.supplyAsync(() -> {
                try {
                    return ini.request(0, T_OUT, 1024, chunk.length, 4096, Duration.ofSeconds(300)).status();
                } catch (Exception e) {
                    throw new IllegalStateException(e);
                }
            });
            await("watchdog flags the stalled bdev").atMost(Duration.ofSeconds(60)).until(r::stalled);
            assertThat(stalled).isNotDone();

            // The RPC server answers while I/O is stuck, and deleting a bdev whose close needs
            // the OSD comes back (bounded wait) instead of hanging it.
            assertThat(call("bdev_get_bdevs", "{\"name\":\"R\"}").get(0).get("claimed").asBoolean()).isTrue();
            assertThat(call("bdev_rbd_delete", "{\"name\":\"R2\"}").asBoolean()).isTrue();
            assertThat(f.target.bdevs().find("R2")).isEmpty();
            assertThat(call("bdev_get_bdevs", null)).hasSize(1);
            RpcException busy = catchThrowableOfType(RpcException.class, () -> call("bdev_rbd_unregister_cluster", "{\"name\":\"c\"}"));
            assertThat(busy.code()).isEqualTo(RpcException.EBUSY);

            CephCluster.get().script("start-osd");
            assertThat(stalled.get(120, TimeUnit.SECONDS)).as("the stalled write completes once the OSD is back").isEqualTo(S_OK);
            await("watchdog clears").atMost(Duration.ofSeconds(30)).until(() -> !r.stalled());
            write(ini, rnd, expected, 4096, 131072);

            // Monitor down: the OSD still serves I/O; a new connection fails with a clear error.
            CephCluster.get().script("stop-mon");
            write(ini, rnd, expected, 8192, 65536);
            RpcException noMon = catchThrowableOfType(RpcException.class,
                    () -> call("bdev_rbd_register_cluster", "{\"name\":\"c2\",\"config_file\":\"" + conf + "\"}"));
            assertThat(noMon).isNotNull();
            assertThat(noMon.code()).isEqualTo(-110);
            CephCluster.get().script("start-mon");
            write(ini, rnd, expected, 12288, 65536);
        }
        await().atMost(Duration.ofSeconds(30)).until(() -> {
            try {
                call("vhost_delete_controller", "{\"ctrlr\":\"v\"}");
                return true;
            } catch (RpcException e) {
                return false;
            }
        });
        call("bdev_rbd_delete", "{\"name\":\"R\"}");
        // R2's close finished in the background once the OSD was back: the connection is free.
        await("background close of R2 finishes").atMost(Duration.ofSeconds(120)).until(() -> {
            try {
                return call("bdev_rbd_unregister_cluster", "{\"name\":\"c\"}").asBoolean();
            } catch (RpcException e) {
                return false;
            }
        });
        assertThat(Arrays.equals(CephCluster.get().export("outage"), expected)).as("rbd export matches every write").isTrue();
    }

    private static void write(BlkInitiator ini, Random rnd, byte[] expected, long sector, int len) throws Exception {
        byte[] chunk = new byte[len];
        rnd.nextBytes(chunk);
        MemorySegment.copy(chunk, 0, ini.data(), ValueLayout.JAVA_BYTE, 0, len);
        assertThat(ini.request(0, T_OUT, sector, len, 4096, Duration.ofSeconds(120)).status()).isEqualTo(S_OK);
        System.arraycopy(chunk, 0, expected, (int) (sector * 512), len);
    }

    /** One write through a channel of our own (this thread owns it), so librbd takes the exclusive lock. */
    private static void dirty(RbdBlockDevice d) {
        try (Arena a = Arena.ofConfined()) {
            BlockChannel ch = d.openChannel();
            BlockRequest req = new BlockRequest(1);
            int[] st = {Integer.MIN_VALUE};
            req.completion((q, s) -> st[0] = s);
            req.reset(BlockRequest.Op.WRITE, 0);
            req.addBuffer(a.allocate(4096), 0, 4096);
            assertThat(ch.submit(req)).isZero();
            await().pollInSameThread().pollInterval(Duration.ofMillis(1)).atMost(Duration.ofSeconds(60)).until(() -> {
                ch.poll();
                return st[0] != Integer.MIN_VALUE;
            });
            assertThat(st[0]).isZero();
            ch.close();
        }
    }
}
