package io.jvhost.runtime;

/**
 * How a reactor behaves when a loop iteration found no work.
 *
 * @param spinNanos  busy-spin this long after the last work
 * @param yieldNanos then yield the CPU this long
 * @param sleep      then sleep on the kick eventfds (epoll) until a kick or command arrives;
 *                   false = never sleep (pure poll mode, one core at 100%)
 */
public record IdleStrategy(long spinNanos, long yieldNanos, boolean sleep) {
    /** Poll forever: lowest latency, a full core per reactor (SPDK's default behaviour). */
    public static final IdleStrategy BUSY = new IdleStrategy(Long.MAX_VALUE, 0, false);
    /**
     * Spin 100 µs, yield 1 ms, then sleep: an idle target costs ~0 CPU. The system properties
     * {@code jvhost.idle.spinNanos} and {@code jvhost.idle.yieldNanos} change the two phases
     * (measurements: 0 and 0 sleep as soon as a loop finds nothing to do, see BENCHMARKS.md
     * "io_uring: where QD1 and 128 KiB lose").
     */
    public static final IdleStrategy BACKOFF = new IdleStrategy(Long.getLong("jvhost.idle.spinNanos", 100_000),
            Long.getLong("jvhost.idle.yieldNanos", 1_000_000), true);
}
