package io.jvhost.bdev;

import java.util.UUID;

/**
 * A block device (SPDK: bdev). Shared by all reactors; I/O goes through a {@link BlockChannel}
 * opened by, and owned by, one reactor thread.
 */
public interface BlockDevice extends AutoCloseable {
    String name();

    /** Product name shown to users and in SCSI INQUIRY, e.g. "Malloc disk". */
    String productName();

    int blockSize();

    long numBlocks();

    default long sizeBytes() {
        return numBlocks() * blockSize();
    }

    UUID uuid();

    boolean readOnly();

    boolean supportsUnmap();

    boolean supportsWriteZeroes();

    /** True when written data may sit in a volatile cache until FLUSH (file devices). */
    boolean volatileWriteCache();

    /**
     * I/O statistics summed over this device's channels (SPDK bdev_get_iostat). Devices count
     * by wrapping each channel they open with {@link BdevIoStats#wrap}.
     */
    default BdevIoStats ioStats() {
        return BdevIoStats.UNTRACKED;
    }

    /** Opens an I/O channel for the calling thread. */
    BlockChannel openChannel();

    /** Releases the device's resources; channels must be closed before. */
    @Override
    void close();
}
