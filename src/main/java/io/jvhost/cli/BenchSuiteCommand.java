package io.jvhost.cli;

import io.jvhost.initiator.BenchEngine;
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
 * {@code jvhost bench-suite}: jvhost and qemu-storage-daemon on the same machine, the same
 * workloads against each with the same initiator, interleaved (A B A B ...) and repeated;
 * prints medians and the jvhost/qemu-storage-daemon ratio as a Markdown table.
 */
@Command(name = "bench-suite", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Side-by-side benchmark: jvhost vs qemu-storage-daemon (vhost-user-blk export), same initiator,",
                "target pinned to one core and the initiator to another, null and RAM-backed devices.",
                "Needs qemu-storage-daemon (Debian: qemu-system-common / qemu-utils) and taskset.", ""})
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
        Path dir = Files.createTempDirectory("jvhost-bench");
        Path ramFile = Path.of("/dev/shm/jvhost-bench-qsd-ram.img");
        long size = 1L << 30;
        List<Process> procs = new ArrayList<>();
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
            for (String s : List.of("jv-null", "jv-ram", "qsd-null", "qsd-ram")) waitForSocket(dir.resolve(s), procs);

            PrintStream err = System.err;
            List<String> rows = new ArrayList<>();
            for (Workload wl : WORKLOADS) {
                if (only != null && !wl.name().contains(only)) continue;
                double[] jv = new double[rounds], qs = new double[rounds], jvLat = new double[rounds], qsLat = new double[rounds];
                for (int r = 0; r < rounds; r++) {
                    BenchEngine.Result a = runOne(dir.resolve("jv-" + wl.device()).toString(), wl);
                    BenchEngine.Result b = runOne(dir.resolve("qsd-" + wl.device()).toString(), wl);
                    jv[r] = a.iops();
                    qs[r] = b.iops();
                    jvLat[r] = a.avgUs();
                    qsLat[r] = b.avgUs();
                    err.printf("  %-24s round %d: jvhost %,12.0f IOPS (%.2f us)   qemu-storage-daemon %,12.0f IOPS (%.2f us)%n",
                            wl.name(), r + 1, a.iops(), a.avgUs(), b.iops(), b.avgUs());
                }
                double mj = median(jv), mq = median(qs);
                rows.add(String.format("| %s | %,.0f (%.2f µs) | %,.0f (%.2f µs) | %.2f× | %s |", wl.name(), mj, median(jvLat), mq, median(qsLat), mj / mq,
                        wl.bs() >= 131072 && wl.device().equals("ram") ? String.format("%,.0f / %,.0f MiB/s", mj * wl.bs() / (1 << 20), mq * wl.bs() / (1 << 20)) : ""));
            }
            StringBuilder md = new StringBuilder();
            md.append("Run ").append(LocalDateTime.now().withNano(0)).append(", ").append(rounds).append(" rounds of ").append(time)
                    .append(" s (+").append(ramp).append(" s ramp), targets on core ").append(targetCpu).append(", initiator on core ")
                    .append(initiatorCpu).append(", medians:\n\n");
            md.append("| workload | jvhost IOPS (avg lat) | qemu-storage-daemon IOPS (avg lat) | ratio | bandwidth jv / qsd |\n|---|---|---|---|---|\n");
            for (String row : rows) md.append(row).append('\n');
            System.out.print(md);
            if (outFile != null) Files.writeString(outFile, md);
            return 0;
        } finally {
            for (Process p : procs) {
                p.destroy();
                p.waitFor(10, TimeUnit.SECONDS);
            }
            Files.deleteIfExists(ramFile);
        }
    }

    private BenchEngine.Result runOne(String socket, Workload wl) throws IOException {
        BenchEngine e = new BenchEngine(new BenchEngine.Config(socket, BenchEngine.Type.BLK, wl.w(), 70, wl.bs(), wl.qd(), 1,
                Duration.ofSeconds(time), Duration.ofSeconds(ramp), false, initiatorCpu, 512, false), System.err);
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
