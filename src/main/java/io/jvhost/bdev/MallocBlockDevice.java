package io.jvhost.bdev;

import io.jvhost.sys.Errno;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.UUID;

/**
 * RAM block device (SPDK: malloc bdev): off-heap memory of any size, zero-filled. A read or write
 * is one memcpy per buffer; unmap and write-zeroes fill with zeros.
 */
public final class MallocBlockDevice implements BlockDevice {
    private final String name;
    private final int blockSize;
    private final long numBlocks;
    private final UUID uuid;
    private final Arena arena = Arena.ofShared();
    private final MemorySegment data;
    private final BdevIoStats ioStats = new BdevIoStats();

    public MallocBlockDevice(String name, long numBlocks, int blockSize, UUID uuid) {
        BlockDevices.checkGeometry(name, numBlocks, blockSize);
        this.name = name;
        this.blockSize = blockSize;
        this.numBlocks = numBlocks;
        this.uuid = uuid != null ? uuid : UUID.randomUUID();
        this.data = arena.allocate(numBlocks * blockSize, 4096);
    }

    @Override public String name() { return name; }
    @Override public String productName() { return "Malloc disk"; }
    @Override public int blockSize() { return blockSize; }
    @Override public long numBlocks() { return numBlocks; }
    @Override public UUID uuid() { return uuid; }
    @Override public boolean readOnly() { return false; }
    @Override public boolean supportsUnmap() { return true; }
    @Override public boolean supportsWriteZeroes() { return true; }
    @Override public boolean volatileWriteCache() { return false; }

    /** The device's memory (tests and benchmarks read it directly). */
    public MemorySegment memory() {
        return data;
    }

    @Override
    public BdevIoStats ioStats() {
        return ioStats;
    }

    @Override
    public BlockChannel openChannel() {
        return ioStats.wrap(new Channel());
    }

    @Override
    public void close() {
        arena.close();
    }

    private final class Channel implements BlockChannel {
        private final CompletionQueue done = new CompletionQueue(256);

        @Override
        public int submit(BlockRequest r) {
            if (r.offset < 0 || r.length < 0 || r.offset + r.length > data.byteSize()) return -Errno.EINVAL;
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
    }
}
