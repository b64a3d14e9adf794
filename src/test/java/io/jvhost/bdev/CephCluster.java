package io.jvhost.bdev;

import org.junit.jupiter.api.extension.BeforeAllCallback;
import org.junit.jupiter.api.extension.ExtensionContext;

import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * A real single-node Ceph cluster (mon + bluestore OSD on a sparse file, 127.0.0.1, auth none)
 * for the tests tagged {@code ceph}, started once per test run by {@code scripts/ceph-cluster.sh}
 * under {@code target/ceph-test} on free mon ports, and stopped when the run ends (JUnit closes
 * it with the root store; a shutdown hook as well, in case the JVM dies early). Tests without the
 * Ceph packages installed are skipped with the reason ({@code scripts/install-test-deps.sh}
 * installs them; {@code ./test.sh} runs that first).
 */
public final class CephCluster implements BeforeAllCallback {
    private static final Path SCRIPT = Path.of("scripts/ceph-cluster.sh").toAbsolutePath();
    public static final Path DIR = Path.of("target/ceph-test").toAbsolutePath();

    private static Instance instance;

    @Override
    public void beforeAll(ExtensionContext context) {
        assumeTrue(Files.isExecutable(Path.of("/usr/bin/ceph-osd")) && Files.isExecutable(Path.of("/usr/bin/ceph-mon")),
                "Ceph is not installed (scripts/install-test-deps.sh installs ceph-mon ceph-osd ceph-common librbd1)");
        context.getRoot().getStore(ExtensionContext.Namespace.GLOBAL).getOrComputeIfAbsent("jvhost-ceph-cluster", k -> start(), Instance.class);
    }

    /** The running cluster (after {@link #beforeAll}). */
    public static Instance get() {
        if (instance == null) throw new IllegalStateException("no Ceph cluster: annotate the test with @ExtendWith(CephCluster.class)");
        return instance;
    }

    private static synchronized Instance start() {
        if (instance != null) return instance;
        try {
            int[] ports = freePorts(2);
            long t0 = System.nanoTime();
            run(List.of("start"), ports, 180);
            long ms = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
            System.err.println("CephCluster: up in " + ms + " ms under " + DIR + " (mon ports " + ports[0] + "/" + ports[1] + ")");
            instance = new Instance(ports);
            Runtime.getRuntime().addShutdownHook(new Thread(instance::stopQuietly, "ceph-cluster-stop"));
            return instance;
        } catch (IOException e) {
            throw new IllegalStateException("cannot start the Ceph test cluster: " + e.getMessage(), e);
        }
    }

    private static int[] freePorts(int n) throws IOException {
        List<ServerSocket> held = new ArrayList<>();
        try {
            int[] p = new int[n];
            for (int i = 0; i < n; i++) {
                ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress());
                held.add(s);
                p[i] = s.getLocalPort();
            }
            return p;
        } finally {
            for (ServerSocket s : held) s.close();
        }
    }

    static String run(List<String> args, int[] ports, long timeoutSeconds) throws IOException {
        List<String> cmd = new ArrayList<>();
        cmd.add("bash");
        cmd.add(SCRIPT.toString());
        cmd.addAll(args);
        cmd.add(DIR.toString());
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true);
        pb.environment().put("MON_V2_PORT", Integer.toString(ports[0]));
        pb.environment().put("MON_V1_PORT", Integer.toString(ports[1]));
        pb.environment().put("CEPH_CONF", DIR.resolve("ceph.conf").toString());
        return exec(pb, String.join(" ", args), timeoutSeconds);
    }

    static String exec(ProcessBuilder pb, String what, long timeoutSeconds) throws IOException {
        Process p = pb.start();
        try {
            byte[] out = p.getInputStream().readAllBytes();
            if (!p.waitFor(timeoutSeconds, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                throw new IOException(what + ": timed out");
            }
            String s = new String(out, StandardCharsets.UTF_8);
            if (p.exitValue() != 0) throw new IOException(what + " failed (exit " + p.exitValue() + "): " + s);
            return s;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException(what + ": interrupted");
        }
    }

    /** A running cluster; closed (stopped) at the end of the test run. */
    public static final class Instance implements AutoCloseable {
        private final int[] ports;
        private volatile boolean stopped;

        Instance(int[] ports) {
            this.ports = ports;
        }

        public String confFile() {
            return DIR.resolve("ceph.conf").toString();
        }

        public String monHost() {
            return "[v2:127.0.0.1:" + ports[0] + ",v1:127.0.0.1:" + ports[1] + "]";
        }

        /** Runs a Ceph command-line tool (rbd, ceph) against this cluster; returns its output. */
        public String tool(String... args) throws IOException {
            List<String> cmd = new ArrayList<>(List.of(args));
            ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(false);
            pb.redirectError(ProcessBuilder.Redirect.DISCARD);
            pb.environment().put("CEPH_CONF", confFile());
            return exec(pb, String.join(" ", args), 300);
        }

        /** A new image of {@code mib} MiB in pool rbd. */
        public void createImage(String name, long mib) throws IOException {
            tool("rbd", "create", "--size", mib + "M", "rbd/" + name);
        }

        public void removeImage(String name) throws IOException {
            tool("rbd", "rm", "--no-progress", "rbd/" + name);
        }

        /** The image's content, through {@code rbd export} (librbd's own reader, not jvhost). */
        public byte[] export(String name) throws IOException {
            Path out = DIR.resolve("export-" + name + ".img");
            Files.deleteIfExists(out);
            tool("rbd", "export", "--no-progress", "rbd/" + name, out.toString());
            byte[] b = Files.readAllBytes(out);
            Files.delete(out);
            return b;
        }

        /** Outage tests: {@code stop-osd}, {@code start-osd}, {@code stop-mon}, {@code start-mon}. */
        public void script(String command) throws IOException {
            run(List.of(command), ports, 120);
        }

        void stopQuietly() {
            if (stopped) return;
            stopped = true;
            try {
                run(List.of("stop"), ports, 60);
            } catch (IOException e) {
                System.err.println("CephCluster: stop failed: " + e.getMessage());
            }
        }

        @Override
        public void close() {
            stopQuietly();
        }
    }
}
