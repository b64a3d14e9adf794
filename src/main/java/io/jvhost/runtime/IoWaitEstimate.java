package io.jvhost.runtime;

/**
 * A running estimate of how long an asynchronous I/O channel (an io_uring ring, librbd's
 * completions) keeps its reactor waiting: the time from the first poll that found nothing while
 * requests were in flight to the poll that found the next completion. This is what the
 * reactor's hybrid wait ({@link IdleStrategy#hybridSleepNanos()}) compares against its
 * threshold to choose between spinning (a fast NVMe read or a page-cache hit comes back within
 * a few tens of µs) and sleeping on the channel's wake fd (an RBD request takes hundreds of µs
 * to ms), as Linux's hybrid block polling keeps a mean completion time per queue.
 *
 * <p>The estimate is an exponentially weighted mean with weight 1/8 per sample, in integer
 * arithmetic, fed from the owner's {@link LoopClock} (a field load per poll, no clock read and
 * no allocation). A wait that ended by the reactor waking from epoll includes the wake-up, so
 * once sleeping pays the estimate stays at or above the wake-up cost; that is the cost the
 * sleep decision is about anyway.
 *
 * <p>Thread confinement: the channel's owner (its reactor thread) only.
 */
public final class IoWaitEstimate {
    /**
     * Fewest requests in flight for which a channel offers its estimate to the hybrid wait
     * ({@code -Djvhost.idle.hybridMinInFlight}, default 1): with 2, a lone request (QD1, where
     * every measured variant of the hybrid wait lost) is left to the spin and yield phases.
     */
    public static final int MIN_IN_FLIGHT = Integer.getInteger("jvhost.idle.hybridMinInFlight", 1);

    /** Weight of a new sample: 1 / 2^SHIFT. */
    private static final int SHIFT = 3;

    private final LoopClock clock;
    /** When the current wait began (clock time), or 0 when not waiting. */
    private long waitingSince;
    /** The mean, scaled by 2^SHIFT; 0 before the first sample. */
    private long scaledMean;
    private long samples;

    public IoWaitEstimate(LoopClock clock) {
        this.clock = clock;
    }

    /**
     * Called from every poll of the channel: {@code completed} completions were found and
     * {@code inFlight} requests are still out after it.
     */
    public void polled(int completed, int inFlight) {
        long since = waitingSince;
        if (completed > 0) {
            if (since != 0) {
                long sample = clock.now() - since;
                if (sample < 0) sample = 0;
                add(sample);
            }
            waitingSince = 0;
        } else if (inFlight == 0) {
            waitingSince = 0;
        } else if (since == 0) {
            long now = clock.now();
            waitingSince = now == 0 ? 1 : now;
        }
    }

    /** Adds one observed wait, in ns (tests, and {@link #polled}). */
    void add(long sampleNanos) {
        if (samples++ == 0) scaledMean = sampleNanos << SHIFT;
        else scaledMean += sampleNanos - (scaledMean >> SHIFT);
    }

    /** The expected wait for the next completion in ns, or 0 when nothing has been observed yet. */
    public long expectedNanos() {
        return scaledMean >> SHIFT;
    }

    /**
     * The estimate offered to the hybrid wait by a channel with {@code inFlight} requests out:
     * {@link #expectedNanos()}, or 0 (no opinion) below {@link #MIN_IN_FLIGHT}.
     */
    public long expectedNanos(int inFlight) {
        return inFlight < MIN_IN_FLIGHT ? 0 : expectedNanos();
    }

    /** Waits observed so far (diagnostics). */
    public long samples() {
        return samples;
    }
}
