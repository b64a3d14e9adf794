package io.jvhost.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import io.jvhost.initiator.BenchEngine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.time.Duration;
import java.util.concurrent.Callable;

/** {@code jvhost bench}: drive a vhost-user target with our poll-mode initiator (SPDK's bdevperf). */
@Command(name = "bench", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Benchmark any vhost-user-blk or vhost-user-scsi target (jvhost, SPDK, qemu-storage-daemon)",
                "with jvhost's poll-mode initiator: no VM, one thread polls every queue.", "",
                "Example:  jvhost bench --socket /tmp/vhost.0 -w randread --bs 4k --qd 32 --time 10", ""})
final class BenchCommand implements Callable<Integer> {
    @Option(names = {"-s", "--socket"}, required = true, paramLabel = "PATH", description = "The target's vhost-user socket.")
    String socket;

    @Option(names = {"-t", "--type"}, paramLabel = "TYPE", description = "blk (default) or scsi (target 0, LUN 0).")
    String type = "blk";

    @Option(names = {"-w", "--workload"}, paramLabel = "W", description = "read, write, randread (default), randwrite, randrw, rw.")
    String workload = "randread";

    @Option(names = "--mix", paramLabel = "PCT", description = "Reads in percent for randrw/rw (default 70).")
    int mix = 70;

    @Option(names = {"-o", "--bs"}, paramLabel = "SIZE", description = "I/O size, e.g. 4k, 128k (default 4k).")
    String bs = "4k";

    @Option(names = {"-q", "--qd"}, paramLabel = "N", description = "Requests in flight per queue (default 32).")
    int qd = 32;

    @Option(names = "--queues", paramLabel = "N", description = "Queues (default 1).")
    int queues = 1;

    @Option(names = "--queue-size", paramLabel = "N", description = "Ring size >= 3 x qd (default 512): a power of two for split rings, any size for packed ones.")
    int queueSize = 512;

    @Option(names = "--time", paramLabel = "SEC", description = "Measured seconds (default 10).")
    int time = 10;

    @Option(names = "--ramp", paramLabel = "SEC", description = "Seconds of warm-up before measuring (default 2).")
    int ramp = 2;

    @Option(names = "--verify", description = "Stamp every written block and check it on read-back.")
    boolean verify;

    @Option(names = "--cpu", paramLabel = "N", description = "Pin the initiator thread to this CPU (default: not pinned).")
    int cpu = -1;

    @Option(names = "--interrupts", description = "Interrupt mode: sleep on the call eventfds between completions instead of polling.")
    boolean interrupts;

    @Option(names = "--hugepages", description = {"Back the initiator's shared memory with 2 MiB hugepages (memfd MFD_HUGETLB), as SPDK's",
            "vhost target needs; reserve them first: echo N > /proc/sys/vm/nr_hugepages."})
    boolean hugepages;

    @Option(names = "--ring", paramLabel = "LAYOUT", description = {"Virtqueue layout: split (default) or packed (VIRTIO_F_RING_PACKED;",
            "the target must offer it: SPDK's rpc.py vhost_create_blk_controller -p)."})
    String ring = "split";

    @Option(names = "--packed", description = "Same as --ring packed.")
    boolean packed;

    @Option(names = "--indirect", description = {"With packed rings and blk: each request is one ring descriptor pointing at a",
            "pinned indirect table (VIRTIO_F_RING_INDIRECT_DESC) instead of a 3-descriptor chain."})
    boolean indirect;

    @Option(names = "--json", description = "Print the result as JSON (for scripts) instead of text.")
    boolean json;

    @Option(names = "--quiet", description = "No per-second progress lines.")
    boolean quiet;

    @Override
    public Integer call() throws Exception {
        Logging.configure("warn");
        BenchEngine.Type t = switch (type) {
            case "blk" -> BenchEngine.Type.BLK;
            case "scsi" -> BenchEngine.Type.SCSI;
            default -> throw new picocli.CommandLine.ParameterException(new picocli.CommandLine(this), "--type must be blk or scsi");
        };
        BenchEngine.Workload w;
        try {
            w = BenchEngine.Workload.valueOf(workload.toUpperCase());
        } catch (IllegalArgumentException e) {
            System.err.println("jvhost bench: unknown workload '" + workload + "' (read, write, randread, randwrite, randrw, rw)");
            return 2;
        }
        long bsBytes = Sizes.parse(bs);
        if (bsBytes % 512 != 0 || bsBytes > (16 << 20)) {
            System.err.println("jvhost bench: --bs must be a multiple of 512 up to 16M");
            return 2;
        }
        if (qd < 1 || queues < 1 || time < 1 || ramp < 0 || mix < 0 || mix > 100) {
            System.err.println("jvhost bench: --qd, --queues and --time must be >= 1, --ramp >= 0, --mix 0..100");
            return 2;
        }
        io.jvhost.initiator.VhostUserDriver.Ring r0 = switch (packed ? "packed" : ring) {
            case "split" -> io.jvhost.initiator.VhostUserDriver.Ring.SPLIT;
            case "packed" -> io.jvhost.initiator.VhostUserDriver.Ring.PACKED;
            default -> null;
        };
        if (r0 == null) {
            System.err.println("jvhost bench: --ring must be split or packed");
            return 2;
        }
        if (indirect && (r0 != io.jvhost.initiator.VhostUserDriver.Ring.PACKED || t != BenchEngine.Type.BLK)) {
            System.err.println("jvhost bench: --indirect needs --ring packed and --type blk");
            return 2;
        }
        BenchEngine.Config cfg = new BenchEngine.Config(socket, t, w, mix, (int) bsBytes, qd, queues, Duration.ofSeconds(time),
                Duration.ofSeconds(ramp), verify, cpu, queueSize, !quiet && !json, interrupts, hugepages).withRing(r0, indirect);
        BenchEngine engine;
        if (!java.nio.file.Files.exists(java.nio.file.Path.of(socket))) {
            System.err.println("jvhost bench: no vhost-user socket at " + socket + " (start the target first, e.g. jvhost serve; -s is a controller's socket such as ./vhost.0)");
            return 1;
        }
        try {
            engine = new BenchEngine(cfg, System.err);
        } catch (Exception e) {
            System.err.println("jvhost bench: cannot set up " + socket + (hugepages ? " with --hugepages" : "")
                    + (r0 == io.jvhost.initiator.VhostUserDriver.Ring.PACKED ? " with packed rings" : "") + ": " + e.getMessage());
            return 1;
        }
        if (!json) System.err.printf("jvhost bench: %s %s bs=%s qd=%d queues=%d, %ds (+%ds ramp) on %s, %s rings%s%n", type, workload, bs, qd, queues, time, ramp,
                socket, cfg.ringLabel(), hugepages ? ", memory on 2 MiB hugepages" : "");
        BenchEngine.Result r;
        try {
            r = engine.run();
        } finally {
            engine.close();
        }
        if (json) {
            System.out.println(new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValueAsString(r));
        } else {
            System.out.printf("%s bs=%d qd=%d queues=%d ring=%s: %,.0f IOPS, %.1f MiB/s, latency us avg %.2f p50 %.2f p99 %.2f p99.9 %.2f max %.2f%s%n",
                    r.workload(), r.blockSize(), r.queueDepth(), r.queues(), r.ring(), r.iops(), r.mibPerSec(), r.avgUs(), r.p50Us(), r.p99Us(),
                    r.p999Us(), r.maxUs(), (r.errors() + r.verifyErrors()) == 0 ? "" : ", ERRORS " + r.errors() + " I/O, " + r.verifyErrors() + " verify");
        }
        return r.errors() + r.verifyErrors() == 0 ? 0 : 1;
    }
}
