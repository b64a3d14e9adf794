package io.jvhost.bdev;

import java.util.ArrayList;
import java.util.List;

/**
 * I/O statistics of one block device, as SPDK's {@code bdev_get_iostat} reports them: per
 * operation counts, bytes and latency sums (with minimum and maximum), in nanosecond ticks.
 *
 * <p>Counting costs no lock and no allocation on the data path. Each {@link BlockChannel}
 * opened through {@link #wrap} gets its own {@link Counters}, written only by the channel's
 * owner (reactor) thread: the submit stamps the request, {@link BlockRequest#complete} adds the
 * finished request to the counters. Readers sum the channels' counters on demand without
 * synchronizing with the writers (values may be a few requests stale, as SPDK's are). A closed
 * channel's counters are folded into a running total so a queue restart loses nothing; the lock
 * taken there and by readers is never taken per request.
 */
public final class BdevIoStats {
    /** Ticks per second of the latency fields: they are {@link System#nanoTime()} differences. */
    public static final long TICK_RATE = 1_000_000_000L;

    /** A device that does not count (test doubles); always reports zeros. */
    public static final BdevIoStats UNTRACKED = new BdevIoStats();

    /**
     * The counters of one channel. Plain fields: one writer (the channel's thread); readers
     * tolerate stale values (64-bit HotSpot does not tear {@code long} accesses).
     */
    static final class Counters {
        long bytesRead, numReadOps, readTicks, maxReadTicks, minReadTicks = Long.MAX_VALUE;
        long bytesWritten, numWriteOps, writeTicks, maxWriteTicks, minWriteTicks = Long.MAX_VALUE;
        long bytesUnmapped, numUnmapOps, unmapTicks, maxUnmapTicks, minUnmapTicks = Long.MAX_VALUE;
        long bytesZeroed, numWriteZeroesOps, numFlushOps;
        long ioErrors;

        /** Adds one finished request (owner thread; allocation-free). */
        void record(BlockRequest.Op op, long bytes, int status, long ticks) {
            if (status != 0) {
                ioErrors++;
                return;
            }
            switch (op) {
                case READ -> {
                    bytesRead += bytes;
                    numReadOps++;
                    readTicks += ticks;
                    if (ticks > maxReadTicks) maxReadTicks = ticks;
                    if (ticks < minReadTicks) minReadTicks = ticks;
                }
                case WRITE -> {
                    bytesWritten += bytes;
                    numWriteOps++;
                    writeTicks += ticks;
                    if (ticks > maxWriteTicks) maxWriteTicks = ticks;
                    if (ticks < minWriteTicks) minWriteTicks = ticks;
                }
                case UNMAP -> {
                    bytesUnmapped += bytes;
                    numUnmapOps++;
                    unmapTicks += ticks;
                    if (ticks > maxUnmapTicks) maxUnmapTicks = ticks;
                    if (ticks < minUnmapTicks) minUnmapTicks = ticks;
                }
                case WRITE_ZEROES -> {
                    bytesZeroed += bytes;
                    numWriteZeroesOps++;
                }
                case FLUSH -> numFlushOps++;
            }
        }

        void addTo(Counters t) {
            t.bytesRead += bytesRead;
            t.numReadOps += numReadOps;
            t.readTicks += readTicks;
            t.maxReadTicks = Math.max(t.maxReadTicks, maxReadTicks);
            t.minReadTicks = Math.min(t.minReadTicks, minReadTicks);
            t.bytesWritten += bytesWritten;
            t.numWriteOps += numWriteOps;
            t.writeTicks += writeTicks;
            t.maxWriteTicks = Math.max(t.maxWriteTicks, maxWriteTicks);
            t.minWriteTicks = Math.min(t.minWriteTicks, minWriteTicks);
            t.bytesUnmapped += bytesUnmapped;
            t.numUnmapOps += numUnmapOps;
            t.unmapTicks += unmapTicks;
            t.maxUnmapTicks = Math.max(t.maxUnmapTicks, maxUnmapTicks);
            t.minUnmapTicks = Math.min(t.minUnmapTicks, minUnmapTicks);
            t.bytesZeroed += bytesZeroed;
            t.numWriteZeroesOps += numWriteZeroesOps;
            t.numFlushOps += numFlushOps;
            t.ioErrors += ioErrors;
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

    private final List<Counters> live = new ArrayList<>();
    private final Counters retired = new Counters();
    /** The sums at the last {@link #reset}: reported values are the totals minus these. */
    private final Counters baseline = new Counters();

    /**
     * Returns a channel that counts every request submitted through it into this device's
     * statistics. Called from {@link BlockDevice#openChannel()} on the channel's owner thread.
     */
    public BlockChannel wrap(BlockChannel inner) {
        if (this == UNTRACKED) return inner;
        Counters c = new Counters();
        synchronized (this) {
            live.add(c);
        }
        return new CountingChannel(inner, c);
    }

    private synchronized void retire(Counters c) {
        if (live.remove(c)) c.addTo(retired);
    }

    /** The totals as of now (any thread). */
    public synchronized Snapshot snapshot() {
        Counters t = new Counters();
        retired.addTo(t);
        for (Counters c : live) c.addTo(t);
        Counters b = baseline;
        return new Snapshot(t.bytesRead - b.bytesRead, t.numReadOps - b.numReadOps, t.readTicks - b.readTicks, t.maxReadTicks, min(t.minReadTicks),
                t.bytesWritten - b.bytesWritten, t.numWriteOps - b.numWriteOps, t.writeTicks - b.writeTicks, t.maxWriteTicks, min(t.minWriteTicks),
                t.bytesUnmapped - b.bytesUnmapped, t.numUnmapOps - b.numUnmapOps, t.unmapTicks - b.unmapTicks, t.maxUnmapTicks, min(t.minUnmapTicks),
                t.bytesZeroed - b.bytesZeroed, t.numWriteZeroesOps - b.numWriteZeroesOps, t.numFlushOps - b.numFlushOps, t.ioErrors - b.ioErrors);
    }

    /** What {@link #reset} clears (SPDK's {@code bdev_reset_iostat} modes). */
    public enum ResetMode { ALL, MAXMIN }

    /**
     * SPDK's {@code bdev_reset_iostat}: {@code ALL} starts every count, byte and latency sum
     * from zero, {@code MAXMIN} only the latency maxima and minima (any thread).
     *
     * <p>Counts and sums are never written here (their writer is the channel's thread): the
     * current sums become the baseline that {@link #snapshot} subtracts, so nothing is lost or
     * torn. Maxima and minima cannot be subtracted, so they are overwritten in place; a request
     * completing at that very moment may keep its latency as the new maximum or minimum, which
     * is a latency seen after the reset anyway.
     */
    public synchronized void reset(ResetMode mode) {
        if (mode == ResetMode.ALL) {
            Counters t = new Counters();
            retired.addTo(t);
            for (Counters c : live) c.addTo(t);
            Counters b = baseline;
            b.bytesRead = t.bytesRead; b.numReadOps = t.numReadOps; b.readTicks = t.readTicks;
            b.bytesWritten = t.bytesWritten; b.numWriteOps = t.numWriteOps; b.writeTicks = t.writeTicks;
            b.bytesUnmapped = t.bytesUnmapped; b.numUnmapOps = t.numUnmapOps; b.unmapTicks = t.unmapTicks;
            b.bytesZeroed = t.bytesZeroed; b.numWriteZeroesOps = t.numWriteZeroesOps; b.numFlushOps = t.numFlushOps;
            b.ioErrors = t.ioErrors;
        }
        clearMaxMin(retired);
        for (Counters c : live) clearMaxMin(c);
    }

    private static void clearMaxMin(Counters c) {
        c.maxReadTicks = 0;
        c.minReadTicks = Long.MAX_VALUE;
        c.maxWriteTicks = 0;
        c.minWriteTicks = Long.MAX_VALUE;
        c.maxUnmapTicks = 0;
        c.minUnmapTicks = Long.MAX_VALUE;
    }

    private static long min(long v) {
        return v == Long.MAX_VALUE ? 0 : v;
    }

    /** Stamps each accepted request with the channel's counters and the submit time. */
    private final class CountingChannel implements BlockChannel {
        private final BlockChannel inner;
        private final Counters counters;

        CountingChannel(BlockChannel inner, Counters counters) {
            this.inner = inner;
            this.counters = counters;
        }

        @Override
        public int submit(BlockRequest r) {
            r.ioCounters = counters;
            r.submitNanos = System.nanoTime();
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
        public void close() {
            inner.close();
            retire(counters);
        }
    }
}
