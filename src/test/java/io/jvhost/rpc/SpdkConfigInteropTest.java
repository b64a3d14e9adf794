package io.jvhost.rpc;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.jvhost.runtime.IdleStrategy;
import io.jvhost.vhost.VhostTarget;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import static io.jvhost.rpc.RpcFixture.json;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * Configs travel both ways between jvhost and SPDK v23.01.1.
 *
 * <p>SPDK → jvhost: every file in {@code src/test/resources/spdk-23.01} loads through
 * {@code serve --json} ({@link JsonConfig}) and through the RPC socket as {@code rpc.py
 * load_config} does it ({@link ConfigClient}: every method checked against
 * {@code rpc_get_methods} first). Which fixtures are real SPDK output and which are written from
 * SPDK's source is said in that folder's README (real ones are named {@code real-*.json}).
 *
 * <p>jvhost → SPDK: jvhost's save_config writes, per method, exactly the parameters SPDK 23.01's
 * own save_config writes (pinned below with the SPDK source that writes them), so SPDK's strict
 * decoders accept the file.
 */
@Timeout(120)
class SpdkConfigInteropTest {
    @TempDir
    Path dir;

    /**
     * Per method jvhost's save_config writes: SPDK 23.01.1's parameter names in the order its
     * writer emits them. Sources: module/bdev/malloc/bdev_malloc.c bdev_malloc_write_json_config,
     * module/bdev/null/bdev_null.c bdev_null_write_config_json, module/bdev/aio/bdev_aio.c
     * bdev_aio_write_json_config ({@code block_size} only when given at creation),
     * lib/vhost/vhost_blk.c vhost_blk_write_config_json, lib/vhost/vhost.c vhost_user_config_json,
     * lib/vhost/vhost_scsi.c vhost_scsi_write_config_json.
     */
    static final Map<String, List<String>> SPDK_2301_PARAMS = new LinkedHashMap<>();

    static {
        SPDK_2301_PARAMS.put("bdev_malloc_create", List.of("name", "num_blocks", "block_size", "uuid", "optimal_io_boundary"));
        SPDK_2301_PARAMS.put("bdev_null_create", List.of("name", "num_blocks", "block_size", "md_size", "dif_type", "dif_is_head_of_md", "uuid"));
        SPDK_2301_PARAMS.put("bdev_aio_create", List.of("name", "block_size", "filename", "readonly"));
        SPDK_2301_PARAMS.put("vhost_create_blk_controller", List.of("ctrlr", "dev_name", "cpumask", "readonly", "transport"));
        SPDK_2301_PARAMS.put("vhost_controller_set_coalescing", List.of("ctrlr", "delay_base_us", "iops_threshold"));
        SPDK_2301_PARAMS.put("vhost_create_scsi_controller", List.of("ctrlr", "cpumask"));
        SPDK_2301_PARAMS.put("vhost_scsi_controller_add_target", List.of("ctrlr", "scsi_target_num", "bdev_name"));
    }

    static List<Path> fixtures() throws IOException, URISyntaxException {
        Path d = Path.of(SpdkConfigInteropTest.class.getResource("/spdk-23.01").toURI());
        try (Stream<Path> s = Files.list(d)) {
            return s.filter(p -> p.toString().endsWith(".json")).sorted().toList();
        }
    }

    /** The fixture with each aio bdev's file replaced by a fresh 4 MiB file in the temp dir. */
    JsonNode withLocalFiles(Path fixture) throws IOException {
        JsonNode root = Json.MAPPER.readTree(Files.readString(fixture));
        int n = 0;
        for (JsonNode sub : root.get("subsystems")) {
            if (!sub.path("config").isArray()) continue;
            for (JsonNode e : sub.get("config")) {
                if (!e.path("method").asText().equals("bdev_aio_create")) continue;
                Path img = dir.resolve("aio" + n++ + ".img");
                Files.write(img, new byte[4 << 20]);
                ((ObjectNode) e.get("params")).put("filename", img.toString());
            }
        }
        return root;
    }

    static int entries(JsonNode root) {
        int n = 0;
        for (JsonNode sub : root.get("subsystems")) n += sub.path("config").size();
        return n;
    }

    @Test
    void everySpdkSavedConfigLoadsThroughServeJsonAndThroughRpcLikeRpcPy() throws Exception {
        List<Path> files = fixtures();
        // real-*: saved by a real SPDK v23.01.1 vhost app; the others: written from SPDK's source.
        assertThat(files).extracting(p -> p.getFileName().toString())
                .contains("real-vhost-empty.json", "real-vhost-blk-scsi.json", "vhost-empty.json", "vhost-blk-scsi.json");
        for (Path fixture : files) {
            JsonNode cfg = withLocalFiles(fixture);
            Path sockets = Files.createTempDirectory(dir, "serve");
            try (VhostTarget t = new VhostTarget(sockets, 2, IdleStrategy.BACKOFF)) {
                assertThat(JsonConfig.apply(fixture.toString(), cfg, new Methods(t))).as(fixture.toString()).isEqualTo(entries(cfg));
            }
            Path rpcDir = Files.createTempDirectory(dir, "rpc");
            try (RpcFixture f = new RpcFixture(rpcDir)) {
                RpcClient c = f.client();
                assertThat(ConfigClient.load(c, cfg, fixture.toString())).as(fixture.toString()).isEqualTo(entries(cfg));
                // What it built is what the file says, so saving again gives SPDK's own entries.
                assertSavedAgainMatches(cfg, ConfigClient.save(c));
            }
        }
    }

    /** Every entry of {@code spdk} that jvhost saves comes back from jvhost's save_config unchanged. */
    static void assertSavedAgainMatches(JsonNode spdk, JsonNode jvhost) {
        List<JsonNode> expected = new ArrayList<>();
        for (JsonNode sub : spdk.get("subsystems")) {
            for (JsonNode e : sub.path("config")) if (SPDK_2301_PARAMS.containsKey(e.get("method").asText())) expected.add(e);
        }
        List<JsonNode> saved = new ArrayList<>();
        for (JsonNode sub : jvhost.get("subsystems")) sub.path("config").forEach(saved::add);
        assertThat(saved).containsExactlyInAnyOrderElementsOf(expected);
    }

    @Test
    void spdksConfigBuildsWhatItSays() throws Exception {
        JsonNode cfg = withLocalFiles(Path.of(getClass().getResource("/spdk-23.01/vhost-blk-scsi.json").toURI()));
        try (RpcFixture f = new RpcFixture(dir)) {
            RpcClient c = f.client();
            ConfigClient.load(c, cfg, "vhost-blk-scsi.json");
            assertThat(c.call("bdev_get_bdevs", null)).extracting(b -> b.get("name").asText())
                    .containsExactly("Malloc0", "Malloc1", "Null0", "Aio0", "Aio1");
            JsonNode malloc0 = c.call("bdev_get_bdevs", json("{\"name\":\"Malloc0\"}")).get(0);
            assertThat(malloc0.get("uuid").asText()).isEqualTo("2b6d1e8c-4c1a-4f7a-9a59-0c6f1f7f3a10");
            assertThat(c.call("bdev_get_bdevs", json("{\"name\":\"Aio1\"}")).get(0).get("block_size").asInt()).isEqualTo(4096);
            JsonNode v0 = c.call("vhost_get_controllers", json("{\"name\":\"vhost.0\"}")).get(0);
            assertThat(v0.get("delay_base_us").asInt()).isEqualTo(50);
            assertThat(v0.get("iops_threshold").asInt()).isEqualTo(100000);
            assertThat(v0.get("cpumask").asText()).isEqualTo("0x1");
            JsonNode v1 = c.call("vhost_get_controllers", json("{\"name\":\"vhost.1\"}")).get(0);
            assertThat(v1.at("/backend_specific/block/readonly").asBoolean()).isTrue();
            assertThat(v1.get("cpumask").asText()).isEqualTo("0x2");
            JsonNode scsi = c.call("vhost_get_controllers", json("{\"name\":\"vhost.scsi\"}")).get(0);
            assertThat(scsi.at("/backend_specific/scsi")).extracting(n -> n.get("scsi_dev_num").asInt()).containsExactly(0, 3);
            assertThat(c.call("framework_get_scheduler", null).get("scheduler_name").asText()).isEqualTo("static");
        }
    }

    @Test
    void realSpdkConfigBuildsWhatItSays() throws Exception {
        JsonNode cfg = withLocalFiles(Path.of(getClass().getResource("/spdk-23.01/real-vhost-blk-scsi.json").toURI()));
        try (RpcFixture f = new RpcFixture(dir)) {
            RpcClient c = f.client();
            ConfigClient.load(c, cfg, "real-vhost-blk-scsi.json");
            assertThat(c.call("bdev_get_bdevs", null)).extracting(b -> b.get("name").asText()).containsExactly("Malloc0", "Null0", "AIO0");
            assertThat(c.call("bdev_get_bdevs", json("{\"name\":\"Null0\"}")).get(0).get("uuid").asText()).isEqualTo("6d3acb03-1c1f-4751-90c4-5ceae99140a5");
            JsonNode v0 = c.call("vhost_get_controllers", json("{\"name\":\"vhost.0\"}")).get(0);
            assertThat(v0.get("delay_base_us").asInt()).isEqualTo(20);
            assertThat(v0.get("iops_threshold").asInt()).isEqualTo(70000);
            JsonNode scsi = c.call("vhost_get_controllers", json("{\"name\":\"scsi0\"}")).get(0);
            assertThat(scsi.at("/backend_specific/scsi")).extracting(n -> n.at("/luns/0/bdev_name").asText()).containsExactly("Null0", "AIO0");
        }
    }

    @Test
    void jvhostWritesExactlySpdksParametersForEachMethod() throws Exception {
        Path img = Files.write(dir.resolve("disk.img"), new byte[4 << 20]);
        JsonNode saved;
        try (RpcFixture f = new RpcFixture(dir)) {
            RpcClient c = f.client();
            c.call("bdev_malloc_create", json("{\"name\":\"M\",\"num_blocks\":2048,\"optimal_io_boundary\":0}"));
            c.call("bdev_malloc_create", json("{\"name\":\"S\",\"num_blocks\":64}"));
            c.call("bdev_null_create", json("{\"name\":\"N\",\"num_blocks\":1024,\"block_size\":4096}"));
            // uuid given: SPDK 23.01's bdev_aio_create has no uuid parameter, so it is not saved.
            c.call("bdev_aio_create", json("{\"name\":\"A0\",\"filename\":\"" + img + "\",\"uuid\":\"913fc008-79a7-447f-b2c4-c73543638c31\"}"));
            c.call("bdev_aio_create", json("{\"name\":\"A1\",\"filename\":\"" + img + "\",\"block_size\":4096,\"readonly\":true}"));
            c.call("vhost_create_blk_controller", json("{\"ctrlr\":\"b0\",\"dev_name\":\"M\",\"cpumask\":\"0x2\"}"));
            c.call("vhost_create_blk_controller", json("{\"ctrlr\":\"b1\",\"dev_name\":\"A1\",\"readonly\":true}"));
            c.call("vhost_controller_set_coalescing", json("{\"ctrlr\":\"b0\",\"delay_base_us\":20,\"iops_threshold\":70000}"));
            // A threshold without a delay means nothing: SPDK does not save it, nor does jvhost.
            c.call("vhost_controller_set_coalescing", json("{\"ctrlr\":\"b1\",\"delay_base_us\":0,\"iops_threshold\":70000}"));
            c.call("vhost_create_scsi_controller", json("{\"ctrlr\":\"s0\"}"));
            c.call("vhost_scsi_controller_add_target", json("{\"ctrlr\":\"s0\",\"scsi_target_num\":2,\"bdev_name\":\"S\"}"));
            saved = ConfigClient.save(c);
        }
        Map<String, Integer> seen = new LinkedHashMap<>();
        for (JsonNode sub : saved.get("subsystems")) {
            for (JsonNode e : sub.path("config")) {
                String method = e.get("method").asText();
                assertThat(SPDK_2301_PARAMS).as("jvhost saves %s, which SPDK 23.01 never writes", method).containsKey(method);
                List<String> keys = new ArrayList<>();
                e.get("params").fieldNames().forEachRemaining(keys::add);
                List<String> expected = new ArrayList<>(SPDK_2301_PARAMS.get(method));
                if (method.equals("bdev_aio_create") && !e.get("params").has("block_size")) expected.remove("block_size");
                assertThat(keys).as("%s", e).containsExactlyElementsOf(expected);
                seen.merge(method, 1, Integer::sum);
            }
        }
        assertThat(seen).containsExactlyInAnyOrderEntriesOf(Map.of("bdev_malloc_create", 2, "bdev_null_create", 1, "bdev_aio_create", 2,
                "vhost_create_blk_controller", 2, "vhost_controller_set_coalescing", 1, "vhost_create_scsi_controller", 1,
                "vhost_scsi_controller_add_target", 1));
        JsonNode bdev = saved.at("/subsystems/0/config");
        assertThat(bdev.get(0)).isEqualTo(json("""
                {"method":"bdev_malloc_create","params":{"name":"M","num_blocks":2048,"block_size":512,
                 "uuid":"%s","optimal_io_boundary":0}}""".formatted(bdev.get(0).at("/params/uuid").asText())));
        assertThat(bdev.get(3)).isEqualTo(json("{\"method\":\"bdev_aio_create\",\"params\":{\"name\":\"A0\",\"filename\":\"" + img + "\",\"readonly\":false}}"));
        assertThat(bdev.get(4)).isEqualTo(json("{\"method\":\"bdev_aio_create\",\"params\":{\"name\":\"A1\",\"block_size\":4096,\"filename\":\"" + img
                + "\",\"readonly\":true}}"));
        assertThat(saved.at("/subsystems/1/config/0")).isEqualTo(json("""
                {"method":"vhost_create_blk_controller","params":{"ctrlr":"b0","dev_name":"M","cpumask":"2","readonly":false,"transport":"vhost_user_blk"}}"""));
    }

    @Test
    void aConfigNeedingAnSpdkOnlyMethodFailsBeforeAnythingIsCreatedAndSaysWhy() throws Exception {
        JsonNode cfg = json("""
                {"subsystems":[{"subsystem":"bdev","config":[
                  {"method":"bdev_malloc_create","params":{"name":"M","num_blocks":64,"block_size":512}},
                  {"method":"bdev_nvme_attach_controller","params":{"name":"Nvme0","trtype":"PCIe","traddr":"0000:00:04.0"}}]},
                 {"subsystem":"nbd","config":[{"method":"nbd_start_disk","params":{"nbd_device":"/dev/nbd0","bdev_name":"M"}}]}]}""");
        try (RpcFixture f = new RpcFixture(dir)) {
            RpcClient c = f.client();
            assertThatThrownBy(() -> ConfigClient.load(c, cfg, "nvme.json")).hasMessageContaining("bdev_nvme_attach_controller");
            assertThat(c.call("bdev_get_bdevs", null)).isEmpty();
            RpcException e = RpcFixture.fails(c, "bdev_nvme_attach_controller", "{\"name\":\"Nvme0\"}", RpcException.METHOD_NOT_FOUND);
            assertThat(e).hasMessageContaining("jvhost does not implement").hasMessageContaining("malloc, null, aio and uring");
            assertThat(RpcFixture.fails(c, "nbd_start_disk", "{}", RpcException.METHOD_NOT_FOUND)).hasMessageContaining("NBD");
            // A method nobody knows gets the plain answer.
            assertThat(RpcFixture.fails(c, "frobnicate", null, RpcException.METHOD_NOT_FOUND)).hasMessage("Method not found: frobnicate");
        }
        // serve --json names the entry and the reason.
        try (VhostTarget t = new VhostTarget(dir, 1, IdleStrategy.BACKOFF)) {
            assertThatThrownBy(() -> JsonConfig.apply("nvme.json", cfg, new Methods(t)))
                    .hasMessageContaining("config[1]").hasMessageContaining("bdev_nvme_attach_controller").hasMessageContaining("malloc, null, aio and uring");
        }
    }

    @Test
    void settingsSpdkWritesAreAcceptedButRefusedWhenIgnoringThemWouldBeWrong() throws Exception {
        try (RpcFixture f = new RpcFixture(dir)) {
            RpcClient c = f.client();
            c.call("bdev_null_create", json("{\"name\":\"N\",\"num_blocks\":64}"));
            // QoS "off" is what jvhost does; a real limit would be silently exceeded: refused.
            assertThat(c.call("bdev_set_qos_limit", json("{\"name\":\"N\",\"rw_ios_per_sec\":0}")).asBoolean()).isTrue();
            assertThat(RpcFixture.fails(c, "bdev_set_qos_limit", "{\"name\":\"N\",\"rw_ios_per_sec\":10000,\"w_mbytes_per_sec\":5}",
                    RpcException.INVALID_PARAMS)).hasMessageContaining("rw_ios_per_sec, w_mbytes_per_sec").hasMessageContaining("not be enforced");
            RpcFixture.fails(c, "bdev_set_qos_limit", "{\"name\":\"X\"}", RpcException.ENODEV);
            RpcFixture.fails(c, "bdev_set_qos_limit", "{\"name\":\"N\",\"rw_ios_per_sec\":-1}", RpcException.INVALID_PARAMS);
            for (String m : FrameworkRpc.IGNORED_SPDK_SETTINGS) assertThat(c.call(m, json("{\"anything\":1}")).asBoolean()).as(m).isTrue();
        }
    }
}
