package io.jvhost.vhost;

import io.jvhost.bdev.BlockDevice;
import io.jvhost.bdev.FileBlockDevice;
import io.jvhost.bdev.MallocBlockDevice;
import io.jvhost.bdev.NullBlockDevice;
import io.jvhost.initiator.BlkInitiator;
import io.jvhost.initiator.ScsiInitiator;
import io.jvhost.runtime.IdleStrategy;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;

import static io.jvhost.virtio.BlkLayout.S_OK;
import static org.assertj.core.api.Assertions.assertThat;

/**
 * The reactor's data path allocates nothing per request in steady state, for both device
 * types on every bdev kind: {blk, scsi} x {malloc, null, file}. Measured with the reactor
 * thread's allocation counter over many requests driven by our in-process initiator. For the
 * file bdev the engine's worker threads are measured as well.
 */
class DataPathAllocationTest {
    private static final int WARMUP = 30_000;
    private static final int MEASURED = 40_000;
    /**
     * File bdevs do real (O_DIRECT) disk I/O, ~1–4 ms per synchronous request on these VMs: fewer
     * requests keep the test to seconds; one allocation per request (16 B or more) still shows
     * as at least 16 B/request against the 1 B/request bound.
     */
    private static final int FILE_WARMUP = 10_000;
    private static final int FILE_MEASURED = 10_000;

    @TempDir
    Path dir;

    private final com.sun.management.ThreadMXBean mx = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();

    private BlockDevice bdev(String kind) throws Exception {
        return switch (kind) {
            case "malloc" -> new MallocBlockDevice("B", 8192, 512, null);
            case "null" -> new NullBlockDevice("B", 8192, 512, null);
            case "file", "file-threads" -> {
                Path f = dir.resolve("disk.img");
                Files.write(f, new byte[8192 * 512]);
                // "file": the default engine (io_uring here, polled by the reactor); "file-threads": the worker pool
                yield new FileBlockDevice("B", f.toString(), 512, false, null,
                        kind.equals("file") ? io.jvhost.bdev.FileIoEngine.AUTO : io.jvhost.bdev.FileIoEngine.THREADS);
            }
            default -> throw new IllegalArgumentException(kind);
        };
    }

    private static Thread thread(String name) {
        return Thread.getAllStackTraces().keySet().stream().filter(t -> t.getName().equals(name)).findFirst().orElseThrow();
    }

    private int workerThreads() {
        int n = 0;
        for (Thread t : Thread.getAllStackTraces().keySet()) if (t.getName().startsWith("bdev-B-io-")) n++;
        return n;
    }

    /** Allocated bytes of the file engine's workers (0 when there are none). */
    private long workerBytes() {
        long sum = 0;
        for (Thread t : Thread.getAllStackTraces().keySet()) {
            if (t.getName().startsWith("bdev-B-io-")) sum += mx.getThreadAllocatedBytes(t.threadId());
        }
        return sum;
    }

    @FunctionalInterface
    interface Io {
        void run(int i) throws Exception;
    }

    private void measure(String what, Io io) throws Exception {
        boolean file = what.contains("file");
        int warmup = file ? FILE_WARMUP : WARMUP;
        int measured = file ? FILE_MEASURED : MEASURED;
        Thread reactor = thread("reactor-0");
        for (int i = 0; i < warmup; i++) io.run(i);
        long before = mx.getThreadAllocatedBytes(reactor.threadId());
        long workersBefore = workerBytes();
        for (int i = 0; i < measured; i++) io.run(i);
        long bytes = mx.getThreadAllocatedBytes(reactor.threadId()) - before;
        long workers = workerBytes() - workersBefore;
        System.out.printf("%s: reactor %d B over %d requests (%.4f/request); file workers %d B (%.4f/request)%n",
                what, bytes, measured, (double) bytes / measured, workers, (double) workers / measured);
        assertThat((double) bytes / measured).as("%s: bytes allocated per request on the reactor (%d in total)", what, bytes).isLessThan(1.0);
        // The file engine's workers (the blocking system calls, the hand-back) allocate nothing either.
        assertThat((double) workers / measured).as("%s: bytes allocated per request by the file workers", what).isLessThan(1.0);
    }

    @ParameterizedTest(name = "{0} on {1}")
    @CsvSource({"blk,malloc", "blk,null", "blk,file", "blk,file-threads", "scsi,malloc", "scsi,null", "scsi,file", "scsi,file-threads"})
    void steadyStateReadsAndWritesAllocateNothingOnTheReactor(String device, String kind) throws Exception {
        try (VhostTarget target = new VhostTarget(dir, 1, IdleStrategy.BUSY)) {
            target.bdevs().register(bdev(kind));
            boolean uring = kind.equals("file") && ((FileBlockDevice) target.bdevs().get("B")).ioEngine().equals("io_uring");
            assertThat(workerThreads()).as("file engine workers").isEqualTo(kind.startsWith("file") && !uring ? 2 : 0);
            if (device.equals("blk")) {
                target.createBlkController("v", "B", false, 1, null);
                try (BlkInitiator ini = BlkInitiator.connect(dir.resolve("v").toString(), 1, 128, 1 << 20)) {
                    measure(device + "/" + kind, i -> assertThat(i % 2 == 0 ? ini.write(0, i % 1000, 4096) : ini.read(0, i % 1000, 4096)).isEqualTo(S_OK));
                }
            } else {
                target.createScsiController("v", 1, null);
                assertThat(target.addScsiTarget("v", 0, "B")).isZero();
                byte[] write10 = {0x2a, 0, 0, 0, 0, 100, 0, 0, 8, 0};
                byte[] read10 = {0x28, 0, 0, 0, 0, 100, 0, 0, 8, 0};
                try (ScsiInitiator ini = ScsiInitiator.connect(dir.resolve("v").toString(), 1, 128, 1 << 20)) {
                    measure(device + "/" + kind, i -> {
                        ScsiInitiator.Response r = i % 2 == 0 ? ini.command(0, 0, 0, write10, 4096, 0) : ini.command(0, 0, 0, read10, 0, 4096);
                        assertThat(r.status()).isZero();
                    });
                }
            }
        }
    }
}
