package io.jvhost.cli;

import io.jvhost.rpc.JsonConfig;
import io.jvhost.rpc.JsonRpcServer;
import io.jvhost.rpc.Methods;
import io.jvhost.rpc.RpcException;
import io.jvhost.runtime.IdleStrategy;
import io.jvhost.sys.SocketAccess;
import io.jvhost.vhost.Controller;
import io.jvhost.vhost.VhostTarget;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;

/** {@code jvhost serve}: start the target. */
@Command(name = "serve", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Start the vhost-user target and serve until SIGINT/SIGTERM.", "",
                "With no options: a 256 MiB RAM disk (Malloc0) exposed as vhost-user-blk controller",
                "'vhost.0', its socket in the current directory, and the QEMU command line to use it.",
                "With --json: an SPDK-style JSON config (subsystems bdev / vhost_blk / vhost_scsi, SPDK method names).",
                "Manage it at run time with 'jvhost rpc' (or SPDK's rpc.py) on the --rpc-socket.", ""})
final class ServeCommand implements Callable<Integer> {
    static volatile boolean keepRunning;

    @Option(names = {"-S", "--socket-dir"}, paramLabel = "DIR", description = "Directory for controller sockets (named after the controller). Default: current directory.")
    Path socketDir = Path.of(".");

    @Option(names = {"-c", "--json"}, paramLabel = "FILE", description = "Load an SPDK-style JSON config (bdev_malloc_create, bdev_null_create, bdev_aio_create, vhost_create_blk_controller).")
    Path json;

    @Option(names = "--malloc", paramLabel = "SIZE", description = "Without --json: RAM disk size, e.g. 256M, 2G (default 256M).")
    String mallocSize;

    @Option(names = "--file", paramLabel = "PATH", description = "Without --json: serve this file or block device instead of a RAM disk.")
    Path file;

    @Option(names = "--null", paramLabel = "SIZE", description = "Without --json: serve a null disk of this size (no data kept; for benchmarks).")
    String nullSize;

    @Option(names = "--block-size", paramLabel = "BYTES", description = "Without --json: logical block size (default 512).")
    int blockSize = 512;

    @Option(names = "--ctrlr", paramLabel = "NAME", description = "Without --json: controller (and socket) name (default vhost.0).")
    String ctrlr = "vhost.0";

    @Option(names = {"-t", "--type"}, paramLabel = "TYPE", description = "Without --json: blk (default; vhost-user-blk) or scsi (vhost-user-scsi, the disk as target 0).")
    String type = "blk";

    @Option(names = "--readonly", description = "Without --json: expose the disk read-only (blk).")
    boolean readonly;

    @Option(names = "--num-queues", paramLabel = "N", description = "Without --json: queues offered (GET_QUEUE_NUM, default 16); QEMU uses num-queues of them.")
    int numQueues = 16;

    @Option(names = "--queue-placement", paramLabel = "MODE", description = "Without --json: one-reactor (default, as SPDK: every queue on the least-loaded reactor) or spread (the queues round-robin over all reactors).")
    String queuePlacement = "one-reactor";

    @Option(names = "--empty", description = "Without --json: start with no disk and no controller (create them through RPC).")
    boolean empty;

    @Option(names = "--reactors", paramLabel = "N", description = "Reactor (poll) threads (default 1). Controllers pick one with cpumask.")
    int reactors = 1;

    @Option(names = {"-m", "--cpumask"}, paramLabel = "MASK", description = "Cores for reactors, one pinned reactor per core (SPDK's -m): hex 0x3 or a list [0,2]. Overrides --reactors.")
    String cpumask;

    @Option(names = {"-r", "--rpc-socket"}, paramLabel = "PATH", description = "JSON-RPC socket for 'jvhost rpc' and SPDK's rpc.py (default " + JsonRpcServer.DEFAULT_SOCKET + ").")
    Path rpcSocket = Path.of(JsonRpcServer.DEFAULT_SOCKET);

    @Option(names = "--no-rpc", description = "Do not start the JSON-RPC server.")
    boolean noRpc;

    @Option(names = "--socket-mode", paramLabel = "OCTAL", description = "Mode of the controller and RPC sockets (default 0600: only this user may connect). E.g. 0660 with --socket-group.")
    String socketMode;

    @Option(names = "--socket-group", paramLabel = "GROUP", description = "Group (name or gid) given to the controller and RPC sockets, for a QEMU running as another user in that group.")
    String socketGroup;

    @Option(names = "--rpc-idle-timeout", paramLabel = "SECONDS", description = "Disconnect an RPC client that completes no request for this long (default 60; 0 = never).")
    long rpcIdleTimeout = JsonRpcServer.DEFAULT_IDLE_TIMEOUT.toSeconds();

    @Option(names = "--rpc-peer-check", negatable = true, defaultValue = "true", fallbackValue = "true",
            description = "Accept RPC clients only from root, the socket's owner or the --socket-group (SO_PEERCRED), whatever the file permissions (default on; --no-rpc-peer-check: permissions alone decide).")
    boolean rpcPeerCheck = true;

    @Option(names = "--busy-poll", description = "Never sleep when idle (lowest latency, one core at 100%% per reactor); the same as --idle poll.")
    boolean busyPoll;

    @Option(names = "--idle", paramLabel = "POLICY",
            description = "What a reactor does when a loop finds no work: poll (never sleep: lowest latency, a core at 100%% each), "
                    + "backoff (default: spin 100 us, yield 1 ms, then sleep on kicks: an idle target costs ~0 CPU), "
                    + "sleep (sleep at once, event-driven as qemu-storage-daemon: best when the reactors share cores with the threads "
                    + "their I/O needs, e.g. librbd's and a local Ceph's; each idle gap then costs a wake-up).")
    String idlePolicy;

    @Option(names = "--interrupt-mode", description = "SPDK's name for --idle sleep.")
    boolean interruptMode;

    // ---- metrics (Prometheus endpoint)
    @Option(names = "--metrics", paramLabel = "[ADDR:]PORT",
            description = "Serve Prometheus metrics at http://ADDR:PORT/metrics (off by default; a bare PORT binds 127.0.0.1). E.g. --metrics 9100 or --metrics 0.0.0.0:9100.")
    String metrics;

    /** Starts the metrics endpoint if asked; null otherwise. */
    private io.jvhost.metrics.MetricsServer startMetrics() {
        if (metrics == null) return null;
        return io.jvhost.metrics.MetricsServer.start(io.jvhost.metrics.MetricsServer.parse(metrics), io.jvhost.runtime.CounterRegistry.global());
    }
    // ---- end metrics

    @Option(names = {"-L", "--log-level"}, paramLabel = "LEVEL", description = "trace, debug, info (default), warn, error.")
    String logLevel = "info";

    // ---- running as a service (contrib/systemd/jvhost.service): sd_notify and a pid file ----
    @Option(names = "--pid-file", paramLabel = "PATH", description = "Write the process id to PATH once every controller listens and the RPC server is up; removed on exit. "
            + "(Under systemd, Type=notify needs none: serve sends READY=1 to $NOTIFY_SOCKET at the same moment.)")
    Path pidFile;

    @Override
    public Integer call() throws Exception {
        Logging.configure(logLevel);
        ServiceNotifier service = ServiceNotifier.fromEnvironment(pidFile);
        if (service.pidFileProblem() != null) {
            System.err.println("jvhost: " + service.pidFileProblem());
            return 2;
        }
        if (!Files.isDirectory(socketDir)) {
            System.err.println("jvhost: socket directory " + socketDir + " does not exist (create it: mkdir -p " + socketDir + "; or pass -S DIR)");
            return 2;
        }
        if (reactors < 1) {
            System.err.println("jvhost: --reactors must be at least 1");
            return 2;
        }
        if (rpcIdleTimeout < 0) {
            System.err.println("jvhost: --rpc-idle-timeout must be 0 (never) or a number of seconds");
            return 2;
        }
        SocketAccess access;
        try {
            access = SocketAccess.parse(socketMode, socketGroup);
        } catch (IllegalArgumentException e) {
            System.err.println("jvhost: " + e.getMessage());
            return 2;
        }
        Path dir = socketDir.toAbsolutePath().normalize();
        IdleStrategy idle;
        try {
            idle = idleStrategy();
        } catch (IllegalArgumentException e) {
            System.err.println("jvhost: " + e.getMessage());
            return 2;
        }
        VhostTarget target;
        try {
            target = cpumask != null ? new VhostTarget(dir, io.jvhost.vhost.Cpumask.parse(cpumask), idle) : new VhostTarget(dir, reactors, idle);
        } catch (IllegalArgumentException e) {
            System.err.println("jvhost: " + e.getMessage());
            return 2;
        }
        target.socketAccess(access);
        Methods methods = new Methods(target);
        JsonRpcServer rpc = null;
        try {
            if (empty && (file != null || nullSize != null || mallocSize != null)) {
                throw new IllegalArgumentException("--empty excludes --malloc, --file and --null");
            }
            // The RPC socket first: if it cannot be created, nothing else has been.
            if (!noRpc) {
                rpc = JsonRpcServer.start(rpcSocket, methods, JsonRpcServer.Options.defaults().withAccess(access)
                        .withIdleTimeout(Duration.ofSeconds(rpcIdleTimeout)).withPeerCheck(rpcPeerCheck));
            }
            if (json != null) {
                int n = JsonConfig.load(json, methods);
                System.err.println("jvhost: loaded " + n + " config entr" + (n == 1 ? "y" : "ies") + " from " + json);
            } else if (!empty) {
                defaultSetup(methods);
            }
        } catch (JsonRpcServer.StartException e) {
            System.err.println("jvhost: " + e.getMessage() + " (or pass --no-rpc)");
            target.close();
            return 2;
        } catch (JsonConfig.ConfigException e) {
            System.err.println("jvhost: bad config: " + e.getMessage());
            if (rpc != null) rpc.close();
            target.close();
            return 2;
        } catch (RpcException | IllegalArgumentException | io.jvhost.sys.NativeException e) {
            System.err.println("jvhost: " + e.getMessage());
            if (rpc != null) rpc.close();
            target.close();
            return 2;
        }
        io.jvhost.metrics.MetricsServer metricsServer;
        try {
            metricsServer = startMetrics();
        } catch (IllegalArgumentException | java.io.UncheckedIOException e) {
            System.err.println("jvhost: " + e.getMessage());
            if (rpc != null) rpc.close();
            target.close();
            return 2;
        }
        CountDownLatch stopped = new CountDownLatch(1);
        JsonRpcServer server = rpc;
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            service.stopping();
            System.err.println("jvhost: shutting down: draining in-flight requests (up to 35 s per controller), then closing");
            if (server != null) server.close();
            if (metricsServer != null) metricsServer.close();
            target.close();
            service.exited();
            stopped.countDown();
        }, "shutdown"));
        // spdk_kill_instance: SIGKILL stops at once; any other signal shuts down as SIGTERM does
        // (the shutdown hook above). On another thread, so the RPC's answer goes out first.
        methods.setKillHandler(sig -> Thread.ofPlatform().name("spdk_kill_instance").start(() -> {
            if (sig.equals("SIGKILL")) Runtime.getRuntime().halt(137);
            System.exit(0);
        }));
        printQuickStart(target.controllers(), server);
        if (metricsServer != null) System.out.println("Prometheus metrics on " + metricsServer.url());
        try {
            service.ready("serving " + target.controllers().size() + " controller(s)" + (server != null ? "; JSON-RPC on " + server.path() : ""));
        } catch (java.io.IOException e) {
            System.err.println("jvhost: cannot write the pid file " + pidFile + ": " + e + " (check the directory's permissions or choose another --pid-file)");
            return 2; // main exits; the shutdown hook closes everything
        }
        keepRunning = true;
        stopped.await();
        return 0;
    }

    /** --idle, --busy-poll and --interrupt-mode: at most one policy. */
    IdleStrategy idleStrategy() {
        int given = (idlePolicy != null ? 1 : 0) + (busyPoll ? 1 : 0) + (interruptMode ? 1 : 0);
        if (given > 1) throw new IllegalArgumentException("choose one of --idle, --busy-poll and --interrupt-mode");
        if (busyPoll) return IdleStrategy.BUSY;
        if (interruptMode) return IdleStrategy.SLEEP;
        return idlePolicy == null ? IdleStrategy.BACKOFF : IdleStrategy.named(idlePolicy);
    }

    private void defaultSetup(Methods methods) {
        JsonNodeFactory f = JsonNodeFactory.instance;
        String bdev;
        int given = (file != null ? 1 : 0) + (nullSize != null ? 1 : 0) + (mallocSize != null ? 1 : 0);
        if (given > 1) throw RpcException.invalidParams("choose one of --malloc, --file, --null");
        if (file != null) {
            bdev = "AIO0";
            ObjectNode p = f.objectNode().put("name", bdev).put("filename", file.toString()).put("block_size", blockSize).put("readonly", readonly);
            methods.call("bdev_aio_create", p);
        } else if (nullSize != null) {
            bdev = "Null0";
            methods.call("bdev_null_create", f.objectNode().put("name", bdev).put("num_blocks", Sizes.parse(nullSize) / blockSize).put("block_size", blockSize));
        } else {
            bdev = "Malloc0";
            long size = Sizes.parse(mallocSize == null ? "256M" : mallocSize);
            methods.call("bdev_malloc_create", f.objectNode().put("name", bdev).put("num_blocks", size / blockSize).put("block_size", blockSize));
        }
        switch (type) {
            case "blk" -> methods.call("vhost_create_blk_controller", f.objectNode().put("ctrlr", ctrlr).put("dev_name", bdev)
                    .put("readonly", readonly).put("num_queues", numQueues).put("queue_placement", queuePlacement));
            case "scsi" -> {
                if (readonly) throw RpcException.invalidParams("--readonly applies to blk controllers; for scsi use a read-only file (--file with bdev_aio_create readonly)");
                methods.call("vhost_create_scsi_controller", f.objectNode().put("ctrlr", ctrlr).put("num_queues", numQueues)
                        .put("queue_placement", queuePlacement));
                methods.call("vhost_scsi_controller_add_target", f.objectNode().put("ctrlr", ctrlr).put("scsi_target_num", 0).put("bdev_name", bdev));
            }
            default -> throw RpcException.invalidParams("--type must be blk or scsi, got '" + type + "'");
        }
    }

    private static void printQuickStart(List<Controller> controllers, JsonRpcServer rpc) {
        StringBuilder sb = new StringBuilder();
        sb.append("jvhost ").append(Main.VERSION).append(" serving ").append(controllers.size()).append(" controller(s):\n");
        for (Controller c : controllers) sb.append("  ").append(c.name()).append("  ").append(c.socketPath()).append('\n');
        if (rpc != null) {
            sb.append("JSON-RPC on ").append(rpc.path()).append("  (try: jvhost rpc").append(rpc.path().toString().equals(JsonRpcServer.DEFAULT_SOCKET) ? "" : " -s " + rpc.path())
                    .append(" vhost_get_controllers)\n");
        }
        if (!controllers.isEmpty()) {
            sb.append("\nAttach a QEMU guest (guest RAM must be shared memory; the backend size must equal -m):\n");
            sb.append("  qemu-system-x86_64 -machine q35,accel=kvm:tcg -smp 2 -m 1G \\\n");
            sb.append("    -object memory-backend-memfd,id=mem,size=1G,share=on -machine memory-backend=mem \\\n");
            int i = 0;
            for (Controller c : controllers) {
                sb.append("    -chardev socket,id=vhost").append(i).append(",path=").append(c.socketPath()).append(" \\\n");
                if (c.device() instanceof io.jvhost.vhost.VirtioScsiDevice) {
                    sb.append("    -device vhost-user-scsi-pci,chardev=vhost").append(i).append(",num_queues=2 \\\n");
                } else {
                    sb.append("    -device vhost-user-blk-pci,chardev=vhost").append(i).append(",num-queues=2 \\\n");
                }
                i++;
            }
            sb.append("    ...your kernel/disk options...\n");
        }
        sb.append("\nStop with Ctrl-C (sockets are removed).");
        System.out.println(sb);
        System.out.flush();
    }
}
