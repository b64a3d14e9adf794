package io.jvhost.rpc;

import com.fasterxml.jackson.databind.JsonNode;
import io.jvhost.sys.IoUring;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static io.jvhost.rpc.RpcException.ENODEV;
import static io.jvhost.rpc.RpcException.INVALID_PARAMS;
import static io.jvhost.rpc.RpcFixture.fails;
import static io.jvhost.rpc.RpcFixture.json;
import static org.assertj.core.api.Assertions.assertThat;

/**
 * bdev_uring_create / bdev_uring_delete with SPDK 23.01's params; the engine (io_uring or
 * threads) and O_DIRECT in bdev_get_bdevs' driver_specific for uring and aio; save_config writes
 * exactly SPDK's params (module/bdev/uring/bdev_uring.c bdev_uring_write_json_config: name,
 * block_size, filename) and loads back.
 */
@Timeout(120)
class UringBdevRpcTest {
    @TempDir
    Path dir;

    private static String expectedEngine() {
        return IoUring.unavailableReason() == null ? "io_uring" : "threads";
    }

    @Test
    void createDescribeSaveLoadAndDelete() throws Exception {
        Path img = Files.write(dir.resolve("disk.img"), new byte[4 << 20]);
        JsonNode saved;
        try (RpcFixture f = new RpcFixture(dir)) {
            RpcClient c = f.client();
            assertThat(c.call("bdev_uring_create", json("{\"name\":\"U0\",\"filename\":\"" + img + "\"}")).asText()).isEqualTo("U0");
            c.call("bdev_uring_create", json("{\"name\":\"U1\",\"filename\":\"" + img + "\",\"block_size\":4096,"
                    + "\"uuid\":\"913fc008-79a7-447f-b2c4-c73543638c31\"}"));
            c.call("bdev_aio_create", json("{\"name\":\"A0\",\"filename\":\"" + img + "\"}"));
            JsonNode u0 = c.call("bdev_get_bdevs", json("{\"name\":\"U0\"}")).get(0);
            assertThat(u0.get("product_name").asText()).isEqualTo("URING bdev");
            assertThat(u0.get("block_size").asInt()).isEqualTo(512);
            assertThat(u0.get("num_blocks").asLong()).isEqualTo(8192);
            assertThat(u0.at("/driver_specific/uring/filename").asText()).isEqualTo(img.toString());
            assertThat(u0.at("/driver_specific/uring/io_engine").asText()).isEqualTo(expectedEngine());
            assertThat(u0.at("/driver_specific/uring/o_direct").asBoolean()).as("the temp dir's file system allows O_DIRECT").isTrue();
            assertThat(u0.at("/driver_specific/uring/block_device").asBoolean()).isFalse();
            JsonNode u1 = c.call("bdev_get_bdevs", json("{\"name\":\"U1\"}")).get(0);
            assertThat(u1.get("block_size").asInt()).isEqualTo(4096);
            assertThat(u1.get("uuid").asText()).isEqualTo("913fc008-79a7-447f-b2c4-c73543638c31");
            JsonNode a0 = c.call("bdev_get_bdevs", json("{\"name\":\"A0\"}")).get(0);
            assertThat(a0.get("product_name").asText()).isEqualTo("AIO disk");
            assertThat(a0.at("/driver_specific/aio/io_engine").asText()).as("aio runs on the same engine").isEqualTo(expectedEngine());

            assertThat(fails(c, "bdev_uring_create", "{\"name\":\"U2\",\"filename\":\"" + img + "\",\"block_size\":1000}", INVALID_PARAMS))
                    .hasMessageContaining("'block_size'");
            assertThat(fails(c, "bdev_uring_create", "{\"name\":\"U2\",\"filename\":\"" + img + "\",\"readonly\":true}", INVALID_PARAMS))
                    .hasMessageContaining("readonly");
            assertThat(fails(c, "bdev_uring_delete", "{\"name\":\"A0\"}", ENODEV)).hasMessageContaining("AIO disk");
            assertThat(fails(c, "bdev_aio_delete", "{\"name\":\"U0\"}", ENODEV)).hasMessageContaining("URING bdev");

            saved = ConfigClient.save(c);
            List<JsonNode> uring = new ArrayList<>();
            for (JsonNode sub : saved.get("subsystems")) {
                for (JsonNode e : sub.path("config")) if (e.get("method").asText().equals("bdev_uring_create")) uring.add(e.get("params"));
            }
            assertThat(uring).hasSize(2);
            List<String> keys = new ArrayList<>();
            uring.get(0).fieldNames().forEachRemaining(keys::add);
            assertThat(keys).as("SPDK 23.01's bdev_uring_write_json_config").containsExactly("name", "block_size", "filename");
            assertThat(uring.get(0).get("block_size").asInt()).isEqualTo(512);
            keys.clear();
            uring.get(1).fieldNames().forEachRemaining(keys::add);
            assertThat(keys).as("a given uuid is kept (later SPDK releases write it too)").containsExactly("name", "block_size", "filename", "uuid");

            assertThat(c.call("bdev_uring_delete", json("{\"name\":\"U0\"}")).asBoolean()).isTrue();
            fails(c, "bdev_uring_delete", "{\"name\":\"U0\"}", ENODEV);
        }
        Files.createDirectories(dir.resolve("second"));
        try (RpcFixture f = new RpcFixture(dir.resolve("second"))) {
            RpcClient c = f.client();
            ConfigClient.load(c, saved, "saved");
            JsonNode u0 = c.call("bdev_get_bdevs", json("{\"name\":\"U0\"}")).get(0);
            assertThat(u0.get("block_size").asInt()).isEqualTo(512);
            assertThat(u0.at("/driver_specific/uring/filename").asText()).isEqualTo(img.toString());
            JsonNode u1 = c.call("bdev_get_bdevs", json("{\"name\":\"U1\"}")).get(0);
            assertThat(u1.get("block_size").asInt()).isEqualTo(4096);
            assertThat(u1.get("uuid").asText()).isEqualTo("913fc008-79a7-447f-b2c4-c73543638c31");
        }
    }
}
