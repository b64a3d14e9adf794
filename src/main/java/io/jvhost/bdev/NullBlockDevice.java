package io.jvhost.bdev;

import java.util.UUID;

/** Null block device (SPDK: null bdev): writes are dropped, reads return the buffers untouched. */
public final class NullBlockDevice extends AbstractBlockDevice {
    public NullBlockDevice(String name, long numBlocks, int blockSize, UUID uuid) {
        super(name, numBlocks, blockSize, uuid);
    }

    @Override public String productName() { return "Null disk"; }
    @Override public boolean readOnly() { return false; }
    @Override public boolean supportsUnmap() { return true; }
    @Override public boolean supportsWriteZeroes() { return true; }
    @Override public boolean volatileWriteCache() { return false; }

    @Override
    public BlockChannel openChannel() {
        return ioStats.wrap(new InlineBlockChannel(sizeBytes()) {
            @Override
            protected int execute(BlockRequest r) {
                return 0;
            }
        });
    }

    @Override
    public void close() {}
}
