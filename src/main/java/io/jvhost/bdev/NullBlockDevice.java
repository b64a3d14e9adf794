package io.jvhost.bdev;

import io.jvhost.sys.Errno;

import java.util.UUID;

/** Null block device (SPDK: null bdev): writes are dropped, reads return the buffers untouched. */
public final class NullBlockDevice implements BlockDevice {
    private final String name;
    private final int blockSize;
    private final long numBlocks;
    private final UUID uuid;
    private final BdevIoStats ioStats = new BdevIoStats();

    public NullBlockDevice(String name, long numBlocks, int blockSize, UUID uuid) {
        BlockDevices.checkGeometry(name, numBlocks, blockSize);
        this.name = name;
        this.blockSize = blockSize;
        this.numBlocks = numBlocks;
        this.uuid = uuid != null ? uuid : UUID.randomUUID();
    }

    @Override public String name() { return name; }
    @Override public String productName() { return "Null disk"; }
    @Override public int blockSize() { return blockSize; }
    @Override public long numBlocks() { return numBlocks; }
    @Override public UUID uuid() { return uuid; }
    @Override public boolean readOnly() { return false; }
    @Override public boolean supportsUnmap() { return true; }
    @Override public boolean supportsWriteZeroes() { return true; }
    @Override public boolean volatileWriteCache() { return false; }

    @Override
    public BdevIoStats ioStats() {
        return ioStats;
    }

    @Override
    public BlockChannel openChannel() {
        return ioStats.wrap(new BlockChannel() {
            private final CompletionQueue done = new CompletionQueue(256);

            @Override
            public int submit(BlockRequest r) {
                if (r.offset < 0 || r.length < 0 || r.offset + r.length > sizeBytes()) return -Errno.EINVAL;
                done.push(r, 0);
                return 0;
            }

            @Override
            public int poll() {
                return done.size() == 0 ? 0 : done.drain();
            }

            @Override
            public int inFlight() {
                return done.size();
            }

            @Override
            public void close() {}
        });
    }

    @Override
    public void close() {}
}
