package io.jvhost.bdev;

import io.jvhost.sys.Mmap;

import java.lang.foreign.MemorySegment;
import java.util.UUID;

/**
 * RAM block device (SPDK: malloc bdev): zero-filled memory of any size. A read or write is one
 * memcpy per buffer.
 *
 * <p>The memory is a private anonymous mapping, backed lazily: creating even a large disk is
 * instant (the control path is never blocked for long) and uses no RAM until the guest writes;
 * unmap and write-zeroes give whole pages back to the kernel ({@code MADV_DONTNEED}), so a
 * guest's discard of the whole disk (mkfs does one) frees it instead of filling it. The price of
 * laziness is that a page written later can still find the host out of memory: the RPC layer
 * therefore admits a new disk only when the host can back it in full ({@link HostMemory}),
 * and strict overcommit hosts charge the whole size at creation (see {@link Mmap#anonymous}).
 */
public final class MallocBlockDevice extends AbstractBlockDevice {
    private final Mmap mapping;
    private final MemorySegment data;

    /**
     * @throws io.jvhost.sys.NativeException with {@code ENOMEM} when the kernel refuses the mapping
     */
    public MallocBlockDevice(String name, long numBlocks, int blockSize, UUID uuid) {
        super(name, numBlocks, blockSize, uuid);
        this.mapping = Mmap.anonymous(numBlocks * blockSize);
        this.data = mapping.segment();
    }

    /** Size in bytes (what this disk may come to use). */
    public long sizeBytes() {
        return data.byteSize();
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
        mapping.close();
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
                case UNMAP, WRITE_ZEROES -> zero(r.offset, r.length);
                case FLUSH -> { }
            }
            return 0;
        }

        /** Whole pages go back to the kernel (they read as zeros); partial pages at the ends are zeroed here. */
        private void zero(long offset, long length) {
            long partial = Mmap.discard(data, offset, length);
            if (partial < 0) {
                data.asSlice(offset, length).fill((byte) 0);
            } else if (partial > 0) {
                long start = data.address() + offset;
                long head = Math.min(length, ((start + 4095) & -4096L) - start);
                if (head > 0) data.asSlice(offset, head).fill((byte) 0);
                long tail = Math.min(length - head, (start + length) & 4095L);
                if (tail > 0 && partial > head) data.asSlice(offset + length - tail, tail).fill((byte) 0);
            }
        }
    }
}
