package io.jvhost.cli;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The errors a user meets first, each one line that names the fix (README "Errors"). Others live
 * beside their features: old Java (ContribTest), guest memory not shared (SharedMemoryCheckTest),
 * too few hugepages (HugePagesBenchTest), a pid file's missing directory (ServiceNotifyTest).
 */
class ErrorMessagesTest {
    @TempDir
    Path dir;

    /** The whole output is exactly one line (no stack trace, no second line). */
    static String oneLine(String out) {
        assertThat(out.strip().lines().count()).as(out).isEqualTo(1);
        ServeCommandTest.assertOneLineError(out);
        return out.strip();
    }

    @Test
    void socketDirectoryMissing() throws Exception {
        Path missing = dir.resolve("run/jvhost");
        assertThat(oneLine(ServeCommandTest.run(2, "serve", "-S", missing.toString(), "--no-rpc")))
                .isEqualTo("jvhost: socket directory " + missing + " does not exist (create it: mkdir -p " + missing + "; or pass -S DIR)");
    }

    @Test
    void socketInUseNamesTheProcessServingOnIt() throws Exception {
        StringBuilder out = new StringBuilder();
        Process first = ServeCommandTest.serve(out, "-S", dir.toString(), "--null", "16M", "--no-rpc");
        try {
            String line = oneLine(ServeCommandTest.run(2, "serve", "-S", dir.toString(), "--null", "16M", "--no-rpc"));
            assertThat(line).isEqualTo("jvhost: vhost_create_blk_controller: cannot create socket " + dir.resolve("vhost.0") + ": another process is serving on it (pid "
                    + first.pid() + ", java; stop it, or choose another path)");
        } finally {
            ServeCommandTest.stop(first);
        }
    }

    @Test
    void badConfigSaysFileLineAndColumn() throws Exception {
        Path cfg = Files.writeString(dir.resolve("cfg.json"), "{\n  \"subsystems\": [\n    { \"subsystem\": \"bdev\", \"config\": [ }\n  ]\n}\n");
        assertThat(oneLine(ServeCommandTest.run(2, "serve", "-S", dir.toString(), "--no-rpc", "--json", cfg.toString())))
                .startsWith("jvhost: bad config: " + cfg + ":3:40: not valid JSON: Unexpected close marker '}': expected ']'")
                .contains("(for Array starting at line 3, column 38)").doesNotContain("Source").endsWith("; fix the file there");
        Path none = dir.resolve("nope.json");
        assertThat(oneLine(ServeCommandTest.run(2, "serve", "-S", dir.toString(), "--no-rpc", "--json", none.toString())))
                .isEqualTo("jvhost: bad config: " + none + ": cannot read: no such file (check the path; 'jvhost rpc save_config -o FILE' writes one)");
    }

    @Test
    void rpcWithoutAServerSaysWhereItLookedAndWhatToStart() {
        Path sock = dir.resolve("rpc.sock");
        RpcCommandTest.Run r = RpcCommandTest.raw("rpc", "-s", sock.toString(), "vhost_get_controllers");
        assertThat(r.exit()).isEqualTo(1);
        assertThat(oneLine(r.err())).isEqualTo("jvhost rpc: RPC socket " + sock + " does not exist (is 'jvhost serve' running? choose the socket with -s)");
    }

    @Test
    void benchWithoutATargetSaysToStartOne() throws Exception {
        Path sock = dir.resolve("vhost.0");
        assertThat(oneLine(ServeCommandTest.run(1, "bench", "-s", sock.toString(), "--time", "1")))
                .isEqualTo("jvhost bench: no vhost-user socket at " + sock + " (start the target first, e.g. jvhost serve; -s is a controller's socket such as ./vhost.0)");
    }
}
