package io.jvhost.bdev;

/** Shared argument checks for block device constructors. */
final class BlockDevices {
    private BlockDevices() {}

    static void checkGeometry(String name, long numBlocks, int blockSize) {
        if (name == null || name.isBlank()) throw new IllegalArgumentException("bdev name must not be empty");
        if (blockSize < 512 || blockSize > 65536 || Integer.bitCount(blockSize) != 1) {
            throw new IllegalArgumentException("block_size must be a power of two from 512 to 65536, got " + blockSize);
        }
        if (numBlocks <= 0) throw new IllegalArgumentException("num_blocks must be positive, got " + numBlocks);
        if (numBlocks > Long.MAX_VALUE / blockSize) throw new IllegalArgumentException("num_blocks too large: " + numBlocks);
    }
}
