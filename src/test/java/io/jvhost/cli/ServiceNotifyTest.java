package io.jvhost.cli;

import io.jvhost.rpc.RpcClient;
import io.jvhost.sys.UnixDatagram;
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

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

/** {@code serve} under a service manager: sd_notify over a datagram socket the test binds, and --pid-file. */
class ServiceNotifyTest {
    @TempDir
    Path dir;

    /** Polls the fake NOTIFY_SOCKET until a datagram arrives. */
    static String next(UnixDatagram notify) {
        List<byte[]> got = new ArrayList<>();
        await().atMost(Duration.ofSeconds(90)).pollInterval(Duration.ofMillis(50)).until(() -> {
            byte[] b = notify.poll();
            if (b != null) got.add(b);
            return !got.isEmpty();
        });
        return new String(got.getFirst(), StandardCharsets.UTF_8);
    }

    static Process serveWith(String notifySocket, String... args) throws Exception {
        List<String> a = new ArrayList<>(List.of("serve"));
        a.addAll(List.of(args));
        ProcessBuilder pb = ServeCommandTest.jvhost(a.toArray(new String[0])).redirectErrorStream(true)
                .redirectOutput(ProcessBuilder.Redirect.DISCARD);
        pb.environment().put("NOTIFY_SOCKET", notifySocket);
        return pb.start();
    }

    @Test
    void readyOnlyOnceTheRpcSocketAcceptsThenStoppingAndThePidFileGoes() throws Exception {
        Path rpcSock = dir.resolve("rpc.sock");
        Path pidFile = dir.resolve("jvhost.pid");
        try (UnixDatagram notify = UnixDatagram.bind(dir.resolve("notify.sock").toString())) {
            Process p = serveWith(dir.resolve("notify.sock").toString(), "-S", dir.toString(), "--malloc", "16M", "-r", rpcSock.toString(),
                    "--pid-file", pidFile.toString());
            try {
                String ready = next(notify);
                // The first thing the service manager hears is READY=1, and by then everything serves.
                assertThat(ready.lines().toList()).contains("READY=1", "MAINPID=" + p.pid())
                        .anyMatch(l -> l.startsWith("STATUS=serving 1 controller(s); JSON-RPC on " + rpcSock));
                try (RpcClient c = RpcClient.connect(rpcSock, Duration.ofSeconds(30))) {
                    assertThat(c.call("vhost_get_controllers", null).at("/0/ctrlr").asText()).isEqualTo("vhost.0");
                }
                assertThat(dir.resolve("vhost.0")).exists();
                assertThat(Files.readString(pidFile)).isEqualTo(p.pid() + "\n");
                assertThat(notify.poll()).as("one READY=1 only").isNull();
            } finally {
                p.destroy(); // SIGTERM, as systemctl stop sends
            }
            assertThat(next(notify)).startsWith("STOPPING=1\n");
            assertThat(p.waitFor(30, TimeUnit.SECONDS)).isTrue();
            assertThat(p.exitValue()).isIn(0, 143);
            assertThat(pidFile).doesNotExist();
            assertThat(rpcSock).doesNotExist();
        }
    }

    @Test
    void anAbstractNotifySocketIsReachedToo() throws Exception {
        String name = "@jvhost-notify-test-" + ProcessHandle.current().pid() + "-" + System.nanoTime();
        try (UnixDatagram notify = UnixDatagram.bind(name)) {
            Process p = serveWith(name, "-S", dir.toString(), "--null", "16M", "--no-rpc");
            try {
                assertThat(next(notify)).startsWith("READY=1\nSTATUS=serving 1 controller(s)\n");
            } finally {
                p.destroy();
                assertThat(p.waitFor(30, TimeUnit.SECONDS)).isTrue();
            }
        }
    }

    @Test
    void aNotifySocketNobodyListensOnIsOneWarningAndServingGoesOn() throws Exception {
        ProcessBuilder pb = ServeCommandTest.jvhost("serve", "-S", dir.toString(), "--null", "16M", "--no-rpc").redirectErrorStream(true);
        pb.environment().put("NOTIFY_SOCKET", dir.resolve("nobody.sock").toString());
        Process p = pb.start();
        BufferedReader r = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8));
        try {
            String line;
            StringBuilder out = new StringBuilder();
            while ((line = r.readLine()) != null && !line.contains("NOTIFY_SOCKET")) out.append(line).append('\n');
            assertThat(line).as(out.toString()).isNotNull().contains("cannot notify the service manager").contains("serving anyway");
            assertThat(p.isAlive()).isTrue();
        } finally {
            p.destroy();
            assertThat(p.waitFor(30, TimeUnit.SECONDS)).isTrue();
        }
    }

    @Test
    void aPidFileInAMissingDirectoryStopsStartUpWithTheFix() throws Exception {
        String out = ServeCommandTest.run(2, "serve", "-S", dir.toString(), "--no-rpc", "--pid-file", dir.resolve("no/such/jvhost.pid").toString());
        assertThat(out.strip()).isEqualTo("jvhost: the directory of --pid-file " + dir.resolve("no/such/jvhost.pid")
                + " does not exist (create it, e.g. with RuntimeDirectory= in the unit, or choose another path)");
        assertThat(Files.list(dir).toList()).isEmpty();
    }
}
