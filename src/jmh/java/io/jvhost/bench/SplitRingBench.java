package io.jvhost.bench;

import io.jvhost.virtio.DriverSplitQueue;
import io.jvhost.virtio.SplitVirtQueue;
import org.openjdk.jmh.annotations.*;

import java.util.concurrent.TimeUnit;

import static io.jvhost.virtio.SplitRing.F_NEXT;
import static io.jvhost.virtio.SplitRing.F_WRITE;

/**
 * The device side's split ring walk per request: {@link SplitVirtQueue#poll} + {@code complete}
 * (from a null handler) + one {@code flush} per batch, over virtio-blk-shaped chains (16-byte
 * header R, 4 KiB data W, 1-byte status W) in plain memory, single-threaded.
 *
 * <ul>
 * <li>{@code walk}: the driver ({@link DriverSplitQueue}) builds every chain of the batch
 *     (3 descriptors), publishes, and reaps the used ring in the same thread, so its cost is
 *     included: a loopback run with nothing crossing cores.
 * <li>{@code walkDeviceOnly}: the chains and every avail ring entry are written once at set-up;
 *     per batch the "driver" only moves avail->idx, so the score is the target's own cost.
 * </ul>
 * Each invocation handles {@value #REQUESTS} requests in batches of {@code batch}; scores are
 * per request. Rings without EVENT_IDX and without a call fd: flush publishes, never signals.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "-Xms1g", "-Xmx1g"})
public class SplitRingBench {
    static final int REQUESTS = 128;
    /** 128 chains of 3 descriptors must fit in the descriptor table. */
    static final int QUEUE_SIZE = 512;

    /** The null device: completes each chain at once with the bytes it could have written. */
    static final SplitVirtQueue.ChainHandler NULL_HANDLER = (q, c) -> q.complete(c.head(), (int) c.writableBytes());
    static final DriverSplitQueue.UsedHandler REAP = (head, len) -> { };

    /** Driver and device over one ring; the driver builds fresh chains every batch. */
    @State(Scope.Thread)
    public static class Refill {
        @Param({"1", "32", "128"})
        int batch;

        GuestRam ram;
        DriverSplitQueue driver;
        SplitVirtQueue queue;

        @Setup(Level.Trial)
        public void setUp() {
            if (REQUESTS % batch != 0) throw new IllegalArgumentException("batch must divide " + REQUESTS);
            ram = new GuestRam(QUEUE_SIZE);
            driver = ram.driver(false);
            queue = ram.device(false);
        }

        @TearDown(Level.Trial)
        public void tearDown() {
            check(queue);
            ram.close();
        }
    }

    /** Chains written once: head {@code 3k} starts slot k's chain; every avail entry is written at set-up. */
    @State(Scope.Thread)
    public static class Static {
        @Param({"1", "32", "128"})
        int batch;

        GuestRam ram;
        DriverSplitQueue driver;
        SplitVirtQueue queue;
        int availIdx;

        @Setup(Level.Trial)
        public void setUp() {
            if (REQUESTS % batch != 0) throw new IllegalArgumentException("batch must divide " + REQUESTS);
            ram = new GuestRam(QUEUE_SIZE);
            driver = ram.driver(false);
            for (int k = 0; k < REQUESTS; k++) {
                driver.writeDescriptor(3 * k, GuestRam.headerGpa(k), 16, F_NEXT, 3 * k + 1);
                driver.writeDescriptor(3 * k + 1, GuestRam.dataGpa(k), GuestRam.DATA_LEN, F_NEXT | F_WRITE, 3 * k + 2);
                driver.writeDescriptor(3 * k + 2, GuestRam.statusGpa(k), 1, F_WRITE, 0);
            }
            // Avail slot s names head 3 * (s % 128): any run of <= 128 consecutive slots has distinct heads.
            for (int s = 0; s < QUEUE_SIZE; s++) driver.pushRawHead(3 * (s % REQUESTS));
            driver.forceAvailIndex(0);
            queue = ram.device(false);
        }

        @TearDown(Level.Trial)
        public void tearDown() {
            check(queue);
            ram.close();
        }
    }

    static void check(SplitVirtQueue q) {
        if (q.stats.chainErrors() != 0 || q.isBroken()) throw new IllegalStateException("malformed chains: " + q.lastError());
        if (q.inFlight() != 0) throw new IllegalStateException(q.inFlight() + " chains left in flight");
    }

    @Benchmark
    @OperationsPerInvocation(REQUESTS)
    public int walk(Refill s) {
        DriverSplitQueue d = s.driver;
        SplitVirtQueue q = s.queue;
        int batch = s.batch;
        int done = 0;
        for (int r = 0; r < REQUESTS; r += batch) {
            for (int i = 0; i < batch; i++) GuestRam.addBlkChain(d, i);
            d.publish();
            done += q.poll(NULL_HANDLER, batch);
            q.flush();
            d.pollUsed(REAP);
        }
        return done;
    }

    @Benchmark
    @OperationsPerInvocation(REQUESTS)
    public int walkDeviceOnly(Static s) {
        DriverSplitQueue d = s.driver;
        SplitVirtQueue q = s.queue;
        int batch = s.batch;
        int done = 0;
        for (int r = 0; r < REQUESTS; r += batch) {
            s.availIdx = (s.availIdx + batch) & 0xffff;
            d.forceAvailIndex(s.availIdx);
            done += q.poll(NULL_HANDLER, batch);
            q.flush();
        }
        return done;
    }
}
