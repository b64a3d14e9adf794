package io.jvhost.runtime;

/**
 * How a reactor behaves when a loop iteration found no work.
 *
 * @param spinNanos        busy-spin this long after the last work
 * @param yieldNanos       then yield the CPU this long
 * @param sleep            then sleep on the kick eventfds (epoll) until a kick or command arrives;
 *                         false = never sleep (pure poll mode, one core at 100%)
 * @param hybridSleepNanos hybrid wait: when the only work left is block I/O whose channels wake
 *                         the reactor (io_uring, librbd) and every such channel expects its next
 *                         completion at least this far off ({@link IoWaitEstimate}), sleep at
 *                         once instead of spinning and yielding first; 0 = off. Needs {@code sleep}.
 * @param hybridNapPercent how long that sleep is: 0 = until a wake fd (the completion's
 *                         eventfd) fires; N = at most N% of the expected wait, on a timer, then
 *                         poll as usual (spin, yield) for the completion, once per wait, as
 *                         Linux's hybrid block polling sleeps half the mean completion time so
 *                         the wake-up happens before the completion instead of after it
 */
public record IdleStrategy(long spinNanos, long yieldNanos, boolean sleep, long hybridSleepNanos, int hybridNapPercent) {
    public IdleStrategy(long spinNanos, long yieldNanos, boolean sleep) {
        this(spinNanos, yieldNanos, sleep, 0, 0);
    }

    public IdleStrategy(long spinNanos, long yieldNanos, boolean sleep, long hybridSleepNanos) {
        this(spinNanos, yieldNanos, sleep, hybridSleepNanos, 0);
    }

    /**
     * Sleep on the kick and wake fds as soon as a loop finds nothing to do: event-driven, as
     * qemu-storage-daemon and SPDK's {@code --interrupt-mode}. For reactors that share cores with
     * the threads their I/O needs (librbd's, a local Ceph OSD's): on a 2-vCPU machine with Ceph
     * it served RBD disks 1.0-1.3x faster than {@link #BACKOFF} on most rows, at the price of a
     * wake-up per idle gap (BENCHMARKS.md, "RBD: a reactor that sleeps whenever it is idle").
     */
    public static final IdleStrategy SLEEP = new IdleStrategy(0, 0, true, 0, 0);

    /** Poll forever: lowest latency, a full core per reactor (SPDK's default behaviour). */
    public static final IdleStrategy BUSY = new IdleStrategy(Long.MAX_VALUE, 0, false, 0, 0);
    /**
     * Spin 100 µs, yield 1 ms, then sleep: an idle target costs ~0 CPU. The system properties
     * {@code jvhost.idle.spinNanos} and {@code jvhost.idle.yieldNanos} change the two phases;
     * {@code jvhost.idle.hybridSleepNanos} (default 0: off) turns on the hybrid wait with that
     * threshold, {@code jvhost.idle.hybridNapPercent} (default 0) its timed nap. It is off because it did not win the interleaved A/B on these 2-vCPU machines
     * (QD1 on RBD and io_uring lost to the spin-and-yield phases, 128 KiB writes gained): see
     * BENCHMARKS.md "Reactor policy while only bdev I/O is in flight".
     */
    public static final IdleStrategy BACKOFF = new IdleStrategy(Long.getLong("jvhost.idle.spinNanos", 100_000),
            Long.getLong("jvhost.idle.yieldNanos", 1_000_000), true, Long.getLong("jvhost.idle.hybridSleepNanos", 0),
            Integer.getInteger("jvhost.idle.hybridNapPercent", 0));

    /** The strategy a {@code serve --idle} name stands for: {@code poll}, {@code backoff} or {@code sleep}. */
    public static IdleStrategy named(String name) {
        return switch (name) {
            case "poll" -> BUSY;
            case "backoff" -> BACKOFF;
            case "sleep" -> SLEEP;
            default -> throw new IllegalArgumentException("unknown idle policy '" + name + "': choose poll, backoff or sleep");
        };
    }
}
