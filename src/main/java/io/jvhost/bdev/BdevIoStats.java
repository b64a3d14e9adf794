package io.jvhost.bdev;

import io.jvhost.runtime.CounterLayout;
import io.jvhost.runtime.CounterRegistry;
import io.jvhost.runtime.CounterSet;
import io.jvhost.runtime.LoopClock;

import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * I/O statistics of one block device, as SPDK's {@code bdev_get_iostat} reports them: per
 * operation counts, bytes and latency sums (with minimum and maximum), in nanosecond ticks; and
 * a latency histogram per operation for the metrics endpoint.
 *
 * <p>Counting costs no lock, no atomic instruction and no allocation on the data path. Each
 * thread that opens channels to the device (a reactor) gets one {@link CounterSet} of the
 * device's, written only by that thread with opaque stores: the counting channel stamps each
 * request at submit, {@link BlockRequest#complete} (on the same thread) adds it to the set. The
 * set outlives the channel (the next channel on that thread counts on), so closing a channel
 * loses nothing and there is nothing to fold. Latencies are read from the owner thread's
 * {@link LoopClock} (a reactor's: ticked once per loop iteration, so a request that completes in
 * the iteration that submitted it measures 0, any other to within one iteration), not from the
 * system clock, whose two reads per request cost more than the rest of a RAM-disk request. Readers sum the sets with opaque loads, without
 * any lock (values may be a request stale, as SPDK's are). The sets are published in the
 * process's counter registry with the label {@code bdev} while the device is registered.
 */
public final class BdevIoStats {
    /** Ticks per second of the latency fields: they are {@link System#nanoTime()} differences. */
    public static final long TICK_RATE = 1_000_000_000L;

    /** Latency histogram buckets: powers of two from 2^10 ns (~1 µs) to 2^30 ns (~1.07 s), then +Inf. */
    static final int FIRST_BUCKET_SHIFT = 10, BOUNDED_BUCKETS = 21;
    private static final double[] BOUNDS = new double[BOUNDED_BUCKETS + 1];

    public static final CounterLayout LAYOUT;
    static final int BYTES_READ, READ_OPS, READ_MAX, READ_MIN, READ_BUCKETS, READ_TICKS;
    static final int BYTES_WRITTEN, WRITE_OPS, WRITE_MAX, WRITE_MIN, WRITE_BUCKETS, WRITE_TICKS;
    static final int BYTES_UNMAPPED, UNMAP_OPS, UNMAP_MAX, UNMAP_MIN, UNMAP_BUCKETS, UNMAP_TICKS;
    static final int BYTES_ZEROED, WRITE_ZEROES_OPS, FLUSH_OPS, IO_ERRORS, EPOCH;

    static {
        for (int i = 0; i < BOUNDED_BUCKETS; i++) BOUNDS[i] = (1L << (FIRST_BUCKET_SHIFT + i)) * 1e-9;
        BOUNDS[BOUNDED_BUCKETS] = Double.POSITIVE_INFINITY;
        CounterLayout.Builder b = CounterLayout.builder("bdev");
        String ops = "jvhost_bdev_ops", opsHelp = "Operations completed successfully, by kind";
        String bytes = "jvhost_bdev_bytes", bytesHelp = "Bytes covered by successful operations, by kind";
        String lat = "jvhost_bdev_latency_seconds", latHelp = "Latency of successful operations from submit to completion, by kind";
        BYTES_READ = b.counter("bytes_read", bytes, bytesHelp, "op", "read");
        READ_OPS = b.counter("num_read_ops", ops, opsHelp, "op", "read");
        READ_MAX = b.hidden("max_read_ticks");
        READ_MIN = b.hidden("min_read_ticks");
        READ_BUCKETS = b.histogram("read_latency", lat, latHelp, "op", "read", BOUNDS, 1e-9);
        READ_TICKS = READ_BUCKETS + BOUNDS.length;
        BYTES_WRITTEN = b.counter("bytes_written", bytes, bytesHelp, "op", "write");
        WRITE_OPS = b.counter("num_write_ops", ops, opsHelp, "op", "write");
        WRITE_MAX = b.hidden("max_write_ticks");
        WRITE_MIN = b.hidden("min_write_ticks");
        WRITE_BUCKETS = b.histogram("write_latency", lat, latHelp, "op", "write", BOUNDS, 1e-9);
        WRITE_TICKS = WRITE_BUCKETS + BOUNDS.length;
        BYTES_UNMAPPED = b.counter("bytes_unmapped", bytes, bytesHelp, "op", "unmap");
        UNMAP_OPS = b.counter("num_unmap_ops", ops, opsHelp, "op", "unmap");
        UNMAP_MAX = b.hidden("max_unmap_ticks");
        UNMAP_MIN = b.hidden("min_unmap_ticks");
        UNMAP_BUCKETS = b.histogram("unmap_latency", lat, latHelp, "op", "unmap", BOUNDS, 1e-9);
        UNMAP_TICKS = UNMAP_BUCKETS + BOUNDS.length;
        BYTES_ZEROED = b.counter("bytes_zeroed", bytes, bytesHelp, "op", "write_zeroes");
        WRITE_ZEROES_OPS = b.counter("num_write_zeroes_ops", ops, opsHelp, "op", "write_zeroes");
        FLUSH_OPS = b.counter("num_flush_ops", ops, opsHelp, "op", "flush");
        IO_ERRORS = b.counter("io_errors", "jvhost_bdev_io_errors", "Operations that completed with an error");
        EPOCH = b.hidden("maxmin_epoch");
        LAYOUT = b.build();
    }

    /** (Declared after the layout, which it needs.) A device that does not count (test doubles); always reports zeros. */
    public static final BdevIoStats UNTRACKED = new BdevIoStats(null);

    /** The histogram bucket of a latency: the first power-of-two bound it does not exceed. */
    static int bucket(long ticks) {
        int bits = 64 - Long.numberOfLeadingZeros(Math.max(ticks - 1, 0));
        return Math.min(Math.max(bits - FIRST_BUCKET_SHIFT, 0), BOUNDED_BUCKETS);
    }

    /** One thread's counters of this device: the owner writes, anyone reads. */
    static final class Counters {
        final BdevIoStats stats;
        final CounterSet set = new CounterSet(LAYOUT);
        /** The owner thread's loop clock: submit and completion read it instead of the system clock. */
        final LoopClock clock;

        Counters(BdevIoStats stats, LoopClock clock) {
            this.stats = stats;
            this.clock = clock;
            clearMaxMin(0);
        }

        /** Adds one finished request (owner thread; allocation-free). */
        void record(BlockRequest.Op op, long bytes, int status, long ticks) {
            CounterSet c = set;
            int epoch = stats.maxMinEpoch;
            if (c.get(EPOCH) != epoch) clearMaxMin(epoch);
            if (status != 0) {
                c.incrementOwned(IO_ERRORS);
                return;
            }
            switch (op) {
                case READ -> timed(c, bytes, ticks, BYTES_READ, READ_OPS, READ_TICKS, READ_MAX, READ_MIN, READ_BUCKETS);
                case WRITE -> timed(c, bytes, ticks, BYTES_WRITTEN, WRITE_OPS, WRITE_TICKS, WRITE_MAX, WRITE_MIN, WRITE_BUCKETS);
                case UNMAP -> timed(c, bytes, ticks, BYTES_UNMAPPED, UNMAP_OPS, UNMAP_TICKS, UNMAP_MAX, UNMAP_MIN, UNMAP_BUCKETS);
                case WRITE_ZEROES -> {
                    c.addOwned(BYTES_ZEROED, bytes);
                    c.incrementOwned(WRITE_ZEROES_OPS);
                }
                case FLUSH -> c.incrementOwned(FLUSH_OPS);
            }
        }

        private static void timed(CounterSet c, long bytes, long ticks, int bytesSlot, int opsSlot, int ticksSlot, int maxSlot, int minSlot,
                                  int buckets) {
            c.addOwned(bytesSlot, bytes);
            c.incrementOwned(opsSlot);
            c.addOwned(ticksSlot, ticks);
            if (ticks > c.get(maxSlot)) c.setOwned(maxSlot, ticks);
            if (ticks < c.get(minSlot)) c.setOwned(minSlot, ticks);
            c.incrementOwned(buckets + bucket(ticks));
        }

        /** Owner thread: starts the maxima and minima anew for reset epoch {@code epoch}. */
        private void clearMaxMin(int epoch) {
            CounterSet c = set;
            c.setOwned(READ_MAX, 0);
            c.setOwned(READ_MIN, Long.MAX_VALUE);
            c.setOwned(WRITE_MAX, 0);
            c.setOwned(WRITE_MIN, Long.MAX_VALUE);
            c.setOwned(UNMAP_MAX, 0);
            c.setOwned(UNMAP_MIN, Long.MAX_VALUE);
            c.setOwned(EPOCH, epoch);
        }
    }

    /**
     * A point-in-time sum over all channels. Latencies are in ticks of {@link #TICK_RATE};
     * a minimum is 0 while no operation of that kind completed (SPDK prints it that way).
     * Only successful requests are counted per operation; failures count in {@code ioErrors}.
     */
    public record Snapshot(long bytesRead, long numReadOps, long readLatencyTicks, long maxReadLatencyTicks, long minReadLatencyTicks,
                           long bytesWritten, long numWriteOps, long writeLatencyTicks, long maxWriteLatencyTicks, long minWriteLatencyTicks,
                           long bytesUnmapped, long numUnmapOps, long unmapLatencyTicks, long maxUnmapLatencyTicks, long minUnmapLatencyTicks,
                           long bytesZeroed, long numWriteZeroesOps, long numFlushOps, long ioErrors) {}

    /** Slots that {@link #reset} rebases (counts and sums; not maxima and minima). */
    private static final int[] SUMMED = {BYTES_READ, READ_OPS, READ_TICKS, BYTES_WRITTEN, WRITE_OPS, WRITE_TICKS, BYTES_UNMAPPED, UNMAP_OPS, UNMAP_TICKS,
            BYTES_ZEROED, WRITE_ZEROES_OPS, FLUSH_OPS, IO_ERRORS};

    private final String name;
    private final Map<Thread, Counters> byThread = new ConcurrentHashMap<>();
    private final List<Counters> all = new CopyOnWriteArrayList<>();
    private final List<CounterRegistry.Entry> published = new CopyOnWriteArrayList<>();
    /** Bumped by every reset: owners start their maxima and minima anew when they see it change. */
    private volatile int maxMinEpoch;
    /** The sums at the last {@code ALL} reset, indexed by slot: reported values are the totals minus these. */
    private volatile long[] baseline = new long[LAYOUT.size()];

    /** @param name the device's name (the {@code bdev} label of its published counters); null: not published */
    public BdevIoStats(String name) {
        this.name = name;
    }

    /**
     * Returns a channel that counts every request submitted through it into this device's
     * statistics. Called from {@link BlockDevice#openChannel()} on the channel's owner thread,
     * which from then on writes this thread's counters (control path: may allocate).
     */
    public BlockChannel wrap(BlockChannel inner) {
        if (this == UNTRACKED) return inner;
        Counters c = byThread.get(Thread.currentThread());
        if (c == null) {
            c = new Counters(this, LoopClock.current());
            byThread.put(Thread.currentThread(), c);
            all.add(c);
            if (name != null) published.add(CounterRegistry.global().publish(c.set, "bdev", name));
        }
        return new CountingChannel(inner, c);
    }

    /** Withdraws this device's counters from the registry (the device is deleted); idempotent. */
    public void withdraw() {
        for (CounterRegistry.Entry e : published) CounterRegistry.global().withdraw(e);
        published.clear();
    }

    private long sum(int slot) {
        long t = 0;
        for (Counters c : all) t += c.set.get(slot);
        return t;
    }

    private long max(int slot, int epoch) {
        long m = 0;
        for (Counters c : all) if (c.set.get(EPOCH) == epoch) m = Math.max(m, c.set.get(slot));
        return m;
    }

    private long min(int slot, int epoch) {
        long m = Long.MAX_VALUE;
        for (Counters c : all) if (c.set.get(EPOCH) == epoch) m = Math.min(m, c.set.get(slot));
        return m == Long.MAX_VALUE ? 0 : m;
    }

    /** The totals as of now (any thread; no lock). */
    public Snapshot snapshot() {
        long[] b = baseline;
        int e = maxMinEpoch;
        return new Snapshot(sum(BYTES_READ) - b[BYTES_READ], sum(READ_OPS) - b[READ_OPS], sum(READ_TICKS) - b[READ_TICKS], max(READ_MAX, e), min(READ_MIN, e),
                sum(BYTES_WRITTEN) - b[BYTES_WRITTEN], sum(WRITE_OPS) - b[WRITE_OPS], sum(WRITE_TICKS) - b[WRITE_TICKS], max(WRITE_MAX, e), min(WRITE_MIN, e),
                sum(BYTES_UNMAPPED) - b[BYTES_UNMAPPED], sum(UNMAP_OPS) - b[UNMAP_OPS], sum(UNMAP_TICKS) - b[UNMAP_TICKS], max(UNMAP_MAX, e), min(UNMAP_MIN, e),
                sum(BYTES_ZEROED) - b[BYTES_ZEROED], sum(WRITE_ZEROES_OPS) - b[WRITE_ZEROES_OPS], sum(FLUSH_OPS) - b[FLUSH_OPS], sum(IO_ERRORS) - b[IO_ERRORS]);
    }

    /** What {@link #reset} clears (SPDK's {@code bdev_reset_iostat} modes). */
    public enum ResetMode { ALL, MAXMIN }

    /**
     * SPDK's {@code bdev_reset_iostat}: {@code ALL} starts every count, byte and latency sum
     * from zero, {@code MAXMIN} only the latency maxima and minima (any thread).
     *
     * <p>Nothing is written into the counters here (their writers are the channels' threads):
     * the current sums become the baseline that {@link #snapshot} subtracts, and the reset
     * epoch moves on, which makes readers ignore the maxima and minima of every set until its
     * owner has started them anew at its next request. The counters themselves only grow, as
     * the metrics endpoint (which ignores resets) needs.
     */
    public synchronized void reset(ResetMode mode) {
        if (mode == ResetMode.ALL) {
            long[] b = new long[LAYOUT.size()];
            for (int slot : SUMMED) b[slot] = sum(slot);
            baseline = b;
        }
        maxMinEpoch++;
    }

    /** Stamps each accepted request with the channel's counters and the submit time. */
    private static final class CountingChannel implements BlockChannel {
        private final BlockChannel inner;
        private final Counters counters;

        CountingChannel(BlockChannel inner, Counters counters) {
            this.inner = inner;
            this.counters = counters;
        }

        @Override
        public int submit(BlockRequest r) {
            r.ioCounters = counters;
            r.submitNanos = counters.clock.now();
            int rc = inner.submit(r);
            // Not accepted: no completion will come (submit contract), so nothing to count.
            if (rc != 0) r.ioCounters = null;
            return rc;
        }

        @Override
        public int poll() {
            return inner.poll();
        }

        @Override
        public int inFlight() {
            return inner.inFlight();
        }

        @Override
        public int wakeFd() {
            return inner.wakeFd();
        }

        @Override
        public long expectedWaitNanos() {
            return inner.expectedWaitNanos();
        }

        @Override
        public void close() {
            inner.close();
        }
    }
}
