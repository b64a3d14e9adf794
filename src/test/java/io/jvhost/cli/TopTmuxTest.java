package io.jvhost.cli;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * {@code jvhost top} as a person uses it: in a real terminal (a detached tmux session of fixed
 * size) against a running {@code jvhost serve}; the screen is read with {@code capture-pane},
 * keys are typed with {@code send-keys}. Needs tmux (the test command installs it).
 */
@Tag("tmux")
class TopTmuxTest {
    @TempDir
    Path dir;

    /** A tmux server of its own, so the test never touches a user's sessions. */
    private final String server = "jvhost-top-test-" + ProcessHandle.current().pid();
    private Process serve;

    static boolean haveTmux() {
        try {
            Process p = new ProcessBuilder("tmux", "-V").redirectErrorStream(true).start();
            p.getInputStream().readAllBytes();
            return p.waitFor(10, TimeUnit.SECONDS) && p.exitValue() == 0;
        } catch (IOException | InterruptedException e) {
            return false;
        }
    }

    private String tmux(String... args) throws Exception {
        List<String> cmd = new ArrayList<>(List.of("tmux", "-L", server, "-f", "/dev/null"));
        cmd.addAll(List.of(args));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertThat(p.waitFor(30, TimeUnit.SECONDS)).isTrue();
        assertThat(p.exitValue()).as("tmux %s: %s", args, out).isZero();
        return out;
    }

    private String screen() throws Exception {
        return tmux("capture-pane", "-p", "-t", "top");
    }

    private static String shellQuote(String s) {
        return "'" + s.replace("'", "'\\''") + "'";
    }

    @AfterEach
    void cleanUp() throws Exception {
        try {
            new ProcessBuilder("tmux", "-L", server, "kill-server").redirectErrorStream(true).start().waitFor(30, TimeUnit.SECONDS);
        } finally {
            if (serve != null) ServeCommandTest.stop(serve);
        }
    }

    @Test
    void topShowsTheViewsSwitchesOnKeysAndQuitsOnQ() throws Exception {
        assumeTrue(haveTmux(), "tmux is not installed: skipping the terminal test of 'jvhost top' (scripts/install-test-deps.sh installs it)");
        Path rpcSock = dir.resolve("rpc.sock");
        serve = ServeCommandTest.serve(new StringBuilder(), "-S", dir.toString(), "--malloc", "16M", "-r", rpcSock.toString(), "--reactors", "2");

        // The same JVM and class path as this test; the exit status is printed when top returns.
        String top = ServeCommandTest.jvhost("top", "-s", rpcSock.toString(), "-d", "0.5").command().stream()
                .map(TopTmuxTest::shellQuote).collect(Collectors.joining(" "));
        Path script = Files.writeString(dir.resolve("run-top.sh"), top + "\necho \"top exited with status $?\"\nexec sleep 600\n");
        tmux("new-session", "-d", "-s", "top", "-x", "100", "-y", "24", "bash " + shellQuote(script.toString()));

        await().atMost(Duration.ofSeconds(90)).pollInterval(Duration.ofMillis(200)).untilAsserted(() ->
                assertThat(screen()).contains("jvhost top - " + rpcSock).contains("[1 Reactors]").containsPattern("reactor_0 .* vhost\\.0")
                        .contains("reactor_1").contains("q: quit"));
        String first = screen();
        // A 100 x 24 terminal: no line wider, the key help on the last line.
        List<String> lines = first.lines().toList();
        assertThat(lines).allMatch(l -> l.length() <= 100);
        assertThat(lines.get(23)).startsWith("1/2/3 or Tab: view");

        tmux("send-keys", "-t", "top", "2");
        await().atMost(Duration.ofSeconds(30)).pollInterval(Duration.ofMillis(200)).untilAsserted(() ->
                assertThat(screen()).contains("[2 Controllers]").containsPattern("CONTROLLER +CPUMASK +SESSION +IOPSv").containsPattern("vhost\\.0 +0x1 "));
        tmux("send-keys", "-t", "top", "Tab");
        await().atMost(Duration.ofSeconds(30)).pollInterval(Duration.ofMillis(200)).untilAsserted(() ->
                assertThat(screen()).contains("[3 Bdevs]").containsPattern("Malloc0 +0 "));
        tmux("send-keys", "-t", "top", "s");
        await().atMost(Duration.ofSeconds(30)).pollInterval(Duration.ofMillis(200)).untilAsserted(() ->
                assertThat(screen()).contains("sort: READ/s (desc)").contains("READ/sv"));

        tmux("send-keys", "-t", "top", "q");
        await().atMost(Duration.ofSeconds(30)).pollInterval(Duration.ofMillis(200)).untilAsserted(() ->
                assertThat(screen()).contains("top exited with status 0"));
        // Back on the normal screen: the live view is gone.
        assertThat(screen()).doesNotContain("[3 Bdevs]").doesNotContain("q: quit");
    }
}
