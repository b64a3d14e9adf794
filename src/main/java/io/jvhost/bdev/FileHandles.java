package io.jvhost.bdev;

import java.lang.foreign.MemorySegment;

/**
 * The open file behind a {@link FileBlockDevice}, as its I/O engines see it: a buffered fd, an
 * {@code O_DIRECT} fd when the file allows one, the alignment direct I/O needs, and a read-only
 * buffer of zeros for write-zeroes fallbacks. Owned by the device (which closes the fds).
 *
 * @param fd           buffered (page cache) fd; always valid
 * @param directFd     {@code O_DIRECT} fd, or -1 when the file system refuses it (tmpfs)
 * @param directAlign  alignment of offsets, lengths and buffer addresses for {@code directFd}
 *                     (the logical block size of a block device; probed for a file)
 * @param blockDevice  true for a block device (sizes by ioctl; zeroing by the block layer)
 * @param readOnly     writes fail with EROFS
 * @param zeros        zeros, 1 MiB, 4 KiB-aligned, never written
 */
public record FileHandles(int fd, int directFd, int directAlign, boolean blockDevice, boolean readOnly, MemorySegment zeros) {
    /**
     * True when {@code r} can go to {@link #directFd}: its device range and every buffer's
     * address and length are multiples of {@link #directAlign}. Allocation-free.
     */
    public boolean directOk(BlockRequest r) {
        if (directFd < 0) return false;
        long m = directAlign - 1;
        if (((r.offset | r.length) & m) != 0) return false;
        for (int i = 0, n = r.bufferCount(); i < n; i++) {
            if (((r.bufferSegment(i).address() + r.bufferOffset(i)) & m) != 0 || (r.bufferLength(i) & m) != 0) return false;
        }
        return true;
    }

    /** Whether an I/O of {@code len} bytes at device offset {@code pos} from {@code addr} suits {@link #directFd}. */
    public boolean directOk(long pos, long addr, long len) {
        long m = directAlign - 1;
        return directFd >= 0 && ((pos | addr | len) & m) == 0;
    }
}
