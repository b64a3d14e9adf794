package io.jvhost.bdev;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.UUID;

/**
 * RAM block device (SPDK: malloc bdev): off-heap memory of any size, zero-filled. A read or write
 * is one memcpy per buffer; unmap and write-zeroes fill with zeros.
 */
public final class MallocBlockDevice extends AbstractBlockDevice {
    private final Arena arena = Arena.ofShared();
    private final MemorySegment data;

    public MallocBlockDevice(String name, long numBlocks, int blockSize, UUID uuid) {
        super(name, numBlocks, blockSize, uuid);
        this.data = arena.allocate(numBlocks * blockSize, 4096);
    }

    @Override public String productName() { return "Malloc disk"; }
    @Override public boolean readOnly() { return false; }
    @Override public boolean supportsUnmap() { return true; }
    @Override public boolean supportsWriteZeroes() { return true; }
    @Override public boolean volatileWriteCache() { return false; }

    /** The device's memory (tests and benchmarks read it directly). */
    public MemorySegment memory() {
        return data;
    }

    @Override
    public BlockChannel openChannel() {
        return ioStats.wrap(new Channel());
    }

    @Override
    public void close() {
        arena.close();
    }

    private final class Channel extends InlineBlockChannel {
        Channel() {
            super(data.byteSize());
        }

        @Override
        protected int execute(BlockRequest r) {
            long pos = r.offset;
            switch (r.op) {
                case READ -> {
                    for (int i = 0, n = r.bufferCount(); i < n; i++) {
                        long len = r.bufferLength(i);
                        MemorySegment.copy(data, pos, r.bufferSegment(i), r.bufferOffset(i), len);
                        pos += len;
                    }
                }
                case WRITE -> {
                    for (int i = 0, n = r.bufferCount(); i < n; i++) {
                        long len = r.bufferLength(i);
                        MemorySegment.copy(r.bufferSegment(i), r.bufferOffset(i), data, pos, len);
                        pos += len;
                    }
                }
                case UNMAP, WRITE_ZEROES -> data.asSlice(r.offset, r.length).fill((byte) 0);
                case FLUSH -> { }
            }
            return 0;
        }
    }
}
