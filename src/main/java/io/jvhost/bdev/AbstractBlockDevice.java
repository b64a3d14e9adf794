package io.jvhost.bdev;

import java.util.UUID;

/** The identity and geometry every block device has, checked once; plus its I/O statistics. */
abstract class AbstractBlockDevice implements BlockDevice {
    private final String name;
    private final int blockSize;
    private final long numBlocks;
    private final UUID uuid;
    protected final BdevIoStats ioStats = new BdevIoStats();

    AbstractBlockDevice(String name, long numBlocks, int blockSize, UUID uuid) {
        BlockDevices.checkGeometry(name, numBlocks, blockSize);
        this.name = name;
        this.blockSize = blockSize;
        this.numBlocks = numBlocks;
        this.uuid = uuid != null ? uuid : UUID.randomUUID();
    }

    @Override public final String name() { return name; }
    @Override public final int blockSize() { return blockSize; }
    @Override public final long numBlocks() { return numBlocks; }
    @Override public final UUID uuid() { return uuid; }

    @Override
    public final BdevIoStats ioStats() {
        return ioStats;
    }
}
