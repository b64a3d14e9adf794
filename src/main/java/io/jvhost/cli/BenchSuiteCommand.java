package io.jvhost.cli;

import io.jvhost.initiator.BenchEngine;
import io.jvhost.sys.HugePages;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.LocalDateTime;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;

/**
 * {@code jvhost bench-suite}: jvhost and qemu-storage-daemon (and, with {@code --spdk DIR},
 * SPDK's {@code vhost} target) on the same machine, the same workloads against each with the
 * same initiator, interleaved (A B C A B C ...) and repeated; prints medians and the ratios of
 * jvhost to each peer as a Markdown table.
 * <p>
 * SPDK's target maps guest memory only from hugepages, so with {@code --spdk} the initiator's
 * memory comes from 2 MiB hugepages for every target (one client for all), and SPDK's own
 * memory ({@code -s}) too: both are checked before anything starts.
 */
@Command(name = "bench-suite", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Side-by-side benchmark: jvhost vs qemu-storage-daemon (vhost-user-blk export), and SPDK's vhost",
                "target with --spdk DIR; same initiator, targets pinned to one core and the initiator to another,",
                "null and RAM-backed devices. Needs qemu-storage-daemon (Debian: qemu-system-common / qemu-utils)",
                "and taskset; --spdk needs an SPDK build (DIR/build/bin/vhost, DIR/scripts/rpc.py) and hugepages.", ""})
final class BenchSuiteCommand implements Callable<Integer> {
    @Option(names = "--time", description = "Measured seconds per run (default 10).")
    int time = 10;

    @Option(names = "--ramp", description = "Warm-up seconds per run (default 2).")
    int ramp = 2;

    @Option(names = "--rounds", description = "Runs per target and workload; medians are reported (default 3).")
    int rounds = 3;

    @Option(names = "--target-cpu", description = "Core for the targets (default 0).")
    int targetCpu = 0;

    @Option(names = "--initiator-cpu", description = "Core for the initiator (default 1).")
    int initiatorCpu = 1;

    @Option(names = "--only", description = "Run only workloads whose name contains this text (e.g. 'qd1', 'null').")
    String only;

    @Option(names = "--out", description = "Also write the Markdown table to this file.")
    Path outFile;

    @Option(names = "--spdk", paramLabel = "DIR", description = {"Add SPDK's vhost target from this SPDK source tree, built",
            "(DIR/build/bin/vhost, DIR/scripts/rpc.py); the initiator then uses 2 MiB hugepages for every target."})
    Path spdkDir;

    /** SPDK's DPDK memory (-s) beyond its malloc bdev: its own pools and buffers. */
    static final long SPDK_EXTRA_MIB = 512;
    /** What one initiator run maps (rings, 128 KiB x qd buffers) rounded up generously, in 2 MiB pages. */
    static final long INITIATOR_PAGES = 16;

    /** One target of the suite: its name in the table and the socket name prefix of its controllers. */
    record Target(String name, String prefix) {}

    record Workload(String name, String device, BenchEngine.Workload w, int bs, int qd) {}

    static final List<Workload> WORKLOADS = List.of(
            new Workload("null 4k randread qd1", "null", BenchEngine.Workload.RANDREAD, 4096, 1),
            new Workload("null 4k randread qd32", "null", BenchEngine.Workload.RANDREAD, 4096, 32),
            new Workload("null 4k randread qd128", "null", BenchEngine.Workload.RANDREAD, 4096, 128),
            new Workload("null 4k randwrite qd32", "null", BenchEngine.Workload.RANDWRITE, 4096, 32),
            new Workload("null 128k read qd32", "null", BenchEngine.Workload.READ, 131072, 32),
            new Workload("null 128k write qd32", "null", BenchEngine.Workload.WRITE, 131072, 32),
            new Workload("ram 4k randread qd1", "ram", BenchEngine.Workload.RANDREAD, 4096, 1),
            new Workload("ram 4k randread qd32", "ram", BenchEngine.Workload.RANDREAD, 4096, 32),
            new Workload("ram 4k randread qd128", "ram", BenchEngine.Workload.RANDREAD, 4096, 128),
            new Workload("ram 4k randwrite qd32", "ram", BenchEngine.Workload.RANDWRITE, 4096, 32),
            new Workload("ram 128k read qd32", "ram", BenchEngine.Workload.READ, 131072, 32),
            new Workload("ram 128k write qd32", "ram", BenchEngine.Workload.WRITE, 131072, 32));

    @Override
    public Integer call() throws Exception {
        Logging.configure("warn");
        long size = 1L << 30;
        SpdkPaths spdk = null;
        if (spdkDir != null) {
            try {
                spdk = SpdkPaths.check(spdkDir, size);
            } catch (IllegalStateException e) {
                System.err.println("jvhost bench-suite: " + e.getMessage());
                return 2;
            }
        }
        boolean hugepages = spdk != null;
        Path dir = Files.createTempDirectory("jvhost-bench");
        Path ramFile = Path.of("/dev/shm/jvhost-bench-qsd-ram.img");
        List<Process> procs = new ArrayList<>();
        List<Target> targets = new ArrayList<>(List.of(new Target("jvhost", "jv-"), new Target("qemu-storage-daemon", "qsd-")));
        if (spdk != null) targets.add(new Target("SPDK vhost", "spdk-"));
        try {
            Path cfg = dir.resolve("jvhost.json");
            Files.writeString(cfg, """
                    {"subsystems":[{"subsystem":"bdev","config":[
                      {"method":"bdev_null_create","params":{"name":"Null0","num_blocks":%d,"block_size":512}},
                      {"method":"bdev_malloc_create","params":{"name":"Malloc0","num_blocks":%d,"block_size":512}}]},
                     {"subsystem":"vhost_blk","config":[
                      {"method":"vhost_create_blk_controller","params":{"ctrlr":"jv-null","dev_name":"Null0","num_queues":1}},
                      {"method":"vhost_create_blk_controller","params":{"ctrlr":"jv-ram","dev_name":"Malloc0","num_queues":1}}]}]}
                    """.formatted(size / 512, size / 512));
            String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
            procs.add(start(dir.resolve("jvhost.log"), "taskset", "-c", String.valueOf(targetCpu), java, "--enable-native-access=ALL-UNNAMED",
                    "-cp", System.getProperty("java.class.path"), "io.jvhost.cli.Main", "serve", "-S", dir.toString(), "--json", cfg.toString(),
                    "--cpumask", "[" + targetCpu + "]", "--busy-poll", "--no-rpc", "-L", "warn"));
            try (var f = new java.io.RandomAccessFile(ramFile.toFile(), "rw")) {
                f.setLength(size);
            }
            procs.add(start(dir.resolve("qsd.log"), "taskset", "-c", String.valueOf(targetCpu), "qemu-storage-daemon",
                    "--blockdev", "driver=null-co,node-name=null0,size=" + size,
                    "--blockdev", "driver=file,node-name=ram0,filename=" + ramFile + ",cache.direct=off",
                    "--object", "iothread,id=iot0",
                    "--export", "type=vhost-user-blk,id=e0,node-name=null0,addr.type=unix,addr.path=" + dir.resolve("qsd-null") + ",writable=on,num-queues=1,iothread=iot0",
                    "--export", "type=vhost-user-blk,id=e1,node-name=ram0,addr.type=unix,addr.path=" + dir.resolve("qsd-ram") + ",writable=on,num-queues=1,iothread=iot0"));
            if (spdk != null) startSpdk(spdk, dir, size, procs);
            for (Target t : targets) for (String dev : List.of("null", "ram")) waitForSocket(dir.resolve(t.prefix() + dev), procs);

            PrintStream err = System.err;
            List<String> rows = new ArrayList<>();
            int n = targets.size();
            for (Workload wl : WORKLOADS) {
                if (only != null && !wl.name().contains(only)) continue;
                double[][] iops = new double[n][rounds], lat = new double[n][rounds];
                for (int r = 0; r < rounds; r++) {
                    StringBuilder line = new StringBuilder(String.format("  %-24s round %d:", wl.name(), r + 1));
                    for (int t = 0; t < n; t++) {
                        BenchEngine.Result res = runOne(dir.resolve(targets.get(t).prefix() + wl.device()).toString(), wl, hugepages);
                        iops[t][r] = res.iops();
                        lat[t][r] = res.avgUs();
                        line.append(String.format("   %s %,12.0f IOPS (%.2f us)", targets.get(t).name(), res.iops(), res.avgUs()));
                    }
                    err.println(line);
                }
                StringBuilder row = new StringBuilder("| ").append(wl.name()).append(" |");
                for (int t = 0; t < n; t++) row.append(String.format(" %,.0f (%.2f µs) |", median(iops[t]), median(lat[t])));
                for (int t = 1; t < n; t++) row.append(String.format(" %.2f× |", median(iops[0]) / median(iops[t])));
                StringBuilder bw = new StringBuilder();
                if (wl.bs() >= 131072 && wl.device().equals("ram")) {
                    for (int t = 0; t < n; t++) bw.append(t == 0 ? "" : " / ").append(String.format("%,.0f", median(iops[t]) * wl.bs() / (1 << 20)));
                    bw.append(" MiB/s");
                }
                rows.add(row.append(' ').append(bw).append(" |").toString());
            }
            StringBuilder md = new StringBuilder();
            md.append("Run ").append(LocalDateTime.now().withNano(0)).append(", ").append(rounds).append(" rounds of ").append(time)
                    .append(" s (+").append(ramp).append(" s ramp), targets on core ").append(targetCpu).append(", initiator on core ")
                    .append(initiatorCpu).append(hugepages ? ", initiator memory on 2 MiB hugepages" : "").append(", medians:\n\n");
            md.append("| workload |");
            for (Target t : targets) md.append(' ').append(t.name()).append(" IOPS (avg lat) |");
            for (int t = 1; t < n; t++) md.append(" jvhost / ").append(targets.get(t).name()).append(" |");
            md.append(" bandwidth ");
            for (int t = 0; t < n; t++) md.append(t == 0 ? "" : " / ").append(targets.get(t).prefix().replace("-", ""));
            md.append(" |\n|---|");
            md.append("---|".repeat(2 * n));
            md.append('\n');
            for (String row : rows) md.append(row).append('\n');
            System.out.print(md);
            if (outFile != null) Files.writeString(outFile, md);
            return 0;
        } finally {
            for (Process p : procs) {
                p.destroy();
                if (!p.waitFor(10, TimeUnit.SECONDS)) {
                    p.destroyForcibly();
                    p.waitFor(10, TimeUnit.SECONDS);
                }
            }
            Files.deleteIfExists(ramFile);
        }
    }

    /** An SPDK build's target and RPC client, checked; and the hugepages it and our initiator need. */
    record SpdkPaths(Path vhost, Path rpcPy, Path libDir, long memMib) {
        static SpdkPaths check(Path dir, long mallocBytes) {
            Path vhost = dir.resolve("build/bin/vhost");
            Path rpc = dir.resolve("scripts/rpc.py");
            if (!Files.isExecutable(vhost)) {
                throw new IllegalStateException("--spdk " + dir + ": no SPDK vhost target at " + vhost
                        + " (build SPDK there first: ./configure && make; see ../shared/SPDK.md or BENCHMARKS.md)");
            }
            if (!Files.isRegularFile(rpc)) throw new IllegalStateException("--spdk " + dir + ": no " + rpc + " (an SPDK source tree has scripts/rpc.py)");
            long memMib = (mallocBytes >> 20) + SPDK_EXTRA_MIB;
            long pages = memMib * (1L << 20) / HugePages.SIZE + INITIATOR_PAGES;
            HugePages pool = HugePages.read();
            if (pool.available() < pages) {
                throw new IllegalStateException(pool.shortfallMessage("--spdk (SPDK's target with -s " + memMib + " MiB, and our initiator)", pages));
            }
            return new SpdkPaths(vhost, rpc, dir.resolve("build/lib"), memMib);
        }
    }

    /** SPDK's vhost target on the target core, with a null and a malloc bdev behind blk controllers spdk-null and spdk-ram. */
    private void startSpdk(SpdkPaths spdk, Path dir, long size, List<Process> procs) throws Exception {
        Path rpcSock = dir.resolve("spdk.sock");
        String mask = "0x" + Long.toHexString(1L << targetCpu);
        ProcessBuilder pb = new ProcessBuilder(spdk.vhost().toString(), "-u", "-m", mask, "-s", String.valueOf(spdk.memMib()),
                "-S", dir.toString(), "-r", rpcSock.toString()).redirectErrorStream(true).redirectOutput(dir.resolve("spdk.log").toFile());
        pb.environment().merge("LD_LIBRARY_PATH", spdk.libDir().toString(), (a, b) -> b + ":" + a);
        procs.add(pb.start());
        waitForSocket(rpcSock, procs);
        long mib = size >> 20;
        rpc(spdk, rpcSock, dir, "bdev_null_create", "Null0", String.valueOf(mib), "512");
        rpc(spdk, rpcSock, dir, "bdev_malloc_create", "-b", "Malloc0", String.valueOf(mib), "512");
        rpc(spdk, rpcSock, dir, "vhost_create_blk_controller", "--cpumask", mask, "spdk-null", "Null0");
        rpc(spdk, rpcSock, dir, "vhost_create_blk_controller", "--cpumask", mask, "spdk-ram", "Malloc0");
    }

    private static void rpc(SpdkPaths spdk, Path sock, Path dir, String... args) throws Exception {
        List<String> cmd = new ArrayList<>(List.of("python3", spdk.rpcPy().toString(), "-s", sock.toString(), "-t", "60"));
        cmd.addAll(Arrays.asList(args));
        Path log = dir.resolve("spdk-rpc.log");
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile())).start();
        if (!p.waitFor(90, TimeUnit.SECONDS) || p.exitValue() != 0) {
            p.destroyForcibly();
            throw new IOException("SPDK rpc.py " + String.join(" ", args) + " failed (see " + log + " and " + dir.resolve("spdk.log") + ")");
        }
    }

    private BenchEngine.Result runOne(String socket, Workload wl, boolean hugepages) throws IOException {
        BenchEngine e = new BenchEngine(new BenchEngine.Config(socket, BenchEngine.Type.BLK, wl.w(), 70, wl.bs(), wl.qd(), 1,
                Duration.ofSeconds(time), Duration.ofSeconds(ramp), false, initiatorCpu, 512, false, false, hugepages), System.err);
        try {
            return e.run();
        } finally {
            e.close();
        }
    }

    private static double median(double[] v) {
        double[] s = v.clone();
        Arrays.sort(s);
        return s.length % 2 == 1 ? s[s.length / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
    }

    private static Process start(Path log, String... cmd) throws IOException {
        return new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile()).start();
    }

    private static void waitForSocket(Path p, List<Process> procs) throws Exception {
        long deadline = System.nanoTime() + 30_000_000_000L;
        while (!Files.exists(p)) {
            for (Process pr : procs) if (!pr.isAlive()) throw new IOException("a target exited early (see logs in " + p.getParent() + ")");
            if (System.nanoTime() > deadline) throw new IOException("socket " + p + " did not appear");
            Thread.sleep(100);
        }
    }
}
