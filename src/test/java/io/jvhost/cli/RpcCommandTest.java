package io.jvhost.cli;

import com.fasterxml.jackson.databind.JsonNode;
import io.jvhost.rpc.Json;
import io.jvhost.rpc.JsonConfig;
import io.jvhost.rpc.JsonRpcServer;
import io.jvhost.rpc.Methods;
import io.jvhost.runtime.IdleStrategy;
import io.jvhost.vhost.VhostTarget;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

/** {@code jvhost rpc} in-process against a real server: parameter syntax, output, errors, save/load config. */
@Timeout(120)
class RpcCommandTest {
    @TempDir
    Path dir;
    VhostTarget target;
    JsonRpcServer server;
    Path sock;

    record Run(int exit, String out, String err) {
        JsonNode json() throws Exception {
            return Json.MAPPER.readTree(out);
        }
    }

    @BeforeEach
    void start() throws Exception {
        target = new VhostTarget(dir, 1, IdleStrategy.BACKOFF);
        sock = dir.resolve("rpc.sock");
        server = JsonRpcServer.start(sock, new Methods(target));
    }

    @AfterEach
    void stop() {
        server.close();
        target.close();
    }

    Run rpc(String... args) {
        List<String> a = new ArrayList<>(List.of("rpc", "-s", sock.toString()));
        a.addAll(List.of(args));
        return raw(a.toArray(new String[0]));
    }

    static Run raw(String... args) {
        CommandLine cl = Main.commandLine();
        StringWriter out = new StringWriter(), err = new StringWriter();
        cl.setOut(new PrintWriter(out));
        cl.setErr(new PrintWriter(err));
        int rc = cl.execute(args);
        return new Run(rc, out.toString(), err.toString());
    }

    @Test
    void namedParametersAreTypedLikeJson() throws Exception {
        Run r = rpc("bdev_malloc_create", "--name", "M0", "--num_blocks", "64", "--block-size=4096");
        assertThat(r.exit()).as(r.err()).isZero();
        assertThat(r.json().asText()).isEqualTo("M0");
        // A bare flag is true; '"7"' forces a string; -p and a bare object merge in.
        assertThat(rpc("bdev_null_create", "--name", "\"7\"", "--num_blocks", "8").json().asText()).isEqualTo("7");
        r = rpc("vhost_create_blk_controller", "{\"ctrlr\":\"v0\"}", "--dev_name", "M0", "--readonly");
        assertThat(r.exit()).as(r.err()).isZero();
        assertThat(r.json().asBoolean()).isTrue();
        r = rpc("-p", "{\"name\":\"v0\"}", "vhost_get_controllers");
        assertThat(r.exit()).as(r.err()).isZero();
        JsonNode c = r.json();
        assertThat(c).hasSize(1);
        assertThat(c.at("/0/backend_specific/block/readonly").asBoolean()).isTrue();
        assertThat(r.out()).contains("\n  ").endsWith("\n"); // pretty-printed
        assertThat(rpc("bdev_get_bdevs", "-p", "{\"name\":\"M0\"}").json().at("/0/block_size").asInt()).isEqualTo(4096);
    }

    @Test
    void failuresExitWithTheServersMessage() {
        rpc("bdev_malloc_create", "--name", "M", "--num_blocks", "8");
        Run r = rpc("bdev_malloc_create", "--name", "M", "--num_blocks", "8");
        assertThat(r.exit()).isEqualTo(1);
        assertThat(r.err()).contains("bdev_malloc_create failed").contains("already exists").contains("code -17");
        assertThat(r.out()).isEmpty();
        r = rpc("bdev_malloc_create", "--name", "X", "--num_blocks", "eight");
        assertThat(r.exit()).isEqualTo(1);
        assertThat(r.err()).contains("'num_blocks' must be an integer").contains("code -32602");
        r = rpc("no_such_method");
        assertThat(r.exit()).isEqualTo(1);
        assertThat(r.err()).contains("Method not found").contains("-32601");
        r = rpc("bdev_get_bdevs", "name");
        assertThat(r.exit()).isEqualTo(2);
        assertThat(r.err()).contains("unexpected argument 'name'");
        r = rpc("bdev_get_bdevs", "-p", "[1]");
        assertThat(r.exit()).isEqualTo(2);
        assertThat(rpc().exit()).isEqualTo(2);
        r = raw("rpc", "-s", dir.resolve("nope.sock").toString(), "rpc_get_methods");
        assertThat(r.exit()).isEqualTo(1);
        assertThat(r.err()).contains("nope.sock").contains("does not exist");
    }

    @Test
    void helpListsTheMethodsWithoutAServer() {
        Run r = raw("rpc", "--help");
        assertThat(r.exit()).isZero();
        assertThat(r.out()).contains("--socket").contains("save_config").contains("vhost_create_blk_controller")
                .contains("ctrlr dev_name").contains("bdev_get_iostat").contains("Exit status");
    }

    @Test
    void saveConfigThenLoadConfigRebuildsTheState() throws Exception {
        Files.write(dir.resolve("disk.img"), new byte[1 << 20]);
        rpc("bdev_malloc_create", "--name", "M", "--num_blocks", "128");
        rpc("bdev_aio_create", "--name", "A", "--filename", dir.resolve("disk.img").toString());
        rpc("vhost_create_blk_controller", "--ctrlr", "v", "--dev_name", "A");
        rpc("vhost_controller_set_coalescing", "--ctrlr", "v", "--delay_base_us", "10", "--iops_threshold", "2000");
        JsonNode controllers = rpc("vhost_get_controllers").json();
        JsonNode bdevs = rpc("bdev_get_bdevs").json();
        Path cfg = dir.resolve("cfg.json");
        Run r = rpc("save_config", "-o", cfg.toString());
        assertThat(r.exit()).as(r.err()).isZero();
        JsonNode saved = Json.MAPPER.readTree(cfg.toFile());
        assertThat(saved).isEqualTo(rpc("save_config").json());
        assertThat(saved.at("/subsystems/1/config/1/method").asText()).isEqualTo("vhost_controller_set_coalescing");

        stop();
        start();
        assertThat(rpc("bdev_get_bdevs").json()).isEmpty();
        r = rpc("load_config", "-i", cfg.toString());
        assertThat(r.exit()).as(r.err()).isZero();
        assertThat(r.err()).contains("loaded 4 config entries");
        assertThat(rpc("vhost_get_controllers").json()).isEqualTo(controllers);
        assertThat(rpc("bdev_get_bdevs").json()).isEqualTo(bdevs);
        // Loading it again fails at the first entry, and says where.
        r = rpc("-i", cfg.toString(), "load_config");
        assertThat(r.exit()).isEqualTo(1);
        assertThat(r.err()).contains(cfg.toString()).contains("subsystem bdev, config[0] (bdev_malloc_create)").contains("already exists");
    }

    @Test
    void loadConfigRefusesDeepNestingAndHugeInputInOneLine() throws Exception {
        Path deep = dir.resolve("deep.json");
        Files.writeString(deep, "[".repeat(100_000) + "]".repeat(100_000));
        Run r = rpc("load_config", "-i", deep.toString());
        assertThat(r.exit()).isEqualTo(1);
        assertThat(r.err().strip()).doesNotContain("\n").contains("load_config failed").contains("nesting");
        Path big = dir.resolve("big.json");
        Files.write(big, new byte[JsonConfig.MAX_CONFIG_BYTES + 10]);
        r = rpc("load_config", "-i", big.toString());
        assertThat(r.exit()).isEqualTo(1);
        assertThat(r.err().strip()).doesNotContain("\n").contains("larger than 16 MiB");
        assertThat(rpc("bdev_get_bdevs").json()).isEmpty();
    }
}
