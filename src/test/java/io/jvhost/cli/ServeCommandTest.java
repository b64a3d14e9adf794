package io.jvhost.cli;

import io.jvhost.initiator.BlkInitiator;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
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
        Process p = jvhost("serve", "-S", dir.toString(), "--malloc", "16M").redirectErrorStream(true).start();
        BufferedReader r = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8));
        StringBuilder out = new StringBuilder();
        String line;
        while ((line = r.readLine()) != null) {
            out.append(line).append('\n');
            if (line.startsWith("Stop with")) break;
        }
        assertThat(out.toString()).contains("vhost-user-blk-pci,chardev=vhost0").contains("path=" + dir.resolve("vhost.0"))
                .contains("memory-backend-memfd");
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
        assertThat(serve).contains("--socket-dir").contains("--json").contains("--malloc").contains("--busy-poll");
    }

    @Test
    void badConfigStopsStartUpWithTheReason() throws Exception {
        Path cfg = dir.resolve("bad.json");
        Files.writeString(cfg, "{\"subsystems\":[{\"subsystem\":\"bdev\",\"config\":[{\"method\":\"bdev_malloc_create\",\"params\":{\"name\":\"M\"}}]}]}");
        String out = run(2, "serve", "-S", dir.toString(), "--json", cfg.toString());
        assertThat(out).contains("bad config").contains("config[0]").contains("missing required parameter 'num_blocks'");
        assertThat(Files.list(dir).filter(f -> !f.equals(cfg)).toList()).isEmpty();
    }

    @Test
    void badSizesAndDirectoriesAreClearErrors() throws Exception {
        assertThat(run(2, "serve", "-S", dir.resolve("nope").toString())).contains("does not exist");
        assertThat(run(2, "serve", "-S", dir.toString(), "--malloc", "lots")).contains("not a size");
    }

    @Test
    void scsiTypeServesTheDiskAsTargetZero() throws Exception {
        Process p = jvhost("serve", "-S", dir.toString(), "--type", "scsi", "--null", "64M").redirectErrorStream(true).start();
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
        assertThat(run(2, "serve", "-S", dir.toString(), "--type", "nvme")).contains("--type must be blk or scsi");
    }
}
