package io.jvhost.runtime;

/**
 * A clock that a poll loop reads once per iteration so that everything done in that iteration
 * can time itself without a clock read of its own.
 *
 * <p>{@link System#nanoTime()} costs 25-285 ns on the VMs this runs on (kvm-clock through the
 * vDSO): per request, two reads for latency statistics cost more than the whole ring walk. A
 * reactor ticks its clock once per loop iteration (it needs the time anyway for its busy/idle
 * accounting), a queue processor ticks it again after a ring poll that found requests, and the
 * per-request users (bdev latency statistics) read the ticked value: a plain field load. The price
 * is resolution: a request is stamped with the tick before the poll that found it, so what it
 * measures is its wait plus the batch it came in, to within one loop iteration.
 *
 * <p>A thread that runs no loop (tests, tools, a channel opened outside any reactor) gets
 * {@link #SYSTEM}, which reads {@link System#nanoTime()} on every call.
 *
 * <p>Thread confinement: a ticking clock is written and read only by the thread it is bound to.
 */
public final class LoopClock {
    /** Reads the system clock on every call: for threads that run no loop. */
    public static final LoopClock SYSTEM = new LoopClock(true);

    private static final ThreadLocal<LoopClock> BOUND = ThreadLocal.withInitial(() -> SYSTEM);

    private final boolean live;
    private long now;

    private LoopClock(boolean live) {
        this.live = live;
        this.now = System.nanoTime();
    }

    /** A clock that moves only when {@link #tick} is called. */
    public static LoopClock ticking() {
        return new LoopClock(false);
    }

    /** Makes {@code clock} the one {@link #current()} returns on this thread (the loop's thread, at its start). */
    public static void bind(LoopClock clock) {
        BOUND.set(clock);
    }

    /** The clock bound to the calling thread, or {@link #SYSTEM} (control path: a thread-local lookup). */
    public static LoopClock current() {
        return BOUND.get();
    }

    /** Sets the time (the owning loop, once per iteration), in {@link System#nanoTime()} units. */
    public void tick(long nanoTime) {
        if (live) throw new IllegalStateException("the system clock is not ticked");
        now = nanoTime;
    }

    /** Reads the system clock, ticks to it and returns it ({@link #SYSTEM}: only reads it). */
    public long tick() {
        long t = System.nanoTime();
        if (!live) now = t;
        return t;
    }

    /** The time of the last tick, or the system clock's time for {@link #SYSTEM}. */
    public long now() {
        return live ? System.nanoTime() : now;
    }
}
