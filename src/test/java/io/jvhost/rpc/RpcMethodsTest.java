package io.jvhost.rpc;

import com.fasterxml.jackson.databind.JsonNode;
import io.jvhost.initiator.BlkInitiator;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

import static io.jvhost.rpc.RpcException.*;
import static io.jvhost.rpc.RpcFixture.fails;
import static io.jvhost.rpc.RpcFixture.json;
import static io.jvhost.virtio.BlkLayout.S_OK;
import static org.assertj.core.api.Assertions.assertThat;

/** Every method over a real socket, with good and bad parameters, and the result shapes SPDK documents. */
@Timeout(120)
class RpcMethodsTest {
    @TempDir
    Path dir;
    RpcFixture f;
    RpcClient c;

    @BeforeEach
    void start() throws Exception {
        f = new RpcFixture(dir);
        c = f.client();
    }

    @AfterEach
    void stop() throws Exception {
        f.close();
    }

    JsonNode call(String method, String params) throws Exception {
        return c.call(method, params == null ? null : json(params));
    }

    static List<String> names(JsonNode n) {
        List<String> l = new ArrayList<>();
        n.fieldNames().forEachRemaining(l::add);
        return l;
    }

    @Test
    void rpcGetMethodsListsEveryRegisteredMethodAndEachIsDocumented() throws Exception {
        JsonNode all = call("rpc_get_methods", null);
        Set<String> listed = new HashSet<>();
        all.forEach(n -> listed.add(n.asText()));
        assertThat(listed).containsAll(f.methods.names()).hasSize(f.methods.names().size());
        assertThat(call("rpc_get_methods", "{\"current\":true,\"include_aliases\":false}")).isEqualTo(all);
        assertThat(fails(c, "rpc_get_methods", "{\"current\":\"yes\"}", INVALID_PARAMS)).hasMessageContaining("'current' must be true or false");
        assertThat(fails(c, "rpc_get_methods", "{\"frob\":1}", INVALID_PARAMS)).hasMessageContaining("unknown parameter 'frob'");

        Set<String> documented = new HashSet<>();
        RpcDocs.ALL.forEach(d -> documented.add(d.method().replace("*", "")));
        Set<String> expected = new HashSet<>(f.methods.names());
        expected.removeAll(FrameworkRpc.IGNORED_SPDK_SETTINGS);
        assertThat(documented).as("RpcDocs.ALL must list exactly the registered methods").isEqualTo(expected);
    }

    @Test
    void spdkGetVersionHasSpdksShape() throws Exception {
        JsonNode v = call("spdk_get_version", null);
        assertThat(v.get("version").asText()).isEqualTo("jvhost v" + FrameworkRpc.VERSION);
        assertThat(names(v.get("fields"))).containsExactly("major", "minor", "patch", "suffix");
        assertThat(v.at("/fields/minor").isInt()).isTrue();
        assertThat(fails(c, "spdk_get_version", "{\"x\":1}", INVALID_PARAMS)).hasMessageContaining("'x'");
    }

    @Test
    void frameworkInitMethodsAreNoOpsThatSucceed() throws Exception {
        assertThat(call("framework_start_init", null).asBoolean()).isTrue();
        assertThat(call("framework_start_init", null).asBoolean()).isTrue();
        assertThat(call("framework_wait_init", null).asBoolean()).isTrue();
        fails(c, "framework_start_init", "{\"now\":true}", INVALID_PARAMS);
        // SPDK tuning settings from SPDK-saved configs are accepted and ignored.
        assertThat(call("bdev_set_options", "{\"bdev_io_pool_size\":65535,\"bdev_auto_examine\":true}").asBoolean()).isTrue();
        assertThat(call("bdev_wait_for_examine", null).asBoolean()).isTrue();
    }

    @Test
    void frameworkSubsystemsAndConfig() throws Exception {
        assertThat(call("framework_get_subsystems", null)).isEqualTo(json("""
                [{"subsystem":"bdev","depends_on":[]},{"subsystem":"vhost_blk","depends_on":["bdev"]},
                 {"subsystem":"scsi","depends_on":["bdev"]},{"subsystem":"vhost_scsi","depends_on":["scsi"]}]"""));
        assertThat(call("framework_get_config", "{\"name\":\"bdev\"}")).isEmpty();
        call("bdev_malloc_create", "{\"name\":\"M\",\"num_blocks\":64,\"block_size\":4096,\"uuid\":\"913fc008-79a7-447f-b2c4-c73543638c31\"}");
        call("vhost_create_blk_controller", "{\"ctrlr\":\"v\",\"dev_name\":\"M\",\"cpumask\":\"0x2\",\"num_queues\":4}");
        call("vhost_controller_set_coalescing", "{\"ctrlr\":\"v\",\"delay_base_us\":20,\"iops_threshold\":100000}");
        assertThat(call("framework_get_config", "{\"name\":\"bdev\"}")).isEqualTo(json("""
                [{"method":"bdev_malloc_create","params":{"name":"M","num_blocks":64,"block_size":4096,
                  "uuid":"913fc008-79a7-447f-b2c4-c73543638c31","optimal_io_boundary":0}}]"""));
        assertThat(call("framework_get_config", "{\"name\":\"vhost_blk\"}")).isEqualTo(json("""
                [{"method":"vhost_create_blk_controller","params":{"ctrlr":"v","dev_name":"M","cpumask":"2","readonly":false,
                   "transport":"vhost_user_blk","num_queues":4}},
                 {"method":"vhost_controller_set_coalescing","params":{"ctrlr":"v","delay_base_us":20,"iops_threshold":100000}}]"""));
        assertThat(fails(c, "framework_get_config", null, INVALID_PARAMS)).hasMessageContaining("'name'");
        assertThat(fails(c, "framework_get_config", "{\"name\":\"nvmf\"}", INVALID_PARAMS)).hasMessageContaining("nvmf");
        fails(c, "framework_get_subsystems", "{\"a\":1}", INVALID_PARAMS);
    }

    @Test
    void frameworkGetReactorsReportsBusyIdleAndControllers() throws Exception {
        call("bdev_null_create", "{\"name\":\"N\",\"num_blocks\":64}");
        call("vhost_create_blk_controller", "{\"ctrlr\":\"v1\",\"dev_name\":\"N\",\"cpumask\":\"[1]\"}");
        Thread.sleep(20);
        JsonNode r = call("framework_get_reactors", null);
        assertThat(r.get("tick_rate").asLong()).isEqualTo(1_000_000_000L);
        assertThat(r.get("pid").asLong()).isEqualTo(ProcessHandle.current().pid());
        assertThat(r.get("reactors")).hasSize(2);
        JsonNode r1 = r.get("reactors").get(1);
        assertThat(r1.get("lcore").asInt()).isEqualTo(1);
        assertThat(r1.get("busy").asLong() + r1.get("idle").asLong()).isPositive();
        assertThat(r1.get("in_interrupt").isBoolean()).isTrue();
        assertThat(r1.get("dead").asBoolean(true)).isFalse();
        assertThat(r1.get("errors").asLong(-1)).isZero();
        assertThat(r1.get("lw_threads")).hasSize(1);
        assertThat(r1.at("/lw_threads/0/name").asText()).isEqualTo("v1");
        assertThat(r1.at("/lw_threads/0/cpumask").asText()).isEqualTo("2");
        assertThat(r.get("reactors").get(0).get("lw_threads")).isEmpty();
        fails(c, "framework_get_reactors", "{\"a\":1}", INVALID_PARAMS);
    }

    @Test
    void mallocBdevs() throws Exception {
        assertThat(call("bdev_malloc_create", "{\"num_blocks\":128}").asText()).isEqualTo("Malloc0");
        assertThat(call("bdev_malloc_create", "{\"name\":\"M1\",\"num_blocks\":16,\"block_size\":4096}").asText()).isEqualTo("M1");
        // Parameters of SPDK-saved configs at their "off" values load.
        assertThat(call("bdev_malloc_create", """
                {"name":"M2","num_blocks":16,"block_size":512,"physical_block_size":4096,"optimal_io_boundary":0,
                 "md_size":0,"md_interleave":false,"dif_type":0,"dif_is_head_of_md":false}""").asText()).isEqualTo("M2");
        assertThat(fails(c, "bdev_malloc_create", "{\"name\":\"M1\",\"num_blocks\":16}", EEXIST)).hasMessageContaining("already exists");
        assertThat(fails(c, "bdev_malloc_create", "{\"name\":\"X\",\"num_blocks\":\"16\"}", INVALID_PARAMS)).hasMessageContaining("'num_blocks' must be an integer");
        assertThat(fails(c, "bdev_malloc_create", "{\"name\":\"X\"}", INVALID_PARAMS)).hasMessageContaining("missing required parameter 'num_blocks'");
        assertThat(fails(c, "bdev_malloc_create", "{\"name\":\"X\",\"num_blocks\":16,\"block_size\":1000}", INVALID_PARAMS)).hasMessageContaining("block_size");
        assertThat(fails(c, "bdev_malloc_create", "{\"name\":\"X\",\"num_blocks\":0}", INVALID_PARAMS)).hasMessageContaining("num_blocks");
        assertThat(fails(c, "bdev_malloc_create", "{\"name\":\"X\",\"num_blocks\":16,\"uuid\":\"nope\"}", INVALID_PARAMS)).hasMessageContaining("'uuid'");
        assertThat(fails(c, "bdev_malloc_create", "{\"name\":\"X\",\"num_blocks\":16,\"md_size\":8}", INVALID_PARAMS)).hasMessageContaining("'md_size'");
        assertThat(fails(c, "bdev_malloc_create", "{\"name\":\"X\",\"num_blocks\":16,\"dif_type\":1}", INVALID_PARAMS)).hasMessageContaining("'dif_type'");
        assertThat(fails(c, "bdev_malloc_create", "{\"name\":\"X\",\"num_blocks\":16,\"physical_block_size\":256}", INVALID_PARAMS)).hasMessageContaining("'physical_block_size'");
        assertThat(fails(c, "bdev_malloc_create", "{\"name\":7,\"num_blocks\":16}", INVALID_PARAMS)).hasMessageContaining("'name' must be a string");
        assertThat(fails(c, "bdev_malloc_create", "{\"name\":\"X\",\"num_blocks\":99999999999999999999}", INVALID_PARAMS)).hasMessageContaining("out of range");

        assertThat(call("bdev_malloc_delete", "{\"name\":\"Malloc0\"}").asBoolean()).isTrue();
        assertThat(fails(c, "bdev_malloc_delete", "{\"name\":\"Malloc0\"}", ENODEV)).hasMessageContaining("does not exist").hasMessageContaining("No such device");
        fails(c, "bdev_malloc_delete", null, INVALID_PARAMS);
        call("bdev_null_create", "{\"name\":\"N\",\"num_blocks\":8}");
        assertThat(fails(c, "bdev_malloc_delete", "{\"name\":\"N\"}", ENODEV)).hasMessageContaining("Null disk");
    }

    @Test
    void nullBdevs() throws Exception {
        assertThat(call("bdev_null_create", "{\"name\":\"N0\",\"num_blocks\":1024,\"block_size\":4096}").asText()).isEqualTo("N0");
        assertThat(fails(c, "bdev_null_create", "{\"num_blocks\":1024}", INVALID_PARAMS)).hasMessageContaining("'name'");
        assertThat(fails(c, "bdev_null_create", "{\"name\":\"N0\",\"num_blocks\":8}", EEXIST)).hasMessageContaining("File exists");
        assertThat(fails(c, "bdev_null_create", "{\"name\":\"N1\",\"num_blocks\":8,\"block_size\":-512}", INVALID_PARAMS)).hasMessageContaining("block_size");
        assertThat(call("bdev_null_delete", "{\"name\":\"N0\"}").asBoolean()).isTrue();
        fails(c, "bdev_null_delete", "{\"name\":\"N0\"}", ENODEV);
        fails(c, "bdev_null_delete", "{\"name\":\"N0\",\"force\":true}", INVALID_PARAMS);
    }

    @Test
    void aioBdevs() throws Exception {
        Path img = dir.resolve("disk.img");
        Files.write(img, new byte[1 << 20]);
        assertThat(call("bdev_aio_create", "{\"name\":\"A0\",\"filename\":\"" + img + "\"}").asText()).isEqualTo("A0");
        assertThat(call("bdev_aio_create", "{\"name\":\"A1\",\"filename\":\"" + img + "\",\"block_size\":4096,\"readonly\":true,\"fallocate\":false}").asText()).isEqualTo("A1");
        JsonNode a1 = call("bdev_get_bdevs", "{\"name\":\"A1\"}").get(0);
        assertThat(a1.get("block_size").asInt()).isEqualTo(4096);
        assertThat(a1.get("num_blocks").asLong()).isEqualTo(256);
        assertThat(a1.at("/supported_io_types/write").asBoolean()).isFalse();
        assertThat(a1.at("/driver_specific/aio/filename").asText()).isEqualTo(img.toString());
        assertThat(a1.at("/driver_specific/aio/readonly").asBoolean()).isTrue();
        assertThat(a1.at("/driver_specific/aio/block_size_override").asBoolean()).isTrue();
        assertThat(call("bdev_get_bdevs", "{\"name\":\"A0\"}").at("/0/driver_specific/aio/block_size_override").asBoolean()).isFalse();
        assertThat(fails(c, "bdev_aio_create", "{\"name\":\"A2\",\"filename\":\"" + dir.resolve("missing") + "\"}", ENOENT))
                .hasMessageContaining("missing");
        assertThat(fails(c, "bdev_aio_create", "{\"name\":\"A2\",\"filename\":\"" + img + "\",\"block_size\":1000}", INVALID_PARAMS)).hasMessageContaining("'block_size'");
        assertThat(fails(c, "bdev_aio_create", "{\"name\":\"A0\",\"filename\":\"" + img + "\"}", EEXIST)).hasMessageContaining("already exists");
        assertThat(fails(c, "bdev_aio_create", "{\"name\":\"A2\"}", INVALID_PARAMS)).hasMessageContaining("'filename'");
        assertThat(call("bdev_aio_delete", "{\"name\":\"A0\"}").asBoolean()).isTrue();
        fails(c, "bdev_aio_delete", "{\"name\":\"A0\"}", ENODEV);
    }

    @Test
    void bdevGetBdevsHasSpdksShape() throws Exception {
        call("bdev_malloc_create", "{\"name\":\"M\",\"num_blocks\":20480,\"uuid\":\"913fc008-79a7-447f-b2c4-c73543638c31\"}");
        call("bdev_null_create", "{\"name\":\"N\",\"num_blocks\":8}");
        JsonNode all = call("bdev_get_bdevs", null);
        assertThat(all).extracting(n -> n.get("name").asText()).containsExactly("M", "N");
        JsonNode m = call("bdev_get_bdevs", "{\"name\":\"M\"}");
        assertThat(m).hasSize(1);
        assertThat(m.get(0)).isEqualTo(json("""
                {"name":"M","aliases":[],"product_name":"Malloc disk","block_size":512,"num_blocks":20480,
                 "uuid":"913fc008-79a7-447f-b2c4-c73543638c31",
                 "assigned_rate_limits":{"rw_ios_per_sec":0,"rw_mbytes_per_sec":0,"r_mbytes_per_sec":0,"w_mbytes_per_sec":0},
                 "claimed":false,"zoned":false,
                 "supported_io_types":{"read":true,"write":true,"unmap":true,"flush":true,"reset":false,"nvme_admin":false,"nvme_io":false,
                   "write_zeroes":true,"zcopy":false,"compare":false,"compare_and_write":false,"abort":false,"copy":false},
                 "driver_specific":{}}"""));
        call("vhost_create_blk_controller", "{\"ctrlr\":\"v\",\"dev_name\":\"M\"}");
        JsonNode claimed = call("bdev_get_bdevs", "{\"name\":\"M\"}").get(0);
        assertThat(claimed.get("claimed").asBoolean()).isTrue();
        assertThat(claimed.get("claim_type").asText()).isEqualTo("exclusive_write");
        assertThat(fails(c, "bdev_get_bdevs", "{\"name\":\"Q\"}", ENODEV)).hasMessageContaining("'Q'");
        fails(c, "bdev_get_bdevs", "{\"name\":5}", INVALID_PARAMS);
    }

    @Test
    void aBdevUsedByAControllerCannotBeDeleted() throws Exception {
        call("bdev_malloc_create", "{\"name\":\"M\",\"num_blocks\":64}");
        call("vhost_create_blk_controller", "{\"ctrlr\":\"v\",\"dev_name\":\"M\"}");
        RpcException e = fails(c, "bdev_malloc_delete", "{\"name\":\"M\"}", EBUSY);
        assertThat(e).hasMessageContaining("in use by vhost controller v").hasMessageContaining("delete that controller")
                .hasMessageContaining("Device or resource busy");
        assertThat(call("bdev_get_bdevs", "{\"name\":\"M\"}")).hasSize(1);
        call("vhost_delete_controller", "{\"ctrlr\":\"v\"}");
        assertThat(call("bdev_malloc_delete", "{\"name\":\"M\"}").asBoolean()).isTrue();
    }

    @Test
    void blkControllers() throws Exception {
        call("bdev_malloc_create", "{\"name\":\"M0\",\"num_blocks\":64}");
        call("bdev_malloc_create", "{\"name\":\"M1\",\"num_blocks\":64}");
        assertThat(call("vhost_create_blk_controller", "{\"ctrlr\":\"vhost.0\",\"dev_name\":\"M0\"}").asBoolean()).isTrue();
        assertThat(dir.resolve("vhost.0")).exists();
        assertThat(call("vhost_create_blk_controller", """
                {"ctrlr":"vhost.1","dev_name":"M1","readonly":true,"cpumask":"0x2","packed_ring":false,"transport":"vhost_user_blk","num_queues":2}""")
                .asBoolean()).isTrue();
        assertThat(fails(c, "vhost_create_blk_controller", "{\"ctrlr\":\"vhost.0\",\"dev_name\":\"M1\"}", EEXIST)).hasMessageContaining("vhost.0");
        assertThat(fails(c, "vhost_create_blk_controller", "{\"ctrlr\":\"vhost.2\",\"dev_name\":\"M0\"}", EBUSY)).hasMessageContaining("in use");
        assertThat(fails(c, "vhost_create_blk_controller", "{\"ctrlr\":\"vhost.2\",\"dev_name\":\"Nope\"}", ENODEV)).hasMessageContaining("'Nope'");
        call("bdev_null_create", "{\"name\":\"N\",\"num_blocks\":8}");
        assertThat(fails(c, "vhost_create_blk_controller", "{\"dev_name\":\"N\"}", INVALID_PARAMS)).hasMessageContaining("'ctrlr'");
        assertThat(fails(c, "vhost_create_blk_controller", "{\"ctrlr\":\"x\",\"dev_name\":\"N\",\"packed_ring\":\"yes\"}", INVALID_PARAMS)).hasMessageContaining("packed_ring");
        assertThat(fails(c, "vhost_create_blk_controller", "{\"ctrlr\":\"x\",\"dev_name\":\"N\",\"cpumask\":\"0x4\"}", INVALID_PARAMS)).hasMessageContaining("cpumask");
        assertThat(fails(c, "vhost_create_blk_controller", "{\"ctrlr\":\"x\",\"dev_name\":\"N\",\"cpumask\":\"zz\"}", INVALID_PARAMS)).hasMessageContaining("cpumask");
        assertThat(fails(c, "vhost_create_blk_controller", "{\"ctrlr\":\"x\",\"dev_name\":\"N\",\"transport\":\"vfio_user_blk\"}", INVALID_PARAMS)).hasMessageContaining("transport");
        assertThat(fails(c, "vhost_create_blk_controller", "{\"ctrlr\":\"x\",\"dev_name\":\"N\",\"num_queues\":0}", INVALID_PARAMS)).hasMessageContaining("num_queues");
        assertThat(fails(c, "vhost_create_blk_controller", "{\"ctrlr\":\"x\",\"dev_name\":\"N\",\"readonly\":\"yes\"}", INVALID_PARAMS)).hasMessageContaining("'readonly'");
        assertThat(fails(c, "vhost_create_blk_controller", "{\"ctrlr\":\"../x\",\"dev_name\":\"N\"}", INVALID_PARAMS)).hasMessageContaining("plain file name");
        // A failed create leaves the bdev free.
        assertThat(call("bdev_get_bdevs", "{\"name\":\"N\"}").get(0).get("claimed").asBoolean()).isFalse();

        assertThat(call("vhost_delete_controller", "{\"ctrlr\":\"vhost.0\"}").asBoolean()).isTrue();
        assertThat(dir.resolve("vhost.0")).doesNotExist();
        assertThat(call("bdev_get_bdevs", "{\"name\":\"M0\"}").get(0).get("claimed").asBoolean()).isFalse();
        assertThat(fails(c, "vhost_delete_controller", "{\"ctrlr\":\"vhost.0\"}", ENODEV)).hasMessageContaining("vhost.0");
        fails(c, "vhost_delete_controller", "{}", INVALID_PARAMS);
    }

    @Test
    void vhostGetControllersAndCoalescing() throws Exception {
        call("bdev_malloc_create", "{\"name\":\"M\",\"num_blocks\":64}");
        call("bdev_null_create", "{\"name\":\"N\",\"num_blocks\":64}");
        call("vhost_create_blk_controller", "{\"ctrlr\":\"a\",\"dev_name\":\"M\"}");
        call("vhost_create_blk_controller", "{\"ctrlr\":\"b\",\"dev_name\":\"N\",\"readonly\":true,\"cpumask\":\"2\"}");
        JsonNode all = call("vhost_get_controllers", null);
        assertThat(all).hasSize(2);
        assertThat(all.get(1)).isEqualTo(json("""
                {"ctrlr":"b","cpumask":"0x2","delay_base_us":0,"iops_threshold":60000,"socket":"%s",
                 "backend_specific":{"block":{"readonly":true,"bdev":"N","transport":"vhost_user_blk"}}}""".formatted(dir.resolve("b"))));
        assertThat(call("vhost_get_controllers", "{\"name\":\"a\"}")).hasSize(1);
        fails(c, "vhost_get_controllers", "{\"name\":\"zz\"}", ENODEV);
        fails(c, "vhost_get_controllers", "{\"ctrlr\":\"a\"}", INVALID_PARAMS);

        assertThat(call("vhost_controller_set_coalescing", "{\"ctrlr\":\"a\",\"delay_base_us\":50,\"iops_threshold\":100000}").asBoolean()).isTrue();
        JsonNode a = call("vhost_get_controllers", "{\"name\":\"a\"}").get(0);
        assertThat(a.get("delay_base_us").asInt()).isEqualTo(50);
        assertThat(a.get("iops_threshold").asInt()).isEqualTo(100000);
        assertThat(fails(c, "vhost_controller_set_coalescing", "{\"ctrlr\":\"a\",\"delay_base_us\":50,\"iops_threshold\":99}", INVALID_PARAMS))
                .hasMessageContaining("iops_threshold");
        assertThat(fails(c, "vhost_controller_set_coalescing", "{\"ctrlr\":\"a\",\"delay_base_us\":-1,\"iops_threshold\":1000}", INVALID_PARAMS))
                .hasMessageContaining("delay_base_us");
        assertThat(fails(c, "vhost_controller_set_coalescing", "{\"ctrlr\":\"a\",\"delay_base_us\":5000000,\"iops_threshold\":1000}", INVALID_PARAMS))
                .hasMessageContaining("delay_base_us");
        assertThat(fails(c, "vhost_controller_set_coalescing", "{\"ctrlr\":\"a\",\"delay_base_us\":5}", INVALID_PARAMS)).hasMessageContaining("'iops_threshold'");
        fails(c, "vhost_controller_set_coalescing", "{\"ctrlr\":\"zz\",\"delay_base_us\":5,\"iops_threshold\":1000}", ENODEV);
        // Unchanged by the failures.
        assertThat(call("vhost_get_controllers", "{\"name\":\"a\"}").get(0)).isEqualTo(a);
    }

    @Test
    void statisticsFollowGuestIo() throws Exception {
        call("bdev_malloc_create", "{\"name\":\"M\",\"num_blocks\":8192}");
        call("vhost_create_blk_controller", "{\"ctrlr\":\"v\",\"dev_name\":\"M\",\"cpumask\":\"0x2\",\"num_queues\":2}");
        JsonNode idle = call("vhost_get_stats", "{\"name\":\"v\"}").get(0);
        assertThat(idle.get("connections").asLong()).isZero();
        assertThat(idle.get("session").isNull()).isTrue();
        int writes = 40, reads = 25;
        try (BlkInitiator ini = BlkInitiator.connect(dir.resolve("v").toString(), 2, 64, 1 << 20)) {
            for (int i = 0; i < writes; i++) assertThat(ini.write(i % 2, i * 8L, 4096)).isEqualTo(S_OK);
            for (int i = 0; i < reads; i++) assertThat(ini.read(0, i * 8L, 8192)).isEqualTo(S_OK);

            JsonNode st = call("bdev_get_iostat", "{\"name\":\"M\"}");
            assertThat(st.get("tick_rate").asLong()).isEqualTo(1_000_000_000L);
            assertThat(st.get("ticks").asLong()).isPositive();
            JsonNode m = st.get("bdevs").get(0);
            assertThat(names(m)).startsWith("name", "bytes_read", "num_read_ops", "bytes_written", "num_write_ops", "bytes_unmapped",
                    "num_unmap_ops", "bytes_copied", "num_copy_ops", "read_latency_ticks", "max_read_latency_ticks", "min_read_latency_ticks",
                    "write_latency_ticks", "max_write_latency_ticks", "min_write_latency_ticks", "unmap_latency_ticks",
                    "max_unmap_latency_ticks", "min_unmap_latency_ticks", "copy_latency_ticks", "max_copy_latency_ticks",
                    "min_copy_latency_ticks", "io_error");
            assertThat(m.get("num_write_ops").asLong()).isEqualTo(writes);
            assertThat(m.get("bytes_written").asLong()).isEqualTo(writes * 4096L);
            assertThat(m.get("num_read_ops").asLong()).isEqualTo(reads);
            assertThat(m.get("bytes_read").asLong()).isEqualTo(reads * 8192L);
            assertThat(m.get("read_latency_ticks").asLong()).isPositive();
            assertThat(m.get("max_write_latency_ticks").asLong()).isGreaterThanOrEqualTo(m.get("min_write_latency_ticks").asLong());
            assertThat(m.get("io_error")).isEmpty();

            JsonNode v = call("vhost_get_stats", "{\"name\":\"v\"}").get(0);
            assertThat(v.get("connections").asLong()).isEqualTo(1);
            assertThat(v.get("protocol_errors").asLong()).isZero();
            JsonNode queues = v.at("/session/queues");
            assertThat(queues).hasSize(2);
            long requests = 0;
            for (JsonNode q : queues) {
                requests += q.get("requests").asLong();
                assertThat(q.get("in_flight").asLong()).isZero();
                assertThat(q.get("chain_errors").asLong()).isZero();
                assertThat(q.get("request_errors").asLong()).isZero();
                assertThat(q.get("broken").asBoolean()).isFalse();
                assertThat(names(q)).contains("kicks", "calls", "call_errors", "size", "index");
            }
            assertThat(requests).isEqualTo(writes + reads);

            // A request past the end of the disk fails: counted as a request error of the queue.
            assertThat(ini.read(0, 8192, 512)).isNotEqualTo(S_OK);
            JsonNode q0 = call("vhost_get_stats", null).get(0).at("/session/queues/0");
            assertThat(q0.get("request_errors").asLong()).isEqualTo(1);
        }
        fails(c, "bdev_get_iostat", "{\"name\":\"nope\"}", ENODEV);
        fails(c, "vhost_get_stats", "{\"name\":\"nope\"}", ENODEV);
        // The counts outlive the session (its queues' channels are closed).
        assertThat(call("bdev_get_iostat", null).at("/bdevs/0/num_write_ops").asLong()).isEqualTo(writes);
    }

    @Test
    void deletingAControllerWithAConnectedFrontEndIsRefusedAsSpdkDoesAndTheFrontEndKeepsWorking() throws Exception {
        call("bdev_malloc_create", "{\"name\":\"M\",\"num_blocks\":2048}");
        call("vhost_create_blk_controller", "{\"ctrlr\":\"v\",\"dev_name\":\"M\",\"num_queues\":1}");
        try (BlkInitiator ini = BlkInitiator.connect(dir.resolve("v").toString(), 1, 64, 1 << 20)) {
            assertThat(ini.write(0, 0, 4096)).isEqualTo(S_OK);
            // SPDK (vhost_rpc.c, rte_vhost_user.c vhost_user_dev_unregister): INVALID_PARAMS, "Device or resource busy".
            RpcException e = fails(c, "vhost_delete_controller", "{\"ctrlr\":\"v\"}", INVALID_PARAMS);
            assertThat(e.getMessage()).startsWith("Device or resource busy").contains("'v'").contains("disconnect the front-end first");
            // Nothing changed: the socket, the controller, the claim and the session are all still there.
            assertThat(dir.resolve("v")).exists();
            assertThat(call("vhost_get_controllers", "{\"name\":\"v\"}")).hasSize(1);
            assertThat(call("bdev_get_bdevs", "{\"name\":\"M\"}").get(0).get("claimed").asBoolean()).isTrue();
            assertThat(ini.read(0, 0, 4096)).isEqualTo(S_OK);
            assertThat(call("vhost_get_stats", "{\"name\":\"v\"}").get(0).get("session").isNull()).isFalse();
        }
        // Once the front-end has gone (its session ends asynchronously), deletion succeeds.
        org.awaitility.Awaitility.await().atMost(java.time.Duration.ofSeconds(30))
                .until(() -> call("vhost_get_stats", "{\"name\":\"v\"}").get(0).get("session").isNull());
        assertThat(call("vhost_delete_controller", "{\"ctrlr\":\"v\"}").asBoolean()).isTrue();
        assertThat(dir.resolve("v")).doesNotExist();
        assertThat(call("bdev_malloc_delete", "{\"name\":\"M\"}").asBoolean()).isTrue();
    }

    @Test
    void schedulerMethodsAcceptSpdksSettingsAndReportStaticPlacement() throws Exception {
        assertThat(call("framework_get_scheduler", null)).isEqualTo(json("{\"scheduler_name\":\"static\",\"scheduler_period\":0}"));
        assertThat(call("framework_set_scheduler", "{\"name\":\"static\"}").asBoolean()).isTrue();
        assertThat(call("framework_set_scheduler", "{\"name\":\"static\",\"period\":1000000}").asBoolean()).isTrue();
        // The dynamic scheduler's own options are SPDK's to define (decoded leniently there).
        assertThat(call("framework_set_scheduler", "{\"name\":\"dynamic\",\"load_limit\":20,\"core_limit\":80,\"core_busy\":95}").asBoolean()).isTrue();
        assertThat(call("framework_get_scheduler", null)).isEqualTo(json("{\"scheduler_name\":\"static\",\"scheduler_period\":1000000}"));
        assertThat(fails(c, "framework_set_scheduler", "{\"name\":\"fancy\"}", INVALID_PARAMS)).hasMessageContaining("'fancy'");
        assertThat(fails(c, "framework_set_scheduler", null, INVALID_PARAMS)).hasMessageContaining("'name'");
        fails(c, "framework_set_scheduler", "{\"name\":\"static\",\"period\":-5}", INVALID_PARAMS);
        fails(c, "framework_get_scheduler", "{\"x\":1}", INVALID_PARAMS);
    }

    @Test
    void threadGetStatsHasSpdksShapeOneThreadPerReactor() throws Exception {
        JsonNode r = call("thread_get_stats", null);
        assertThat(r.get("tick_rate").asLong()).isEqualTo(1_000_000_000L);
        assertThat(r.get("threads")).hasSize(2);
        JsonNode t1 = r.get("threads").get(1);
        assertThat(names(t1)).containsExactly("name", "id", "cpumask", "busy", "idle", "active_pollers_count", "timed_pollers_count",
                "paused_pollers_count");
        assertThat(t1.get("name").asText()).isEqualTo("reactor_1");
        assertThat(t1.get("cpumask").asText()).isEqualTo("2");
        fails(c, "thread_get_stats", "{\"a\":1}", INVALID_PARAMS);
    }

    @Test
    void scsiGetDevicesListsTheTargetsOfEveryScsiController() throws Exception {
        assertThat(call("scsi_get_devices", null)).isEmpty();
        call("bdev_null_create", "{\"name\":\"N0\",\"num_blocks\":64}");
        call("bdev_null_create", "{\"name\":\"N1\",\"num_blocks\":64}");
        call("vhost_create_scsi_controller", "{\"ctrlr\":\"s\"}");
        call("vhost_scsi_controller_add_target", "{\"ctrlr\":\"s\",\"scsi_target_num\":1,\"bdev_name\":\"N0\"}");
        call("vhost_scsi_controller_add_target", "{\"ctrlr\":\"s\",\"scsi_target_num\":5,\"bdev_name\":\"N1\"}");
        JsonNode d = call("scsi_get_devices", null);
        assertThat(d).hasSize(2);
        assertThat(d.get(0).get("id").asInt()).isEqualTo(0);
        assertThat(d.get(1).get("id").asInt()).isEqualTo(1);
        assertThat(d.get(1).get("scsi_target_num").asInt()).isEqualTo(5);
        assertThat(d.get(1).get("device_name").asText()).isNotBlank();
        fails(c, "scsi_get_devices", "{\"a\":1}", INVALID_PARAMS);
        // Removing an empty slot: ENODEV; the removed target disappears from the list.
        assertThat(fails(c, "vhost_scsi_controller_remove_target", "{\"ctrlr\":\"s\",\"scsi_target_num\":2}", ENODEV)).hasMessageContaining("no SCSI target 2");
        call("vhost_scsi_controller_remove_target", "{\"ctrlr\":\"s\",\"scsi_target_num\":1}");
        org.awaitility.Awaitility.await().atMost(java.time.Duration.ofSeconds(10)).until(() -> call("scsi_get_devices", null).size() == 1);
    }

    @Test
    void bdevResetIostatStartsTheCountsAgain() throws Exception {
        call("bdev_malloc_create", "{\"name\":\"M\",\"num_blocks\":2048}");
        call("vhost_create_blk_controller", "{\"ctrlr\":\"v\",\"dev_name\":\"M\",\"num_queues\":1}");
        try (BlkInitiator ini = BlkInitiator.connect(dir.resolve("v").toString(), 1, 64, 1 << 20)) {
            for (int i = 0; i < 5; i++) assertThat(ini.write(0, i * 8L, 4096)).isEqualTo(S_OK);
            assertThat(call("bdev_get_iostat", "{\"name\":\"M\"}").at("/bdevs/0/num_write_ops").asLong()).isEqualTo(5);
            assertThat(call("bdev_reset_iostat", "{\"name\":\"M\",\"mode\":\"maxmin\"}").asBoolean()).isTrue();
            JsonNode mm = call("bdev_get_iostat", "{\"name\":\"M\"}").at("/bdevs/0");
            assertThat(mm.get("num_write_ops").asLong()).isEqualTo(5);
            assertThat(mm.get("max_write_latency_ticks").asLong()).isZero();
            assertThat(mm.get("min_write_latency_ticks").asLong()).isZero();
            assertThat(mm.get("write_latency_ticks").asLong()).isPositive();
            assertThat(call("bdev_reset_iostat", null).asBoolean()).isTrue();
            JsonNode z = call("bdev_get_iostat", "{\"name\":\"M\"}").at("/bdevs/0");
            assertThat(z.get("num_write_ops").asLong()).isZero();
            assertThat(z.get("bytes_written").asLong()).isZero();
            assertThat(z.get("write_latency_ticks").asLong()).isZero();
            for (int i = 0; i < 3; i++) assertThat(ini.write(0, i * 8L, 4096)).isEqualTo(S_OK);
            JsonNode after = call("bdev_get_iostat", "{\"name\":\"M\"}").at("/bdevs/0");
            assertThat(after.get("num_write_ops").asLong()).isEqualTo(3);
            assertThat(after.get("bytes_written").asLong()).isEqualTo(3 * 4096);
            assertThat(after.get("max_write_latency_ticks").asLong()).isPositive();
        }
        fails(c, "bdev_reset_iostat", "{\"name\":\"nope\"}", ENODEV);
        assertThat(fails(c, "bdev_reset_iostat", "{\"mode\":\"some\"}", INVALID_PARAMS)).hasMessageContaining("maxmin");
    }

    @Test
    void bdevNullResizeAndAioRescanChangeTheSizeOfAnUnusedBdev() throws Exception {
        call("bdev_null_create", "{\"name\":\"N\",\"num_blocks\":2048,\"block_size\":4096}"); // 8 MiB
        assertThat(call("bdev_null_resize", "{\"name\":\"N\",\"new_size\":16}").asBoolean()).isTrue();
        assertThat(call("bdev_get_bdevs", "{\"name\":\"N\"}").get(0).get("num_blocks").asLong()).isEqualTo(4096);
        assertThat(fails(c, "bdev_null_resize", "{\"name\":\"N\",\"new_size\":4}", INVALID_PARAMS)).hasMessageContaining("smaller");
        fails(c, "bdev_null_resize", "{\"name\":\"zz\",\"new_size\":16}", ENODEV);
        fails(c, "bdev_null_resize", "{\"name\":\"N\"}", INVALID_PARAMS);
        call("vhost_create_blk_controller", "{\"ctrlr\":\"v\",\"dev_name\":\"N\"}");
        assertThat(fails(c, "bdev_null_resize", "{\"name\":\"N\",\"new_size\":32}", EBUSY)).hasMessageContaining("in use by vhost controller v");
        assertThat(call("bdev_get_bdevs", "{\"name\":\"N\"}").get(0).get("num_blocks").asLong()).isEqualTo(4096);

        Path img = dir.resolve("grow.img");
        Files.write(img, new byte[1 << 20]);
        call("bdev_aio_create", "{\"name\":\"A\",\"filename\":\"" + img + "\"}");
        assertThat(call("bdev_aio_rescan", "{\"name\":\"A\"}").asBoolean()).isTrue(); // unchanged
        Files.write(img, new byte[1 << 20], java.nio.file.StandardOpenOption.APPEND);
        assertThat(call("bdev_aio_rescan", "{\"name\":\"A\"}").asBoolean()).isTrue();
        assertThat(call("bdev_get_bdevs", "{\"name\":\"A\"}").get(0).get("num_blocks").asLong()).isEqualTo(4096);
        assertThat(fails(c, "bdev_aio_rescan", "{\"name\":\"N\"}", ENODEV)).hasMessageContaining("not an aio bdev");
        fails(c, "bdev_aio_rescan", "{}", INVALID_PARAMS);
        call("vhost_create_blk_controller", "{\"ctrlr\":\"va\",\"dev_name\":\"A\"}");
        Files.write(img, new byte[1 << 20], java.nio.file.StandardOpenOption.APPEND);
        fails(c, "bdev_aio_rescan", "{\"name\":\"A\"}", EBUSY);
    }

    @Test
    void notificationsFollowBdevRegistration() throws Exception {
        assertThat(call("notify_get_types", null)).isEqualTo(json("[\"bdev_register\",\"bdev_unregister\"]"));
        call("bdev_null_create", "{\"name\":\"N\",\"num_blocks\":64}");
        call("bdev_malloc_create", "{\"name\":\"M\",\"num_blocks\":64}");
        call("bdev_null_delete", "{\"name\":\"N\"}");
        assertThat(call("notify_get_notifications", null)).isEqualTo(json("""
                [{"type":"bdev_register","ctx":"N","id":0},{"type":"bdev_register","ctx":"M","id":1},{"type":"bdev_unregister","ctx":"N","id":2}]"""));
        assertThat(call("notify_get_notifications", "{\"id\":1,\"max\":1}")).isEqualTo(json("[{\"type\":\"bdev_register\",\"ctx\":\"M\",\"id\":1}]"));
        assertThat(call("notify_get_notifications", "{\"id\":3}")).isEmpty();
        fails(c, "notify_get_notifications", "{\"id\":-1}", INVALID_PARAMS);
        fails(c, "notify_get_types", "{\"a\":1}", INVALID_PARAMS);
    }

    @Test
    void logMethodsReportTheLevelsInForceAndSayHowToChangeThem() throws Exception {
        JsonNode flags = call("log_get_flags", null);
        assertThat(names(flags)).contains("vhost", "bdev", "scsi", "rpc", "virtio");
        String level = call("log_get_print_level", null).asText();
        assertThat(level).isIn("ERROR", "WARNING", "INFO", "DEBUG");
        assertThat(call("log_set_print_level", "{\"level\":\"" + level.toLowerCase() + "\"}").asBoolean()).isTrue();
        String other = level.equals("ERROR") ? "DEBUG" : "ERROR";
        assertThat(fails(c, "log_set_print_level", "{\"level\":\"" + other + "\"}", INVALID_STATE)).hasMessageContaining("--log-level");
        assertThat(fails(c, "log_set_print_level", "{\"level\":\"LOUD\"}", INVALID_PARAMS)).hasMessageContaining("NOTICE");
        boolean vhostDebug = flags.get("vhost").asBoolean();
        assertThat(call(vhostDebug ? "log_set_flag" : "log_clear_flag", "{\"flag\":\"vhost\"}").asBoolean()).isTrue();
        assertThat(fails(c, vhostDebug ? "log_clear_flag" : "log_set_flag", "{\"flag\":\"vhost\"}", INVALID_STATE))
                .hasMessageContaining("io.jvhost.vhost");
        assertThat(fails(c, "log_set_flag", "{\"flag\":\"nvme\"}", INVALID_PARAMS)).hasMessageContaining("unknown flag 'nvme'");
        fails(c, "log_set_flag", null, INVALID_PARAMS);
    }

    @Test
    void spdkKillInstanceHandsTheSignalToTheProcessHandler() throws Exception {
        // Without a handler (a library user, not serve) it refuses instead of exiting.
        assertThat(fails(c, "spdk_kill_instance", "{\"sig_name\":\"SIGTERM\"}", INVALID_STATE)).hasMessageContaining("jvhost serve");
        List<String> got = new java.util.concurrent.CopyOnWriteArrayList<>();
        f.methods.setKillHandler(got::add);
        assertThat(call("spdk_kill_instance", "{\"sig_name\":\"SIGTERM\"}").asBoolean()).isTrue();
        assertThat(call("spdk_kill_instance", "{\"sig_name\":\"2\"}").asBoolean()).isTrue();
        assertThat(got).containsExactly("SIGTERM", "SIGINT");
        assertThat(fails(c, "spdk_kill_instance", "{\"sig_name\":\"SIGSEGV\"}", INVALID_PARAMS)).hasMessageContaining("SIGTERM");
        fails(c, "spdk_kill_instance", null, INVALID_PARAMS);
        assertThat(got).hasSize(2);
    }
}
