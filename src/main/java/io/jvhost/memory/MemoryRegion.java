package io.jvhost.memory;

import io.jvhost.sys.Fd;
import io.jvhost.sys.Mmap;

import java.lang.foreign.MemorySegment;

/**
 * One guest memory region of the vhost-user memory table (vhost-user.rst, "Memory region
 * description"): guest-physical base, size, the front-end's virtual base, and our mapping of
 * the shared fd at {@code mmap_offset}. Owns its mapping; {@link #close()} unmaps it.
 */
public final class MemoryRegion implements AutoCloseable {
    private final long guestPhysAddr;
    private final long size;
    private final long userAddr;
    private final long mmapOffset;
    private final MemorySegment segment;
    private final AutoCloseable owner;

    private MemoryRegion(long guestPhysAddr, long size, long userAddr, long mmapOffset, MemorySegment segment, AutoCloseable owner) {
        this.guestPhysAddr = guestPhysAddr;
        this.size = size;
        this.userAddr = userAddr;
        this.mmapOffset = mmapOffset;
        this.segment = segment;
        this.owner = owner;
    }

    /**
     * A region over memory we already have (tests, the initiator's own view): {@link #close()}
     * leaves {@code segment} alone.
     */
    public static MemoryRegion ofSegment(long guestPhysAddr, long userAddr, MemorySegment segment) {
        return new MemoryRegion(guestPhysAddr, segment.byteSize(), userAddr, 0, segment, null);
    }

    /**
     * Validates a region description from the front-end and maps it. Throws
     * {@link IllegalArgumentException} with the reason for a malformed description.
     */
    public static MemoryRegion map(int fd, long guestPhysAddr, long size, long userAddr, long mmapOffset) {
        if (size <= 0) throw new IllegalArgumentException("memory region size " + Long.toUnsignedString(size) + " is not positive");
        if (Long.compareUnsigned(guestPhysAddr + size, guestPhysAddr) <= 0) {
            throw new IllegalArgumentException("memory region guest range overflows: gpa 0x" + Long.toHexString(guestPhysAddr) + " size 0x" + Long.toHexString(size));
        }
        if (Long.compareUnsigned(userAddr + size, userAddr) < 0) {
            throw new IllegalArgumentException("memory region user range overflows: uva 0x" + Long.toHexString(userAddr));
        }
        if (mmapOffset < 0 || mmapOffset + size < 0) {
            throw new IllegalArgumentException("memory region mmap_offset 0x" + Long.toHexString(mmapOffset) + " out of range");
        }
        // Mapping past the end of the file succeeds but touching it raises SIGBUS: check first.
        Fd.Stat st = Fd.fstat(fd);
        if (!st.regularFile()) throw new IllegalArgumentException("memory region fd is not a regular file (memfd, tmpfs or hugetlbfs expected)");
        if (Long.compareUnsigned(mmapOffset + size, st.size()) > 0) {
            throw new IllegalArgumentException("memory region (mmap_offset 0x" + Long.toHexString(mmapOffset) + " + size 0x" + Long.toHexString(size)
                    + ") runs past the end of its file (0x" + Long.toHexString(st.size()) + " bytes)");
        }
        Fd.trySealShrink(fd);
        Mmap m = Mmap.map(fd, mmapOffset, size, true);
        return new MemoryRegion(guestPhysAddr, size, userAddr, mmapOffset, m.segment(), m);
    }

    public long guestPhysAddr() { return guestPhysAddr; }
    public long size() { return size; }
    public long userAddr() { return userAddr; }
    public long mmapOffset() { return mmapOffset; }

    /** The mapped bytes, exactly {@link #size()} long. */
    public MemorySegment segment() {
        return segment;
    }

    @Override
    public void close() {
        try {
            if (owner != null) owner.close();
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }

    @Override
    public String toString() {
        return String.format("gpa 0x%x-0x%x uva 0x%x off 0x%x", guestPhysAddr, guestPhysAddr + size - 1, userAddr, mmapOffset);
    }
}
