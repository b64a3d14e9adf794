package io.jvhost.cli;

import com.fasterxml.jackson.databind.JsonNode;
import io.jvhost.initiator.BlkInitiator;
import io.jvhost.rpc.Json;
import io.jvhost.rpc.RpcClient;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static io.jvhost.virtio.BlkLayout.S_OK;
import static org.assertj.core.api.Assertions.assertThat;

/** {@code jvhost serve} as a real process: start-up output, serving, SIGTERM clean-up, bad input. */
class ServeCommandTest {
    @TempDir
    Path dir;

    static ProcessBuilder jvhost(String... args) {
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--enable-native-access=ALL-UNNAMED", "-cp", System.getProperty("java.class.path"), "io.jvhost.cli.Main"));
        cmd.addAll(List.of(args));
        return new ProcessBuilder(cmd);
    }

    static String run(int expectedExit, String... args) throws Exception {
        Process p = jvhost(args).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertThat(p.waitFor(60, TimeUnit.SECONDS)).isTrue();
        assertThat(p.exitValue()).as(out).isEqualTo(expectedExit);
        return out;
    }

    @Test
    void servesPrintsTheQemuCommandLineAndCleansUpOnSigterm() throws Exception {
        Process p = jvhost("serve", "-S", dir.toString(), "--malloc", "16M", "--no-rpc").redirectErrorStream(true).start();
        BufferedReader r = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8));
        StringBuilder out = new StringBuilder();
        String line;
        while ((line = r.readLine()) != null) {
            out.append(line).append('\n');
            if (line.startsWith("Stop with")) break;
        }
        assertThat(out.toString()).contains("vhost-user-blk-pci,chardev=vhost0").contains("path=" + dir.resolve("vhost.0"))
                .contains("memory-backend-memfd").doesNotContain("JSON-RPC on");
        Path sock = dir.resolve("vhost.0");
        assertThat(sock).exists();
        try (BlkInitiator ini = BlkInitiator.connect(sock.toString(), 1, 64, 1 << 20)) {
            assertThat(ini.capacitySectors()).isEqualTo(16L * 2048);
            assertThat(ini.write(0, 0, 4096)).isEqualTo(S_OK);
        }
        p.destroy(); // SIGTERM
        assertThat(p.waitFor(30, TimeUnit.SECONDS)).isTrue();
        assertThat(sock).doesNotExist();
    }

    @Test
    void helpExplainsTheOptions() throws Exception {
        String top = run(0, "--help");
        assertThat(top).contains("serve").contains("vhost-user");
        String serve = run(0, "serve", "--help");
        assertThat(serve).contains("--socket-dir").contains("--json").contains("--malloc").contains("--busy-poll")
                .contains("--rpc-socket").contains("/var/tmp/jvhost.sock").contains("--no-rpc").contains("--reactors")
                .contains("--socket-mode").contains("--socket-group").contains("--rpc-idle-timeout").contains("rpc-peer-check");
        assertThat(run(0, "rpc", "--help")).contains("vhost_get_controllers").contains("--socket");
    }

    @Test
    void badConfigStopsStartUpWithTheReason() throws Exception {
        Path cfg = dir.resolve("bad.json");
        Files.writeString(cfg, "{\"subsystems\":[{\"subsystem\":\"bdev\",\"config\":[{\"method\":\"bdev_malloc_create\",\"params\":{\"name\":\"M\"}}]}]}");
        String out = run(2, "serve", "-S", dir.toString(), "--json", cfg.toString(), "-r", dir.resolve("rpc.sock").toString());
        assertThat(out).contains("bad config").contains("config[0]").contains("missing required parameter 'num_blocks'");
        // Nothing half-created stays: no controller socket, no RPC socket.
        assertThat(Files.list(dir).filter(f -> !f.equals(cfg)).toList()).isEmpty();
    }

    @Test
    void badSizesAndDirectoriesAreClearErrors() throws Exception {
        assertThat(run(2, "serve", "-S", dir.resolve("nope").toString())).contains("does not exist");
        assertThat(run(2, "serve", "-S", dir.toString(), "--malloc", "lots", "--no-rpc")).contains("not a size");
        assertThat(run(2, "serve", "-S", dir.toString(), "--empty", "--null", "1M", "--no-rpc")).contains("--empty excludes");
    }

    /** Starts 'jvhost serve' and returns once it printed its start-up banner. */
    static Process serve(StringBuilder out, String... args) throws Exception {
        List<String> a = new ArrayList<>(List.of("serve"));
        a.addAll(List.of(args));
        Process p = jvhost(a.toArray(new String[0])).redirectErrorStream(true).start();
        BufferedReader r = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8));
        String line;
        while ((line = r.readLine()) != null) {
            out.append(line).append('\n');
            if (line.startsWith("Stop with")) return p;
        }
        throw new AssertionError("serve ended before starting:\n" + out);
    }

    static void stop(Process p) throws Exception {
        p.destroy(); // SIGTERM
        assertThat(p.waitFor(30, TimeUnit.SECONDS)).isTrue();
    }

    @Test
    void controllersCreatedThroughRpcServeAndTheSavedConfigRestartsTheSameTarget() throws Exception {
        Path rpcSock = dir.resolve("rpc.sock");
        StringBuilder out = new StringBuilder();
        Process p = serve(out, "-S", dir.toString(), "--empty", "-r", rpcSock.toString(), "--reactors", "2");
        JsonNode controllers, bdevs;
        Path cfg = dir.resolve("saved.json");
        try {
            assertThat(out.toString()).contains("JSON-RPC on " + rpcSock).contains("serving 0 controller(s)");
            // The CLI as a process, once; then the in-process client for speed.
            assertThat(run(0, "rpc", "-s", rpcSock.toString(), "bdev_malloc_create", "--name", "M", "--num_blocks", "32768")).contains("\"M\"");
            try (RpcClient c = RpcClient.connect(rpcSock, Duration.ofSeconds(30))) {
                c.call("vhost_create_blk_controller", Json.MAPPER.readTree("{\"ctrlr\":\"vhost.7\",\"dev_name\":\"M\",\"cpumask\":\"0x2\"}"));
                try (BlkInitiator ini = BlkInitiator.connect(dir.resolve("vhost.7").toString(), 1, 64, 1 << 20)) {
                    assertThat(ini.capacitySectors()).isEqualTo(32768);
                    assertThat(ini.write(0, 8, 4096)).isEqualTo(S_OK);
                    assertThat(ini.read(0, 8, 4096)).isEqualTo(S_OK);
                }
                assertThat(c.call("bdev_get_iostat", null).at("/bdevs/0/num_write_ops").asLong()).isEqualTo(1);
                controllers = c.call("vhost_get_controllers", null);
                bdevs = c.call("bdev_get_bdevs", null);
            }
            run(0, "rpc", "-s", rpcSock.toString(), "save_config", "-o", cfg.toString());
        } finally {
            stop(p);
        }
        assertThat(rpcSock).doesNotExist();
        assertThat(dir.resolve("vhost.7")).doesNotExist();

        out.setLength(0);
        p = serve(out, "-S", dir.toString(), "--json", cfg.toString(), "-r", rpcSock.toString(), "--reactors", "2");
        try (RpcClient c = RpcClient.connect(rpcSock, Duration.ofSeconds(30))) {
            assertThat(out.toString()).contains("loaded 2 config entries").contains("vhost.7");
            assertThat(c.call("vhost_get_controllers", null)).isEqualTo(controllers);
            assertThat(c.call("bdev_get_bdevs", null)).isEqualTo(bdevs);
        } finally {
            stop(p);
        }
    }

    @Test
    void anRpcSocketThatCannotBeCreatedStopsStartUp() throws Exception {
        String out = run(2, "serve", "-S", dir.toString(), "-r", dir.resolve("no/such/dir/rpc.sock").toString());
        assertThat(out).contains("cannot create the RPC socket").contains("no/such/dir").contains("does not exist").contains("--no-rpc");
        assertThat(Files.list(dir).toList()).isEmpty();
        // A live server's socket is not taken over.
        StringBuilder first = new StringBuilder();
        Path rpcSock = dir.resolve("rpc.sock");
        Process p = serve(first, "-S", dir.toString(), "--empty", "-r", rpcSock.toString());
        try {
            Path other = Files.createDirectory(dir.resolve("other"));
            assertThat(run(2, "serve", "-S", other.toString(), "-r", rpcSock.toString())).contains("another process is serving on it");
            assertThat(Files.list(other).toList()).isEmpty();
        } finally {
            stop(p);
        }
    }

    @Test
    void scsiTypeServesTheDiskAsTargetZero() throws Exception {
        Process p = jvhost("serve", "-S", dir.toString(), "--type", "scsi", "--null", "64M", "--no-rpc").redirectErrorStream(true).start();
        BufferedReader r = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8));
        StringBuilder out = new StringBuilder();
        String line;
        while ((line = r.readLine()) != null) {
            out.append(line).append('\n');
            if (line.startsWith("Stop with")) break;
        }
        try {
            assertThat(out.toString()).contains("vhost-user-scsi-pci,chardev=vhost0,num_queues=2");
            try (io.jvhost.initiator.ScsiInitiator ini = io.jvhost.initiator.ScsiInitiator.connect(dir.resolve("vhost.0").toString(), 1, 64, 1 << 16)) {
                var resp = ini.command(0, 0, 0, new byte[] {0x12, 0, 0, 0, 36, 0}, 0, 36);
                assertThat(resp.status()).isZero();
                byte[] model = new byte[16];
                java.lang.foreign.MemorySegment.copy(ini.data(), java.lang.foreign.ValueLayout.JAVA_BYTE, 16, model, 0, 16);
                assertThat(new String(model, StandardCharsets.US_ASCII).trim()).isEqualTo("Null disk");
            }
        } finally {
            p.destroy();
            assertThat(p.waitFor(30, TimeUnit.SECONDS)).isTrue();
        }
        assertThat(run(2, "serve", "-S", dir.toString(), "--type", "nvme", "--no-rpc")).contains("--type must be blk or scsi");
    }

    /** One clear line: no stack trace, no "failed unexpectedly". */
    static void assertOneLineError(String out) {
        assertThat(out).doesNotContain("Exception").doesNotContain("\tat ").doesNotContain("failed unexpectedly");
    }

    @Test
    void aFileWhereAControllerSocketShouldGoIsKeptAndStartUpStops() throws Exception {
        // Issue 15 item 3: mkdir D; echo precious > D/vhost.0; jvhost serve -S D deleted the file.
        Path d = Files.createDirectory(dir.resolve("D"));
        Path precious = Files.writeString(d.resolve("vhost.0"), "precious\n");
        String out = run(2, "serve", "-S", d.toString(), "--malloc", "16M", "--no-rpc");
        assertThat(out).contains(precious.toString()).contains("a regular file").contains("not a socket");
        assertOneLineError(out);
        assertThat(Files.readString(precious)).isEqualTo("precious\n");
    }

    @Test
    void aSecondJvhostOnALiveControllerSocketIsOneLineWithExitCode2() throws Exception {
        StringBuilder first = new StringBuilder();
        Process p = serve(first, "-S", dir.toString(), "--malloc", "16M", "--no-rpc");
        try {
            // Owner-only whatever the umask.
            assertThat(java.nio.file.attribute.PosixFilePermissions.toString(Files.getPosixFilePermissions(dir.resolve("vhost.0")))).isEqualTo("rw-------");
            String out = run(2, "serve", "-S", dir.toString(), "--malloc", "16M", "--no-rpc");
            assertThat(out).contains("another process is serving on it");
            assertOneLineError(out);
            // The first one still serves.
            try (BlkInitiator ini = BlkInitiator.connect(dir.resolve("vhost.0").toString(), 1, 64, 1 << 20)) {
                assertThat(ini.write(0, 0, 4096)).isEqualTo(S_OK);
            }
        } finally {
            stop(p);
        }
    }

    @Test
    void socketModeAndGroupOptionsApplyToEverySocket() throws Exception {
        StringBuilder out = new StringBuilder();
        Path rpcSock = dir.resolve("rpc.sock");
        Process p = serve(out, "-S", dir.toString(), "--malloc", "16M", "-r", rpcSock.toString(), "--socket-mode", "0660", "--socket-group", "daemon");
        try {
            for (Path s : List.of(dir.resolve("vhost.0"), rpcSock)) {
                assertThat(java.nio.file.attribute.PosixFilePermissions.toString(Files.getPosixFilePermissions(s))).as(s.toString()).isEqualTo("rw-rw----");
                assertThat((Integer) Files.getAttribute(s, "unix:gid")).as(s.toString()).isEqualTo(1);
            }
        } finally {
            stop(p);
        }
        String bad = run(2, "serve", "-S", dir.toString(), "--no-rpc", "--socket-mode", "rw");
        assertThat(bad).contains("octal");
        assertOneLineError(bad);
        assertThat(run(2, "serve", "-S", dir.toString(), "--no-rpc", "--socket-group", "no-such-group-xyz")).contains("no-such-group-xyz");
    }

    @Test
    void anImpossibleRamDiskAndAnEndlessConfigStopStartUpWithOneLine() throws Exception {
        String huge = run(2, "serve", "-S", dir.toString(), "--malloc", "1024T", "--no-rpc");
        assertThat(huge).contains("bdev_malloc_create").contains("Cannot allocate memory").contains("1.0 PiB");
        assertOneLineError(huge);
        String zero = run(2, "serve", "-S", dir.toString(), "--json", "/dev/zero", "--no-rpc");
        assertThat(zero).contains("/dev/zero").contains("larger than 16 MiB");
        assertOneLineError(zero);
        assertThat(Files.list(dir).toList()).isEmpty();
    }
}
