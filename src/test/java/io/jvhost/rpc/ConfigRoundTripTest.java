package io.jvhost.rpc;

import com.fasterxml.jackson.databind.JsonNode;
import io.jvhost.runtime.IdleStrategy;
import io.jvhost.vhost.VhostTarget;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

import static io.jvhost.rpc.RpcFixture.json;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** save_config → restart → load gives the same controllers and bdevs, through RPC and through serve --json. */
@Timeout(120)
class ConfigRoundTripTest {
    @TempDir
    Path dir;

    record State(JsonNode controllers, JsonNode bdevs) {}

    /** As a client sees it (in-process trees keep Java's number types: 5L != 5). */
    static JsonNode wire(JsonNode n) throws Exception {
        return Json.MAPPER.readTree(Json.MAPPER.writeValueAsBytes(n));
    }

    static State state(RpcClient c) throws Exception {
        return new State(c.call("vhost_get_controllers", null), c.call("bdev_get_bdevs", null));
    }

    @Test
    void savedConfigLoadsBackToTheSameState() throws Exception {
        Path img = Files.write(dir.resolve("disk.img"), new byte[4 << 20]);
        Path cfg = dir.resolve("saved.json");
        State before;
        JsonNode saved;
        try (RpcFixture f = new RpcFixture(dir)) {
            RpcClient c = f.client();
            c.call("bdev_malloc_create", json("{\"num_blocks\":2048}"));
            c.call("bdev_null_create", json("{\"name\":\"Null0\",\"num_blocks\":1024,\"block_size\":4096}"));
            c.call("bdev_aio_create", json("{\"name\":\"AIO0\",\"filename\":\"" + img + "\",\"block_size\":4096}"));
            c.call("bdev_aio_create", json("{\"name\":\"AIO1\",\"filename\":\"" + img + "\",\"readonly\":true}"));
            c.call("bdev_malloc_create", json("{\"name\":\"Spare\",\"num_blocks\":64}"));
            c.call("vhost_create_blk_controller", json("{\"ctrlr\":\"vhost.0\",\"dev_name\":\"Malloc0\"}"));
            c.call("vhost_create_blk_controller", json("{\"ctrlr\":\"vhost.1\",\"dev_name\":\"AIO1\",\"cpumask\":\"0x2\",\"num_queues\":4}"));
            c.call("vhost_create_blk_controller", json("{\"ctrlr\":\"vhost.2\",\"dev_name\":\"Null0\",\"readonly\":true}"));
            c.call("vhost_create_blk_controller", json("{\"ctrlr\":\"vhost.3\",\"dev_name\":\"AIO0\",\"packed_ring\":true}"));
            c.call("vhost_controller_set_coalescing", json("{\"ctrlr\":\"vhost.1\",\"delay_base_us\":30,\"iops_threshold\":50000}"));
            c.call("vhost_create_scsi_controller", json("{\"ctrlr\":\"scsi0\",\"num_queues\":2,\"packed_ring\":true}"));
            c.call("vhost_scsi_controller_add_target", json("{\"ctrlr\":\"scsi0\",\"scsi_target_num\":3,\"bdev_name\":\"Spare\"}"));
            before = state(c);
            saved = ConfigClient.save(c);
            Files.writeString(cfg, Json.MAPPER.writerWithDefaultPrettyPrinter().writeValueAsString(saved));
        }
        assertThat(dir.resolve("vhost.0")).doesNotExist();
        assertThat(saved.get("subsystems")).extracting(s -> s.get("subsystem").asText()).containsExactly("bdev", "vhost_blk", "scsi", "vhost_scsi");
        assertThat(saved.at("/subsystems/3/config")).hasSize(2); // create + add_target
        assertThat(saved.at("/subsystems/0/config")).hasSize(5);
        assertThat(saved.at("/subsystems/1/config")).hasSize(5); // 4 controllers + 1 coalescing entry
        // packed_ring is saved where it is on (and only there), for blk and scsi alike.
        assertThat(saved.at("/subsystems/1/config").findValues("packed_ring")).hasSize(1);
        assertThat(saved.at("/subsystems/3/config/0/params/packed_ring").asBoolean()).isTrue();

        // Through RPC, as rpc.py load_config does it.
        try (RpcFixture f = new RpcFixture(dir)) {
            RpcClient c = f.client();
            assertThat(ConfigClient.load(c, saved, cfg.toString())).isEqualTo(12);
            State after = state(c);
            assertThat(after.controllers()).isEqualTo(before.controllers());
            assertThat(after.bdevs()).isEqualTo(before.bdevs());
            // And saving again gives the same file.
            assertThat(ConfigClient.save(c)).isEqualTo(saved);
        }

        // Through 'jvhost serve --json FILE' (JsonConfig).
        try (VhostTarget t = new VhostTarget(dir, 2, IdleStrategy.BACKOFF)) {
            Methods m = new Methods(t);
            assertThat(JsonConfig.load(cfg, m)).isEqualTo(12);
            assertThat(wire(m.call("vhost_get_controllers", null))).isEqualTo(before.controllers());
            assertThat(wire(m.call("bdev_get_bdevs", null))).isEqualTo(before.bdevs());
            assertThat(wire(m.saveConfig())).isEqualTo(saved);
        }
    }

    @Test
    void aConfigSavedBySpdkLoads() throws Exception {
        // The shape SPDK's own save_config writes for a vhost target: framework subsystems with
        // tuning settings jvhost ignores, SPDK-only parameters at their defaults, empty subsystems.
        Path cfg = Files.writeString(dir.resolve("spdk.json"), """
                {"subsystems": [
                  {"subsystem": "keyring", "config": []},
                  {"subsystem": "iobuf", "config": [{"method": "iobuf_set_options",
                     "params": {"small_pool_count": 8192, "large_pool_count": 1024, "small_bufsize": 8192, "large_bufsize": 135168}}]},
                  {"subsystem": "sock", "config": [{"method": "sock_set_default_impl", "params": {"impl_name": "posix"}},
                     {"method": "sock_impl_set_options", "params": {"impl_name": "posix", "recv_buf_size": 2097152}}]},
                  {"subsystem": "vmd", "config": []},
                  {"subsystem": "accel", "config": [{"method": "accel_set_options", "params": {"small_cache_size": 128}}]},
                  {"subsystem": "bdev", "config": [
                    {"method": "bdev_set_options", "params": {"bdev_io_pool_size": 65535, "bdev_io_cache_size": 256, "bdev_auto_examine": true}},
                    {"method": "bdev_nvme_set_options", "params": {"action_on_timeout": "none", "timeout_us": 0}},
                    {"method": "bdev_nvme_set_hotplug", "params": {"period_us": 100000, "enable": false}},
                    {"method": "bdev_malloc_create", "params": {"name": "Malloc0", "num_blocks": 131072, "block_size": 512,
                       "physical_block_size": 512, "uuid": "913fc008-79a7-447f-b2c4-c73543638c31", "optimal_io_boundary": 0,
                       "md_size": 0, "dif_type": 0, "dif_is_head_of_md": false, "dif_pi_format": 0}},
                    {"method": "bdev_wait_for_examine"}]},
                  {"subsystem": "scsi", "config": null},
                  {"subsystem": "vhost_scsi", "config": []},
                  {"subsystem": "vhost_blk", "config": [
                    {"method": "vhost_create_blk_controller", "params": {"ctrlr": "vhost.0", "dev_name": "Malloc0", "cpumask": "1",
                       "readonly": false, "transport": "vhost_user_blk"}}]},
                  {"subsystem": "nbd", "config": []}
                ]}""");
        try (VhostTarget t = new VhostTarget(dir, 1, IdleStrategy.BACKOFF)) {
            Methods m = new Methods(t);
            assertThat(JsonConfig.load(cfg, m)).isEqualTo(10);
            assertThat(m.call("vhost_get_controllers", null).at("/0/backend_specific/block/bdev").asText()).isEqualTo("Malloc0");
            assertThat(m.call("bdev_get_bdevs", null).at("/0/uuid").asText()).isEqualTo("913fc008-79a7-447f-b2c4-c73543638c31");
        }
    }

    @Test
    void loadConfigChecksEveryMethodFirstAndNamesTheFailingEntry() throws Exception {
        try (RpcFixture f = new RpcFixture(dir)) {
            RpcClient c = f.client();
            JsonNode unknown = json("""
                    {"subsystems":[{"subsystem":"bdev","config":[
                      {"method":"bdev_malloc_create","params":{"name":"M","num_blocks":8}},
                      {"method":"bdev_nvme_attach_controller","params":{"name":"Nvme0"}}]}]}""");
            assertThatThrownBy(() -> ConfigClient.load(c, unknown, "x.json"))
                    .hasMessageContaining("x.json: subsystem bdev, config[1]").hasMessageContaining("bdev_nvme_attach_controller");
            assertThat(c.call("bdev_get_bdevs", null)).isEmpty();

            JsonNode bad = json("""
                    {"subsystems":[{"subsystem":"bdev","config":[
                      {"method":"bdev_malloc_create","params":{"name":"M","num_blocks":8}}]},
                     {"subsystem":"vhost_blk","config":[
                      {"method":"vhost_create_blk_controller","params":{"ctrlr":"v","dev_name":"Nope"}}]}]}""");
            assertThatThrownBy(() -> ConfigClient.load(c, bad, "y.json"))
                    .hasMessageContaining("y.json: subsystem vhost_blk, config[0] (vhost_create_blk_controller)")
                    .hasMessageContaining("'Nope' does not exist").hasMessageContaining("code -19");
            assertThatThrownBy(() -> ConfigClient.load(c, json("{}"), "z.json")).hasMessageContaining("\"subsystems\" array");
        }
    }
}
