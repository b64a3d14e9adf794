package io.jvhost.bdev;

import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

/** Per-bdev I/O statistics: counted per channel, summed on read, kept after a channel closes. */
class BdevIoStatsTest {
    static final class Done implements BlockRequest.Completion {
        final List<Integer> statuses = new ArrayList<>();

        @Override
        public void onComplete(BlockRequest request, int status) {
            statuses.add(status);
        }
    }

    static BlockRequest req(Done done, BlockRequest.Op op, long offset, MemorySegment buf, long len) {
        BlockRequest r = new BlockRequest(4);
        r.completion(done);
        r.reset(op, offset);
        if (op == BlockRequest.Op.READ || op == BlockRequest.Op.WRITE) r.addBuffer(buf, 0, len);
        else r.length = len;
        return r;
    }

    @Test
    void countsOperationsBytesAndLatencyPerKindAndSurvivesChannelClose() {
        try (Arena arena = Arena.ofConfined(); MallocBlockDevice dev = new MallocBlockDevice("M", 1024, 512, null)) {
            MemorySegment buf = arena.allocate(8192, 4096);
            Done done = new Done();
            BlockChannel a = dev.openChannel();
            BlockChannel b = dev.openChannel();
            assertThat(a.submit(req(done, BlockRequest.Op.WRITE, 0, buf, 4096))).isZero();
            assertThat(a.submit(req(done, BlockRequest.Op.READ, 0, buf, 8192))).isZero();
            assertThat(b.submit(req(done, BlockRequest.Op.READ, 4096, buf, 512))).isZero();
            assertThat(b.submit(req(done, BlockRequest.Op.UNMAP, 0, buf, 1024))).isZero();
            assertThat(b.submit(req(done, BlockRequest.Op.WRITE_ZEROES, 0, buf, 2048))).isZero();
            assertThat(b.submit(req(done, BlockRequest.Op.FLUSH, 0, buf, 0))).isZero();
            // Not accepted (past the end): no completion, not counted.
            assertThat(b.submit(req(done, BlockRequest.Op.READ, 1024L * 512, buf, 512))).isNegative();

            // Nothing completes before poll.
            assertThat(dev.ioStats().snapshot().numReadOps()).isZero();
            a.poll();
            b.poll();
            assertThat(done.statuses).containsOnly(0).hasSize(6);

            BdevIoStats.Snapshot s = dev.ioStats().snapshot();
            assertThat(s.numReadOps()).isEqualTo(2);
            assertThat(s.bytesRead()).isEqualTo(8192 + 512);
            assertThat(s.numWriteOps()).isEqualTo(1);
            assertThat(s.bytesWritten()).isEqualTo(4096);
            assertThat(s.numUnmapOps()).isEqualTo(1);
            assertThat(s.bytesUnmapped()).isEqualTo(1024);
            assertThat(s.numWriteZeroesOps()).isEqualTo(1);
            assertThat(s.bytesZeroed()).isEqualTo(2048);
            assertThat(s.numFlushOps()).isEqualTo(1);
            assertThat(s.ioErrors()).isZero();
            assertThat(s.readLatencyTicks()).isPositive();
            assertThat(s.maxReadLatencyTicks()).isGreaterThanOrEqualTo(s.minReadLatencyTicks()).isPositive();
            assertThat(s.readLatencyTicks()).isGreaterThanOrEqualTo(s.maxReadLatencyTicks());
            assertThat(s.minReadLatencyTicks()).isPositive();

            a.close();
            b.close();
            assertThat(dev.ioStats().snapshot()).isEqualTo(s);

            BlockChannel c = dev.openChannel();
            assertThat(c.submit(req(done, BlockRequest.Op.WRITE, 0, buf, 512))).isZero();
            c.poll();
            assertThat(dev.ioStats().snapshot().numWriteOps()).isEqualTo(2);
            c.close();
        }
    }

    @Test
    void failuresCountAsErrorsAndMinimumIsZeroWithoutOps() throws Exception {
        java.nio.file.Path f = java.nio.file.Files.createTempFile("iostat", ".img");
        try (Arena arena = Arena.ofConfined()) {
            java.nio.file.Files.write(f, new byte[1 << 16]);
            try (FileBlockDevice dev = new FileBlockDevice("F", f.toString(), 512, true, null)) {
                MemorySegment buf = arena.allocate(4096, 4096);
                Done done = new Done();
                BlockChannel ch = dev.openChannel();
                assertThat(ch.submit(req(done, BlockRequest.Op.WRITE, 0, buf, 4096))).isZero();
                org.awaitility.Awaitility.await().pollInSameThread().pollInterval(java.time.Duration.ofMillis(1))
                        .until(() -> ch.poll() > 0 || !done.statuses.isEmpty());
                assertThat(done.statuses).hasSize(1).allMatch(st -> st < 0);
                BdevIoStats.Snapshot s = dev.ioStats().snapshot();
                assertThat(s.ioErrors()).isEqualTo(1);
                assertThat(s.numWriteOps()).isZero();
                assertThat(s.minWriteLatencyTicks()).isZero();
                ch.close();
            }
        } finally {
            java.nio.file.Files.deleteIfExists(f);
        }
    }

    /** Latencies land in the first power-of-two bucket (from 2^10 ns) they do not exceed; beyond 2^30 ns in +Inf. */
    @Test
    void latencyBucketsArePowersOfTwoAndInclusive() {
        assertThat(BdevIoStats.bucket(0)).isZero();
        assertThat(BdevIoStats.bucket(1)).isZero();
        assertThat(BdevIoStats.bucket(1024)).isZero();
        assertThat(BdevIoStats.bucket(1025)).isEqualTo(1);
        assertThat(BdevIoStats.bucket(2048)).isEqualTo(1);
        assertThat(BdevIoStats.bucket(2049)).isEqualTo(2);
        assertThat(BdevIoStats.bucket(1L << 30)).isEqualTo(20);
        assertThat(BdevIoStats.bucket((1L << 30) + 1)).isEqualTo(BdevIoStats.BOUNDED_BUCKETS);
        assertThat(BdevIoStats.bucket(Long.MAX_VALUE)).isEqualTo(BdevIoStats.BOUNDED_BUCKETS);
    }

    /**
     * A reset writes nothing into the owners' counters: ALL rebases the sums, MAXMIN hides the
     * old maxima until the owner's next request starts them anew; the raw counters keep
     * growing (what the metrics endpoint reads).
     */
    @Test
    void resetRebasesSumsAndRestartsMaxMinWithoutTouchingTheCounters() {
        try (Arena arena = Arena.ofConfined(); MallocBlockDevice dev = new MallocBlockDevice("R", 1024, 512, null)) {
            MemorySegment buf = arena.allocate(4096, 4096);
            Done done = new Done();
            BlockChannel ch = dev.openChannel();
            assertThat(ch.submit(req(done, BlockRequest.Op.READ, 0, buf, 4096))).isZero();
            ch.poll();
            BdevIoStats st = dev.ioStats();
            assertThat(st.snapshot().maxReadLatencyTicks()).isPositive();
            st.reset(BdevIoStats.ResetMode.MAXMIN);
            BdevIoStats.Snapshot s = st.snapshot();
            assertThat(s.numReadOps()).isEqualTo(1);
            assertThat(s.maxReadLatencyTicks()).isZero();
            assertThat(s.minReadLatencyTicks()).isZero();
            st.reset(BdevIoStats.ResetMode.ALL);
            assertThat(st.snapshot().numReadOps()).isZero();
            assertThat(st.snapshot().bytesRead()).isZero();
            assertThat(ch.submit(req(done, BlockRequest.Op.READ, 0, buf, 512))).isZero();
            ch.poll();
            s = st.snapshot();
            assertThat(s.numReadOps()).isEqualTo(1);
            assertThat(s.bytesRead()).isEqualTo(512);
            assertThat(s.maxReadLatencyTicks()).isPositive().isEqualTo(s.minReadLatencyTicks()).isEqualTo(s.readLatencyTicks());
            ch.close();
        }
    }

    @Test
    void latencyIsTakenFromTheOwnerThreadsLoopClockNotTheSystemClock() throws Exception {
        // On its own thread: the binding is per thread and must not leak into other tests.
        java.util.concurrent.FutureTask<BdevIoStats.Snapshot> task = new java.util.concurrent.FutureTask<>(() -> {
            io.jvhost.runtime.LoopClock clock = io.jvhost.runtime.LoopClock.ticking();
            io.jvhost.runtime.LoopClock.bind(clock);
            try (Arena arena = Arena.ofConfined(); MallocBlockDevice dev = new MallocBlockDevice("M", 1024, 512, null)) {
                MemorySegment buf = arena.allocate(4096, 4096);
                Done done = new Done();
                BlockChannel ch = dev.openChannel();
                clock.tick(1_000);
                assertThat(ch.submit(req(done, BlockRequest.Op.READ, 0, buf, 4096))).isZero();
                assertThat(ch.submit(req(done, BlockRequest.Op.WRITE, 0, buf, 4096))).isZero();
                clock.tick(1_750);
                ch.poll();
                assertThat(done.statuses).containsExactly(0, 0);
                ch.close();
                return dev.ioStats().snapshot();
            }
        });
        Thread t = new Thread(task);
        t.start();
        BdevIoStats.Snapshot s = task.get(30, java.util.concurrent.TimeUnit.SECONDS);
        // Exactly the ticked difference: a system-clock reading could not produce these numbers.
        assertThat(s.readLatencyTicks()).isEqualTo(750);
        assertThat(s.minReadLatencyTicks()).isEqualTo(750);
        assertThat(s.maxReadLatencyTicks()).isEqualTo(750);
        assertThat(s.writeLatencyTicks()).isEqualTo(750);
    }
}
