package io.jvhost.bdev;

/** Shared argument checks for block device constructors. */
final class BlockDevices {
    private BlockDevices() {}

    /** Longest bdev name accepted (bytes of UTF-8). */
    static final int MAX_NAME_BYTES = 255;

    /**
     * A bdev name is free text for SPDK (lvol names even carry a '/'), but it appears in logs,
     * configs and RPC output: refuse the empty name, control characters (a newline would forge
     * log lines), leading or trailing white space, and names over 255 bytes.
     */
    static void checkName(String name) {
        if (name == null || name.isBlank()) throw new IllegalArgumentException("bdev name must not be empty");
        if (name.getBytes(java.nio.charset.StandardCharsets.UTF_8).length > MAX_NAME_BYTES) {
            throw new IllegalArgumentException("bdev name is longer than " + MAX_NAME_BYTES + " bytes");
        }
        for (int i = 0; i < name.length(); i++) {
            char c = name.charAt(i);
            if (c < 0x20 || c == 0x7f || (c >= 0x80 && c < 0xa0)) {
                throw new IllegalArgumentException("bdev name must not contain control characters (found \\x" + String.format("%02x", (int) c) + ")");
            }
        }
        if (!name.equals(name.strip())) throw new IllegalArgumentException("bdev name '" + name + "' must not start or end with white space");
    }

    static void checkGeometry(String name, long numBlocks, int blockSize) {
        checkName(name);
        if (blockSize < 512 || blockSize > 65536 || Integer.bitCount(blockSize) != 1) {
            throw new IllegalArgumentException("block_size must be a power of two from 512 to 65536, got " + blockSize);
        }
        if (numBlocks <= 0) throw new IllegalArgumentException("num_blocks must be positive, got " + numBlocks);
        if (numBlocks > Long.MAX_VALUE / blockSize) throw new IllegalArgumentException("num_blocks too large: " + numBlocks);
    }
}
