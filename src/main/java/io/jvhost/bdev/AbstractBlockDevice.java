package io.jvhost.bdev;

import java.util.UUID;

/** The identity and geometry every block device has, checked once; plus its I/O statistics. */
abstract class AbstractBlockDevice implements BlockDevice {
    private final String name;
    private final int blockSize;
    /** Changed only by {@link #resize} while no channel is open (the registry checks that). */
    private volatile long numBlocks;
    private final UUID uuid;
    protected final BdevIoStats ioStats;

    AbstractBlockDevice(String name, long numBlocks, int blockSize, UUID uuid) {
        BlockDevices.checkGeometry(name, numBlocks, blockSize);
        this.name = name;
        this.ioStats = new BdevIoStats(name);
        this.blockSize = blockSize;
        this.numBlocks = numBlocks;
        this.uuid = uuid != null ? uuid : UUID.randomUUID();
    }

    @Override public final String name() { return name; }
    @Override public final int blockSize() { return blockSize; }
    @Override public final long numBlocks() { return numBlocks; }
    @Override public final UUID uuid() { return uuid; }

    /**
     * Changes the capacity. Only for a device nobody has claimed: open channels and a
     * connected guest keep the size they were given (see {@link BdevRegistry#resize}).
     */
    final void resize(long newNumBlocks) {
        BlockDevices.checkGeometry(name, newNumBlocks, blockSize);
        numBlocks = newNumBlocks;
    }

    @Override
    public final BdevIoStats ioStats() {
        return ioStats;
    }
}
