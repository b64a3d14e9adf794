package io.jvhost.bdev;

/**
 * Per-thread I/O channel of a {@link BlockDevice} (SPDK: io channel). Owned by one reactor
 * thread: every method is called on it, and only on it.
 *
 * <p><b>Submit contract</b> (SPDK's): {@link #submit} never blocks and never completes inside
 * the call. It returns 0 when the request was accepted: then exactly one completion is
 * delivered later, from {@link #poll()} on the same thread. A negative {@code -errno} means it
 * was not accepted and no completion will come; {@code -EAGAIN} and {@code -ENOMEM} mean
 * "no room now, submit again later" (the caller queues the request and retries it on a later
 * poll, as SPDK's {@code spdk_bdev_queue_io_wait}); other errors are final.
 *
 * <p><b>Sleeping with I/O in flight.</b> A channel whose completions are produced elsewhere (a
 * worker pool, an io_uring completion queue, librbd's threads) names a {@link #wakeFd()}: an
 * eventfd signalled whenever a completion becomes ready for {@code poll()}. The owner registers
 * it with its reactor, which may then sleep while requests are in flight. A channel without one
 * ({@code -1}) must be polled while it has anything in flight.
 */
public interface BlockChannel extends AutoCloseable {
    int submit(BlockRequest request);

    /** Delivers finished requests' completions; returns how many. */
    int poll();

    /** Requests submitted and not yet completed. */
    int inFlight();

    /**
     * An eventfd signalled when a completion becomes ready, so the reactor may sleep while I/O
     * is in flight; -1 when completions are only found by polling (inline channels).
     */
    default int wakeFd() {
        return -1;
    }

    /**
     * The reactor's hybrid wait: how long this channel expects the next completion to keep its
     * owner waiting (ns, an {@link io.jvhost.runtime.IoWaitEstimate}), or 0 when it has no
     * estimate (inline channels, nothing observed yet).
     */
    default long expectedWaitNanos() {
        return 0;
    }

    /**
     * Closes the channel. Requests still in flight are abandoned: their completions are never
     * delivered (callers close only after draining, except when giving up after a fault).
     */
    @Override
    void close();
}
