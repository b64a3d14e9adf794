package io.jvhost.bdev;

/**
 * How a {@link FileBlockDevice} gets its I/O done without blocking the reactor: an io_uring
 * engine ({@link UringFileIoEngine}, one ring per channel, polled by the reactor) or, where
 * io_uring is missing or forbidden, a {@link ThreadPoolFileIoEngine}.
 * An engine opens one channel per reactor; the channels keep the {@link BlockChannel} contract.
 */
public interface FileIoEngine extends AutoCloseable {
    /** Shown by bdev_get_bdevs and in logs: "io_uring" or "threads". */
    String name();

    /** Opens a channel for the calling reactor thread. */
    BlockChannel openChannel(long sizeBytes);

    /** Stops the engine; channels are closed before. */
    @Override
    void close();

    /** Makes the engine of a file device from the device's synchronous file operations. */
    @FunctionalInterface
    interface Factory {
        FileIoEngine create(String bdevName, FileOps ops);

        /**
         * As above, with the open file itself (engines that issue their own I/O, such as
         * io_uring, need the fds); by default the synchronous operations are all an engine gets.
         */
        default FileIoEngine create(String bdevName, FileOps ops, FileHandles file) {
            return create(bdevName, ops);
        }
    }

    /** A small pool of worker threads doing blocking system calls. */
    Factory THREADS = (name, ops) -> new ThreadPoolFileIoEngine(name, ops, 2, 1024);

    /**
     * The default (issue 11): io_uring, one ring per channel (that is, per bdev and reactor),
     * when this kernel lets us set one up; otherwise the thread pool, with a warning saying why.
     * The system property {@code jvhost.fileEngine} ({@code uring} or {@code threads}) forces
     * one (benchmarks, tests of the fallback); {@code uring} where io_uring is unavailable still
     * falls back.
     */
    Factory AUTO = new Factory() {
        @Override
        public FileIoEngine create(String bdevName, FileOps ops) {
            return THREADS.create(bdevName, ops);
        }

        @Override
        public FileIoEngine create(String bdevName, FileOps ops, FileHandles file) {
            return UringFileIoEngine.createOrFallBack(bdevName, ops, file);
        }
    };
}
