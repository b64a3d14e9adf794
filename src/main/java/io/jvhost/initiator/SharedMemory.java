package io.jvhost.initiator;

import io.jvhost.sys.Fd;
import io.jvhost.sys.MemFd;
import io.jvhost.sys.Mmap;

import java.lang.foreign.MemorySegment;

/**
 * The initiator's "guest memory": a memfd mapped shared, offered to the target as one region
 * whose guest-physical base is {@code gpaBase}. A bump allocator hands out aligned pieces.
 * Allocation is control-path only; one owner thread.
 */
public final class SharedMemory implements AutoCloseable {
    private final int fd;
    private final Mmap mapping;
    private final long gpaBase;
    private long next;

    public SharedMemory(long size, long gpaBase) {
        this(size, gpaBase, true);
    }

    /**
     * @param sealable false: the memfd is made without MFD_ALLOW_SEALING, so the target cannot
     *                 seal it against shrinking (as with a plain tmpfs or hugetlbfs file); tests
     *                 use it to truncate memory under a live target
     */
    public SharedMemory(long size, long gpaBase, boolean sealable) {
        this.fd = MemFd.create("jvhost-initiator", size, sealable);
        this.mapping = Mmap.map(fd, 0, size, true);
        this.gpaBase = gpaBase;
    }

    public int fd() { return fd; }
    public long size() { return mapping.length(); }
    public long gpaBase() { return gpaBase; }
    public MemorySegment segment() { return mapping.segment(); }
    /** Our virtual address of the mapping (the "user address" the target sees). */
    public long userAddr() { return mapping.segment().address(); }

    /** Allocates {@code len} bytes aligned to {@code align}; returns the offset in the mapping. */
    public long allocate(long len, long align) {
        long off = (next + align - 1) & -align;
        if (off + len > size()) throw new IllegalStateException("shared memory exhausted: need " + len + " more bytes, " + (size() - off) + " left");
        next = off + len;
        return off;
    }

    public long gpa(long offset) { return gpaBase + offset; }
    public long uva(long offset) { return userAddr() + offset; }

    @Override
    public void close() {
        mapping.close();
        Fd.closeQuietly(fd);
    }
}
