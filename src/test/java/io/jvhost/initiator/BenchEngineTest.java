package io.jvhost.initiator;

import io.jvhost.bdev.MallocBlockDevice;
import io.jvhost.bdev.NullBlockDevice;
import io.jvhost.runtime.IdleStrategy;
import io.jvhost.vhost.VhostTarget;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.file.Path;
import java.time.Duration;

import static org.assertj.core.api.Assertions.assertThat;

/** The bench loop against an in-process target: it moves data, verifies it, and catches a lying device. */
class BenchEngineTest {
    @TempDir
    Path dir;
    VhostTarget target;

    @BeforeEach
    void setUp() {
        target = new VhostTarget(dir, 1, IdleStrategy.BACKOFF);
        target.bdevs().register(new MallocBlockDevice("Ram", 16384, 512, null));
        // 32 units of 4 KiB: reads soon hit units written before, so a dropped write shows however slow the run
        target.bdevs().register(new NullBlockDevice("Null", 256, 512, null));
        target.bdevs().register(new MallocBlockDevice("Ram2", 16384, 512, null));
        target.createBlkController("ram", "Ram", false, 2, null);
        target.createBlkController("null", "Null", false, 2, null);
        target.createScsiController("scsi", 1, null);
        target.addScsiTarget("scsi", 0, "Ram2");
    }

    @AfterEach
    void tearDown() {
        target.close();
    }

    BenchEngine.Result run(String ctrlr, BenchEngine.Type type, BenchEngine.Workload w, int bs, int qd, int queues, boolean verify) throws Exception {
        ByteArrayOutputStream progress = new ByteArrayOutputStream();
        BenchEngine e = new BenchEngine(new BenchEngine.Config(dir.resolve(ctrlr).toString(), type, w, 50, bs, qd, queues,
                Duration.ofSeconds(1), Duration.ZERO, verify, -1, 256, true), new PrintStream(progress));
        try {
            return e.run();
        } finally {
            e.close();
        }
    }

    @Test
    void randomReadWriteWithVerifyOnRamIsClean() throws Exception {
        BenchEngine.Result r = run("ram", BenchEngine.Type.BLK, BenchEngine.Workload.RANDRW, 4096, 16, 2, true);
        assertThat(r.ios()).isPositive();
        assertThat(r.errors()).isZero();
        assertThat(r.verifyErrors()).isZero();
        assertThat(r.bytes()).isEqualTo(r.ios() * 4096);
        assertThat(r.p50Us()).isPositive().isLessThanOrEqualTo(r.p99Us());
        // Clock reads are per poll, not per request: every completion still gets a start time
        // of its own submission (an unstamped slot would show as a latency of the clock's epoch).
        assertThat(r.maxUs()).isLessThanOrEqualTo(r.seconds() * 1e6);
    }

    @Test
    void verifyCatchesADeviceThatDropsWrites() throws Exception {
        BenchEngine.Result r = run("null", BenchEngine.Type.BLK, BenchEngine.Workload.RANDRW, 4096, 8, 1, true);
        assertThat(r.ios()).isPositive();
        assertThat(r.verifyErrors()).as("a null device returns stale buffers on read").isPositive();
    }

    @Test
    void scsiSequentialWritesWithVerify() throws Exception {
        BenchEngine.Result r = run("scsi", BenchEngine.Type.SCSI, BenchEngine.Workload.RW, 8192, 8, 1, true);
        assertThat(r.ios()).isPositive();
        assertThat(r.errors()).isZero();
        assertThat(r.verifyErrors()).isZero();
    }

    @Test
    void largeBlocksAndQueueDepthLimits() throws Exception {
        BenchEngine.Result r = run("ram", BenchEngine.Type.BLK, BenchEngine.Workload.READ, 131072, 4, 1, false);
        assertThat(r.ios()).isPositive();
        assertThat(r.errors()).isZero();
        org.assertj.core.api.Assertions.assertThatThrownBy(() -> run("ram", BenchEngine.Type.BLK, BenchEngine.Workload.READ, 4096, 200, 1, false))
                .hasMessageContaining("queue-size");
    }

    @Test
    void interruptModeCompletesThroughCallEventfds() throws Exception {
        BenchEngine e = new BenchEngine(new BenchEngine.Config(dir.resolve("ram").toString(), BenchEngine.Type.BLK, BenchEngine.Workload.RANDREAD,
                50, 4096, 4, 1, Duration.ofSeconds(1), Duration.ZERO, false, -1, 256, false, true), System.err);
        try {
            BenchEngine.Result r = e.run();
            assertThat(r.ios()).isPositive();
            assertThat(r.errors()).isZero();
        } finally {
            e.close();
        }
    }
}
