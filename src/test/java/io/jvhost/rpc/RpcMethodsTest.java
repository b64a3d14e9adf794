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
                  "uuid":"913fc008-79a7-447f-b2c4-c73543638c31"}}]"""));
        assertThat(call("framework_get_config", "{\"name\":\"vhost_blk\"}")).isEqualTo(json("""
                [{"method":"vhost_create_blk_controller","params":{"ctrlr":"v","dev_name":"M","cpumask":"2","readonly":false,"num_queues":4}},
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
        assertThat(e).hasMessageContaining("in use by vhost controller v").hasMessageContaining("Device or resource busy");
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
        assertThat(fails(c, "vhost_create_blk_controller", "{\"ctrlr\":\"x\",\"dev_name\":\"N\",\"packed_ring\":true}", INVALID_PARAMS)).hasMessageContaining("packed_ring");
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
}
