package io.jvhost.cli;

import io.jvhost.rpc.JsonConfig;
import io.jvhost.rpc.Methods;
import io.jvhost.runtime.IdleStrategy;
import io.jvhost.vhost.VhostTarget;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/** The files in contrib/ and the launcher: the sample config loads, the unit's command line parses and verifies, the Java check speaks. */
class ContribTest {
    static final Path UNIT = Path.of("contrib/systemd/jvhost.service");
    static final Path SAMPLE = Path.of("contrib/jvhost.json");

    @TempDir
    Path dir;

    /** ExecStart= of the unit, continuation lines joined, split into words. */
    static List<String> execStart() throws Exception {
        String unit = Files.readString(UNIT).replace("\\\n", " ");
        String line = unit.lines().filter(l -> l.startsWith("ExecStart=")).findFirst().orElseThrow();
        return Arrays.asList(line.substring("ExecStart=".length()).trim().split("\\s+"));
    }

    @Test
    void theSampleConfigLoads() throws Exception {
        try (VhostTarget target = new VhostTarget(dir, 1, IdleStrategy.BACKOFF)) {
            int n = JsonConfig.load(SAMPLE, new Methods(target));
            assertThat(n).isEqualTo(5);
            assertThat(target.controllers()).extracting(c -> c.name()).containsExactlyInAnyOrder("vhost.0", "scsi.0");
        }
    }

    @Test
    void theUnitsCommandLineIsServeWithOptionsServeHas() throws Exception {
        List<String> words = execStart();
        assertThat(words.getFirst()).isEqualTo("/opt/jvhost/jvhost");
        assertThat(words.get(1)).isEqualTo("serve");
        CommandLine.ParseResult r = Main.commandLine().parseArgs(words.subList(1, words.size()).toArray(new String[0]));
        ServeCommand serve = (ServeCommand) r.subcommand().commandSpec().userObject();
        assertThat(serve.json).isEqualTo(Path.of("/etc/jvhost/jvhost.json"));
        assertThat(serve.pidFile).isEqualTo(Path.of("/run/jvhost/jvhost.pid"));
        assertThat(serve.rpcSocket.getParent()).isEqualTo(serve.socketDir).isEqualTo(Path.of("/run/jvhost"));
        String unit = Files.readString(UNIT);
        assertThat(unit).contains("Type=notify").contains("RuntimeDirectory=jvhost").contains("SuccessExitStatus=143");
    }

    @Test
    void systemdAcceptsTheUnit() throws Exception {
        assumeTrue(Files.isExecutable(Path.of("/usr/bin/systemd-analyze")) || Files.isExecutable(Path.of("/bin/systemd-analyze")),
                "systemd-analyze is not installed: the unit is checked by parsing only");
        // The unit as installed, with its paths pointed at this checkout (verify wants ExecStart to exist).
        String unit = Files.readString(UNIT).replace("/opt/jvhost/jvhost", Path.of("jvhost").toAbsolutePath().toString())
                .replace("/etc/jvhost/jvhost.json", SAMPLE.toAbsolutePath().toString());
        Path u = Files.writeString(dir.resolve("jvhost.service"), unit);
        Process p = new ProcessBuilder("systemd-analyze", "verify", u.toString()).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertThat(p.waitFor(60, TimeUnit.SECONDS)).isTrue();
        assertThat(out).as("systemd-analyze verify").doesNotContain("jvhost.service");
        assertThat(p.exitValue()).as(out).isZero();
    }

    @Test
    void theLauncherRefusesAnOldJavaWithOneLineThatSaysWhatToSet() throws Exception {
        // A fake Java 17 as JAVA_HOME, and no JDK where the launcher looks for others.
        Path old = Files.createDirectories(dir.resolve("jdk-17/bin"));
        for (String tool : List.of("java", "javac")) {
            Path t = Files.writeString(old.resolve(tool), "#!/bin/sh\necho '    java.specification.version = 17' >&2\n");
            assertThat(t.toFile().setExecutable(true)).isTrue();
        }
        Path empty = Files.createDirectory(dir.resolve("jvm"));
        ProcessBuilder pb = new ProcessBuilder("bash", Path.of("jvhost").toAbsolutePath().toString(), "--version");
        pb.environment().put("JAVA_HOME", old.getParent().toString());
        pb.environment().put("JVHOST_JVM_DIR", empty.toString());
        Process p = pb.start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        String err = new String(p.getErrorStream().readAllBytes(), StandardCharsets.UTF_8);
        assertThat(p.waitFor(60, TimeUnit.SECONDS)).isTrue();
        assertThat(p.exitValue()).isEqualTo(1);
        assertThat(out).isEmpty();
        assertThat(err.lines().toList()).singleElement().asString().startsWith("jvhost: needs Java 25 or newer: JAVA_HOME=" + old.getParent() + " is Java 17;")
                .contains("set JAVA_HOME");
    }
}
