package io.jvhost.bdev;

/**
 * How a {@link FileBlockDevice} gets its I/O done without blocking the reactor: the seam where
 * an io_uring engine (one ring per reactor, polled) replaces the {@link ThreadPoolFileIoEngine}.
 * An engine opens one channel per reactor; the channels keep the {@link BlockChannel} contract.
 */
public interface FileIoEngine extends AutoCloseable {
    /** Shown by bdev_get_bdevs and in logs, e.g. "threads". */
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
    }

    /** The default: a small pool of worker threads. */
    Factory THREADS = (name, ops) -> new ThreadPoolFileIoEngine(name, ops, 2, 1024);
}
