package io.jvhost.bdev;

/**
 * Per-thread I/O channel of a {@link BlockDevice}. Owned by one reactor thread.
 *
 * <p>The submit contract (SPDK's): {@link #submit} returns 0 when the request was accepted, and
 * then exactly one completion is delivered later, from {@link #poll()} on the same thread;
 * a negative {@code -errno} means it was not accepted and no completion will come
 * ({@code -EAGAIN}: try again later).
 */
public interface BlockChannel extends AutoCloseable {
    int submit(BlockRequest request);

    /** Delivers finished requests' completions; returns how many. */
    int poll();

    /** Requests submitted and not yet completed. */
    int inFlight();

    @Override
    void close();
}
