package io.jvhost.bdev;

import java.lang.foreign.MemorySegment;

/**
 * The synchronous file operations behind a file device, run by an engine's worker thread.
 * {@link Scratch} is that thread's own preallocated native memory, so nothing is allocated
 * per request.
 */
@FunctionalInterface
public interface FileOps {
    /** Performs {@code r} (blocking); returns 0 or -errno. */
    int execute(BlockRequest r, Scratch scratch);

    /** Per-thread native buffers: an iovec array and an eventfd write buffer. */
    final class Scratch {
        public static final int IOV_MAX = 1024;
        final MemorySegment iov;
        final MemorySegment eventWord;

        Scratch(java.lang.foreign.Arena arena) {
            iov = arena.allocate(16L * IOV_MAX, 8);
            eventWord = arena.allocate(8, 8);
        }
    }
}
