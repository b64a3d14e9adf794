package io.jvhost.qemu;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import io.jvhost.rpc.RpcClient;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;

import static org.awaitility.Awaitility.await;

/**
 * {@code jvhost serve} as a child process (this JVM's class path), for tests that kill it
 * ({@code kill -9}) or stop it ({@code SIGTERM}) and start it again on the same socket. Its
 * output is appended to one log file across restarts; each start waits for the quick-start
 * banner ("Stop with"), which comes after the controllers listen.
 */
public final class JvhostProcess implements AutoCloseable {
    private static final Set<Process> LIVE = ConcurrentHashMap.newKeySet();

    static {
        Runtime.getRuntime().addShutdownHook(new Thread(() -> LIVE.forEach(Process::destroyForcibly), "jvhost-process-reaper"));
    }

    private final List<String> args;
    private final Path log;
    private final Path rpcSocket;
    private Process process;
    private int starts;

    /** {@code args}: after {@code serve}; an RPC socket in {@code dir} is added. */
    public JvhostProcess(Path dir, String... args) {
        this.log = dir.resolve("jvhost.log");
        this.rpcSocket = dir.resolve("jvhost-rpc.sock");
        this.args = List.of(args);
    }

    public Path log() { return log; }
    public Process process() { return process; }

    /** Starts it and waits until it serves. */
    public JvhostProcess start() throws IOException {
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--enable-native-access=ALL-UNNAMED", "-cp", System.getProperty("java.class.path"), "io.jvhost.cli.Main", "serve",
                "-r", rpcSocket.toString()));
        cmd.addAll(args);
        long mark = Files.exists(log) ? Files.size(log) : 0;
        Files.writeString(log, "# start " + (++starts) + ": " + String.join(" ", cmd) + "\n", StandardCharsets.UTF_8,
                java.nio.file.StandardOpenOption.CREATE, java.nio.file.StandardOpenOption.APPEND);
        process = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile())).start();
        LIVE.add(process);
        Process p = process;
        await().atMost(Duration.ofSeconds(90)).pollInterval(Duration.ofMillis(100)).until(() -> {
            if (!p.isAlive()) throw new AssertionError("jvhost exited with " + p.exitValue() + "; see " + log);
            return Files.readString(log).substring((int) mark).contains("Stop with");
        });
        return this;
    }

    /** {@code kill -9}: no drain, no clean-up; the socket file stays. */
    public void kill9() throws InterruptedException {
        process.destroyForcibly();
        process.waitFor(30, TimeUnit.SECONDS);
        LIVE.remove(process);
    }

    /** SIGTERM: the graceful stop (drains in-flight requests); returns the exit code. */
    public int sigterm() throws InterruptedException {
        process.destroy();
        if (!process.waitFor(60, TimeUnit.SECONDS)) throw new AssertionError("jvhost did not stop within 60 s of SIGTERM; see " + log);
        LIVE.remove(process);
        return process.exitValue();
    }

    /** The highest in_flight of any queue of any controller now (vhost_get_stats), or -1 if it cannot be read. */
    public int maxInFlight() {
        try (RpcClient c = RpcClient.connect(rpcSocket, Duration.ofSeconds(2))) {
            JsonNode r = c.call("vhost_get_stats", JsonNodeFactory.instance.objectNode());
            int max = 0;
            for (JsonNode ctrl : r) for (JsonNode q : ctrl.path("session").path("queues")) max = Math.max(max, q.path("in_flight").asInt());
            return max;
        } catch (IOException | RuntimeException e) {
            return -1;
        }
    }

    /** How often the log says a ring resubmitted requests a killed predecessor left in flight. */
    public long resubmissions() throws IOException {
        return Files.readAllLines(log).stream().filter(l -> l.contains("resubmitting")).count();
    }

    @Override
    public void close() {
        if (process != null && process.isAlive()) {
            process.destroyForcibly();
            try {
                process.waitFor(30, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        if (process != null) LIVE.remove(process);
    }
}
