package io.jvhost.memory;

import io.jvhost.sys.Errno;
import io.jvhost.sys.Fd;
import io.jvhost.sys.Mmap;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.lang.foreign.MemorySegment;

/**
 * One guest memory region of the vhost-user memory table (vhost-user.rst, "Memory region
 * description"): guest-physical base, size, the front-end's virtual base, and our mapping of
 * the shared fd at {@code mmap_offset}. Owns its mapping and a duplicate of the fd;
 * {@link #close()} unmaps and closes both.
 *
 * <p>The front-end keeps its own fd, and a file it can shrink while we map it turns our next
 * access into SIGBUS. So {@link #map} seals the file against shrinking (F_SEAL_SHRINK) where the
 * file allows it, and says once in the log when it does not; for such regions
 * {@link #intact()} tells, from the file size, whether the mapping is still backed, which is
 * how a fault is traced to the queues whose memory vanished.
 */
public final class MemoryRegion implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(MemoryRegion.class);

    private final long guestPhysAddr;
    private final long size;
    private final long userAddr;
    private final long mmapOffset;
    private final MemorySegment segment;
    private final AutoCloseable owner;
    /** Our duplicate of the front-end's fd (to check the file size after a fault), or -1. */
    private final int fd;
    private final boolean sealed;
    private boolean closed;

    private MemoryRegion(long guestPhysAddr, long size, long userAddr, long mmapOffset, MemorySegment segment, AutoCloseable owner,
                         int fd, boolean sealed) {
        this.guestPhysAddr = guestPhysAddr;
        this.size = size;
        this.userAddr = userAddr;
        this.mmapOffset = mmapOffset;
        this.segment = segment;
        this.owner = owner;
        this.fd = fd;
        this.sealed = sealed;
    }

    /**
     * A region over memory we already have (tests, the initiator's own view): {@link #close()}
     * leaves {@code segment} alone.
     */
    public static MemoryRegion ofSegment(long guestPhysAddr, long userAddr, MemorySegment segment) {
        return new MemoryRegion(guestPhysAddr, segment.byteSize(), userAddr, 0, segment, null, -1, true);
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
        boolean sealed = sealAgainstShrinking(fd, guestPhysAddr, size);
        int own = Fd.dup(fd);
        Mmap m;
        try {
            m = Mmap.map(fd, mmapOffset, size, true);
        } catch (RuntimeException e) {
            Fd.closeQuietly(own);
            throw e;
        }
        return new MemoryRegion(guestPhysAddr, size, userAddr, mmapOffset, m.segment(), m, own, sealed);
    }

    /** F_SEAL_SHRINK where possible; logs once for this region when it is not. */
    private static boolean sealAgainstShrinking(int fd, long gpa, long size) {
        int have = Fd.seals(fd);
        if (have >= 0 && (have & Fd.F_SEAL_SHRINK) != 0) return true;
        int rc = have < 0 ? have : Fd.addSeals(fd, Fd.F_SEAL_SHRINK);
        if (rc == 0) return true;
        String why = rc == -Errno.EINVAL ? "the file does not support sealing (not a memfd: a tmpfs or hugetlbfs file?)"
                : rc == -Errno.EPERM ? "its seals are closed (F_SEAL_SEAL, as on a memfd made without MFD_ALLOW_SEALING) without F_SEAL_SHRINK"
                : "fcntl(F_ADD_SEALS) failed with errno " + -rc;
        log.info("memory region gpa 0x{} size 0x{} cannot be sealed against shrinking: {}; if the front-end truncates it, "
                + "accesses fault and only that front-end's queues are failed", Long.toHexString(gpa), Long.toHexString(size), why);
        return false;
    }

    /** True when the file is sealed against shrinking (or the memory is our own): it cannot vanish. */
    public boolean sealed() {
        return sealed;
    }

    /**
     * False when the file behind this region no longer covers the mapping (the front-end
     * truncated it): accesses fault. Cold path (one fstat); any thread; true once closed.
     */
    public synchronized boolean intact() {
        if (sealed || fd < 0 || closed) return true;
        try {
            return Long.compareUnsigned(Fd.fstat(fd).size(), mmapOffset + size) >= 0;
        } catch (RuntimeException e) {
            return false;
        }
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
    public synchronized void close() {
        if (closed) return;
        closed = true;
        try {
            if (owner != null) owner.close();
        } catch (Exception e) {
            throw new IllegalStateException(e);
        } finally {
            Fd.closeQuietly(fd);
        }
    }

    @Override
    public String toString() {
        return String.format("gpa 0x%x-0x%x uva 0x%x off 0x%x", guestPhysAddr, guestPhysAddr + size - 1, userAddr, mmapOffset);
    }
}
