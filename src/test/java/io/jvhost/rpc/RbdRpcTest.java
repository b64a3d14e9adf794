package io.jvhost.rpc;

import com.fasterxml.jackson.databind.JsonNode;
import io.jvhost.bdev.CephCluster;
import io.jvhost.bdev.RbdBlockDevice;
import io.jvhost.initiator.BlkInitiator;
import io.jvhost.runtime.IdleStrategy;
import io.jvhost.vhost.VhostTarget;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

import static io.jvhost.rpc.RpcException.EBUSY;
import static io.jvhost.rpc.RpcException.EEXIST;
import static io.jvhost.rpc.RpcException.ENODEV;
import static io.jvhost.rpc.RpcException.INVALID_PARAMS;
import static io.jvhost.rpc.RpcFixture.fails;
import static io.jvhost.rpc.RpcFixture.json;
import static io.jvhost.virtio.BlkLayout.S_OK;
import static io.jvhost.virtio.BlkLayout.T_FLUSH;
import static io.jvhost.virtio.BlkLayout.T_OUT;
import static org.assertj.core.api.Assertions.assertThat;

/**
 * SPDK's rbd methods over the RPC socket against a real Ceph cluster, and the data path end to
 * end: the in-process initiator drives a virtio-blk controller on an RBD bdev and what it wrote
 * is what {@code rbd export} (librbd's own reader) finds in the image; a saved config rebuilds
 * the cluster and the bdev in a fresh target.
 */
@Tag("ceph")
@ExtendWith(CephCluster.class)
@Timeout(300)
class RbdRpcTest {
    @TempDir
    Path dir;
    RpcFixture f;
    RpcClient c;
    final List<String> images = new ArrayList<>();

    @BeforeEach
    void start() throws Exception {
        f = new RpcFixture(dir);
        c = f.client();
    }

    @AfterEach
    void stop() throws Exception {
        f.close();
        for (String i : images) CephCluster.get().removeImage(i);
    }

    JsonNode call(String method, String params) throws Exception {
        return c.call(method, params == null ? null : json(params));
    }

    String image(String name, int mib) throws Exception {
        CephCluster.get().createImage(name, mib);
        images.add(name);
        return name;
    }

    String registerCluster() throws Exception {
        String conf = CephCluster.get().confFile();
        assertThat(call("bdev_rbd_register_cluster", "{\"name\":\"ceph1\",\"config_file\":\"" + conf + "\",\"config_param\":{\"rbd_cache\":\"true\"}}").asText())
                .isEqualTo("ceph1");
        return conf;
    }

    @Test
    void clusterRegistrationIsSharedAndReportedLikeSpdk() throws Exception {
        String conf = registerCluster();
        fails(c, "bdev_rbd_register_cluster", "{\"name\":\"ceph1\",\"config_file\":\"" + conf + "\"}", EEXIST);
        JsonNode info = call("bdev_rbd_get_clusters_info", "{\"name\":\"ceph1\"}");
        assertThat(info.get("cluster_name").asText()).isEqualTo("ceph1");
        assertThat(info.get("config_file").asText()).isEqualTo(conf);
        assertThat(info.at("/config_param/rbd_cache").asText()).isEqualTo("true");
        assertThat(info.has("user_id")).isFalse();
        assertThat(call("bdev_rbd_get_clusters_info", null)).hasSize(1);

        image("a", 8);
        image("b", 8);
        assertThat(call("bdev_rbd_create", "{\"pool_name\":\"rbd\",\"rbd_name\":\"a\",\"block_size\":512,\"cluster_name\":\"ceph1\"}").asText()).isEqualTo("Ceph0");
        assertThat(call("bdev_rbd_create", "{\"name\":\"B\",\"pool_name\":\"rbd\",\"rbd_name\":\"b\",\"block_size\":4096,\"cluster_name\":\"ceph1\"}").asText()).isEqualTo("B");
        var d0 = (RbdBlockDevice) f.target.bdevs().get("Ceph0");
        var d1 = (RbdBlockDevice) f.target.bdevs().get("B");
        assertThat(d0.cluster()).as("one connection for the bdevs naming the same cluster").isSameAs(d1.cluster());
        fails(c, "bdev_rbd_create", "{\"pool_name\":\"rbd\",\"rbd_name\":\"a\",\"block_size\":512,\"cluster_name\":\"nope\"}", ENODEV);
        fails(c, "bdev_rbd_create", "{\"pool_name\":\"rbd\",\"rbd_name\":\"a\",\"block_size\":1000,\"cluster_name\":\"ceph1\"}", INVALID_PARAMS);
        fails(c, "bdev_rbd_create", "{\"name\":\"X\",\"pool_name\":\"rbd\",\"rbd_name\":\"missing\",\"block_size\":512,\"cluster_name\":\"ceph1\"}", -2);

        JsonNode b = call("bdev_get_bdevs", "{\"name\":\"B\"}").get(0);
        assertThat(b.get("product_name").asText()).isEqualTo("Ceph Rbd Disk");
        assertThat(b.get("block_size").asInt()).isEqualTo(4096);
        assertThat(b.get("num_blocks").asLong()).isEqualTo(2048);
        assertThat(b.at("/driver_specific/rbd/pool_name").asText()).isEqualTo("rbd");
        assertThat(b.at("/driver_specific/rbd/rbd_name").asText()).isEqualTo("b");
        assertThat(b.at("/driver_specific/rbd/config_file").asText()).isEqualTo(conf);
        assertThat(b.at("/supported_io_types/unmap").asBoolean()).isTrue();
        assertThat(b.at("/supported_io_types/write_zeroes").asBoolean()).isTrue();

        // resize: never smaller; the image itself grows
        fails(c, "bdev_rbd_resize", "{\"name\":\"B\",\"new_size\":4}", INVALID_PARAMS);
        assertThat(call("bdev_rbd_resize", "{\"name\":\"B\",\"new_size\":12}").asBoolean()).isTrue();
        assertThat(call("bdev_get_bdevs", "{\"name\":\"B\"}").at("/0/num_blocks").asLong()).isEqualTo(3072);
        assertThat(CephCluster.get().tool("rbd", "info", "--format", "json", "rbd/b")).contains("\"size\":12582912");

        fails(c, "bdev_rbd_unregister_cluster", "{\"name\":\"ceph1\"}", EBUSY);
        assertThat(call("bdev_rbd_delete", "{\"name\":\"Ceph0\"}").asBoolean()).isTrue();
        assertThat(call("bdev_rbd_delete", "{\"name\":\"B\"}").asBoolean()).isTrue();
        fails(c, "bdev_rbd_delete", "{\"name\":\"B\"}", ENODEV);
        assertThat(call("bdev_rbd_unregister_cluster", "{\"name\":\"ceph1\"}").asBoolean()).isTrue();
        fails(c, "bdev_rbd_get_clusters_info", "{\"name\":\"ceph1\"}", ENODEV);
        assertThat(call("bdev_rbd_get_clusters_info", null)).isEmpty();
    }

    @Test
    void initiatorWritesThroughBlkControllerMatchRbdExport() throws Exception {
        registerCluster();
        image("blk", 16);
        call("bdev_rbd_create", "{\"name\":\"R\",\"pool_name\":\"rbd\",\"rbd_name\":\"blk\",\"block_size\":512,\"cluster_name\":\"ceph1\"}");
        call("vhost_create_blk_controller", "{\"ctrlr\":\"v\",\"dev_name\":\"R\"}");
        byte[] expected = new byte[16 << 20];
        Random rnd = new Random(42);
        try (BlkInitiator ini = BlkInitiator.connect(dir.resolve("v").toString(), 2, 128, 1 << 20)) {
            assertThat(ini.capacitySectors()).isEqualTo(32768);
            MemorySegment data = ini.data();
            byte[] chunk = new byte[256 << 10];
            for (int i = 0; i < 24; i++) {
                long sector = rnd.nextInt((16 << 20) / 512 - chunk.length / 512);
                int len = (1 + rnd.nextInt(chunk.length / 4096)) * 4096;
                rnd.nextBytes(chunk);
                MemorySegment.copy(chunk, 0, data, ValueLayout.JAVA_BYTE, 0, len);
                // segments of 4 KiB: a scatter-gather list of up to 64 guest buffers per request
                assertThat(ini.request(i % 2, T_OUT, sector, len, 4096, Duration.ofSeconds(60)).status()).isEqualTo(S_OK);
                System.arraycopy(chunk, 0, expected, (int) (sector * 512), len);
            }
            assertThat(ini.request(0, T_FLUSH, 0, 0, 4096, Duration.ofSeconds(60)).status()).isEqualTo(S_OK);
            // read back through the target too
            assertThat(ini.read(1, 0, 1 << 20)).isEqualTo(S_OK);
            assertThat(data.asSlice(0, 1 << 20).toArray(ValueLayout.JAVA_BYTE)).isEqualTo(Arrays.copyOf(expected, 1 << 20));
        }
        org.awaitility.Awaitility.await().atMost(Duration.ofSeconds(30)).until(() -> {
            try {
                call("vhost_delete_controller", "{\"ctrlr\":\"v\"}");
                return true;
            } catch (RpcException e) {
                return false;
            }
        });
        call("bdev_rbd_delete", "{\"name\":\"R\"}");
        assertThat(CephCluster.get().export("blk")).as("rbd export of what the initiator wrote").isEqualTo(expected);
        call("bdev_rbd_unregister_cluster", "{\"name\":\"ceph1\"}");
    }

    @Test
    void savedConfigRebuildsClusterAndBdev() throws Exception {
        registerCluster();
        image("cfg", 4);
        call("bdev_rbd_create", "{\"name\":\"C\",\"pool_name\":\"rbd\",\"rbd_name\":\"cfg\",\"block_size\":512,\"cluster_name\":\"ceph1\","
                + "\"uuid\":\"6f1c2d9e-1b0a-4c5e-9f3a-2b7d8e9c0a11\"}");
        JsonNode bdev = call("framework_get_config", "{\"name\":\"bdev\"}");
        List<String> methods = new ArrayList<>();
        bdev.forEach(e -> methods.add(e.get("method").asText()));
        assertThat(methods).containsExactly("bdev_rbd_register_cluster", "bdev_rbd_create");
        JsonNode create = bdev.get(1).get("params");
        assertThat(RpcMethodsTest.names(create)).containsExactly("name", "pool_name", "rbd_name", "block_size", "cluster_name", "uuid");
        assertThat(RpcMethodsTest.names(bdev.get(0).get("params"))).containsExactly("name", "config_param", "config_file");

        JsonNode saved = f.methods.saveConfig();
        call("bdev_rbd_delete", "{\"name\":\"C\"}");
        call("bdev_rbd_unregister_cluster", "{\"name\":\"ceph1\"}");
        try (VhostTarget t2 = new VhostTarget(dir.resolve("t2"), 1, IdleStrategy.BACKOFF)) {
            java.nio.file.Files.createDirectories(dir.resolve("t2"));
            Methods m2 = new Methods(t2);
            JsonConfig.apply("saved", saved, m2);
            var d = (RbdBlockDevice) t2.bdevs().get("C");
            assertThat(d.uuid().toString()).isEqualTo("6f1c2d9e-1b0a-4c5e-9f3a-2b7d8e9c0a11");
            assertThat(d.cluster().name()).isEqualTo("ceph1");
            m2.call("bdev_rbd_delete", json("{\"name\":\"C\"}"));
            m2.call("bdev_rbd_unregister_cluster", json("{\"name\":\"ceph1\"}"));
        }
    }
}
