package io.jvhost.initiator;

import io.jvhost.sys.Fd;
import io.jvhost.sys.HugePages;
import io.jvhost.sys.MemFd;
import io.jvhost.sys.Mmap;
import io.jvhost.sys.NativeException;

import java.lang.foreign.MemorySegment;

/**
 * The initiator's "guest memory": a memfd mapped shared, offered to the target as one region
 * whose guest-physical base is {@code gpaBase}. A bump allocator hands out aligned pieces.
 * Allocation is control-path only; one owner thread.
 * <p>
 * With {@code hugepages} the memfd is backed by 2 MiB hugetlbfs pages, as QEMU's
 * {@code memory-backend-file,mem-path=/dev/hugepages} or SPDK's virtio-user give: SPDK's vhost
 * target registers guest memory with its 2 MiB-granular memory map and fails (crashes, in
 * 23.01) on a region backed by ordinary pages.
 */
public final class SharedMemory implements AutoCloseable {
    private final int fd;
    private final Mmap mapping;
    private final long gpaBase;
    private final boolean hugepages;
    private long next;

    public SharedMemory(long size, long gpaBase) {
        this(size, gpaBase, false, true);
    }

    /**
     * Memory the target cannot seal: the memfd is made without MFD_ALLOW_SEALING (as with a plain
     * tmpfs or hugetlbfs file), so its owner can still shrink it; tests use it to truncate memory
     * under a live target.
     */
    public static SharedMemory unsealable(long size, long gpaBase) {
        return new SharedMemory(size, gpaBase, false, false);
    }

    /**
     * @param hugepages back the memory with 2 MiB hugepages, {@code size} rounded up to a whole
     *                  page; fails with {@link IllegalStateException} saying how to reserve
     *                  pages when too few are free
     */
    public SharedMemory(long size, long gpaBase, boolean hugepages) {
        this(size, gpaBase, hugepages, true);
    }

    private SharedMemory(long size, long gpaBase, boolean hugepages, boolean sealable) {
        this.hugepages = hugepages;
        this.gpaBase = gpaBase;
        if (!hugepages) {
            this.fd = MemFd.create("jvhost-initiator", size, sealable);
            this.mapping = mapOrClose(fd, size);
            return;
        }
        long rounded = HugePages.roundUp(size);
        long pages = rounded / HugePages.SIZE;
        HugePages pool = HugePages.read();
        if (pool.available() < pages) throw new IllegalStateException(pool.shortfallMessage("hugepage-backed initiator memory", pages));
        this.fd = MemFd.createHugetlb("jvhost-initiator-huge", rounded);
        try {
            // MAP_SHARED of a hugetlb file reserves its pages here: ENOMEM if the pool ran dry
            // since we looked (another process took them).
            this.mapping = Mmap.map(fd, 0, rounded, true);
        } catch (NativeException e) {
            Fd.closeQuietly(fd);
            if (e.errno() == 12 /* ENOMEM */) {
                throw new IllegalStateException(HugePages.read().shortfallMessage("hugepage-backed initiator memory", pages), e);
            }
            throw e;
        }
    }

    private static Mmap mapOrClose(int fd, long size) {
        try {
            return Mmap.map(fd, 0, size, true);
        } catch (RuntimeException e) {
            Fd.closeQuietly(fd);
            throw e;
        }
    }

    /** Whether the memory is backed by 2 MiB hugepages. */
    public boolean hugepages() { return hugepages; }

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
