package io.jvhost.sys;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * A shared mapping of (part of) a file descriptor, as a bounded {@link MemorySegment}. The
 * segment belongs to its own shared arena: {@link #close()} unmaps and invalidates it, so a
 * stale access fails with an exception instead of touching unmapped memory.
 */
public final class Mmap implements AutoCloseable {
    public static final int PROT_READ = 1;
    public static final int PROT_WRITE = 2;
    public static final int MAP_SHARED = 1;
    public static final int MAP_PRIVATE = 2;
    public static final int MAP_ANONYMOUS = 0x20;
    private static final int MADV_DONTNEED = 4;
    private static final int MADV_HUGEPAGE = 14;
    /** A transparent huge page (PMD size on x86-64). */
    public static final long HUGE_PAGE = 2L << 20;

    private final Arena arena;
    private final MemorySegment segment;
    private final long length;

    private Mmap(Arena arena, MemorySegment segment, long length) {
        this.arena = arena;
        this.segment = segment;
        this.length = length;
    }

    /**
     * Maps {@code size} bytes of {@code fd} starting at file offset {@code offset} (any value:
     * the mapping starts at the page below it and the returned segment starts exactly at it).
     */
    public static Mmap map(int fd, long offset, long size, boolean writable) {
        if (size <= 0) throw new IllegalArgumentException("mapping size must be positive: " + size);
        if (offset < 0) throw new IllegalArgumentException("negative mmap offset: " + offset);
        long pageOff = offset & (Native.PAGE_SIZE - 1);
        long mapLen = Math.addExact(size, pageOff);
        int prot = PROT_READ | (writable ? PROT_WRITE : 0);
        MemorySegment addr;
        try {
            addr = (MemorySegment) Native.MMAP.invokeExact(Native.capture(), MemorySegment.NULL, mapLen, prot,
                    MAP_SHARED, fd, offset - pageOff);
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
        if (addr.address() == -1L) throw Native.fail("mmap(fd " + fd + ", offset " + offset + ", size " + size + ")");
        Arena arena = Arena.ofShared();
        final long base = addr.address();
        MemorySegment whole = MemorySegment.ofAddress(base).reinterpret(mapLen, arena, s -> unmap(base, mapLen));
        return new Mmap(arena, whole.asSlice(pageOff, size), size);
    }

    /**
     * Private anonymous memory of {@code size} bytes, zero-filled and lazy: the kernel backs a
     * page only when it is first written (reads of untouched pages see the shared zero page),
     * so creating a large mapping is instant and costs nothing until used. Without
     * {@code MAP_NORESERVE} on purpose: under strict overcommit ({@code vm.overcommit_memory=2})
     * the whole size is charged to the commit limit here, and a size the host cannot promise
     * fails now with {@code ENOMEM} instead of a fault later.
     *
     * <p>A mapping of at least {@link #HUGE_PAGE} starts on a huge-page boundary and is advised
     * {@code MADV_HUGEPAGE}: where transparent huge pages are enabled ("always" or "madvise", the
     * usual distribution default), the kernel backs it with 2 MiB pages, so a RAM disk takes one
     * fault and one TLB entry per 2 MiB instead of per 4 KiB (SPDK's malloc bdev lives in
     * hugepages). Where they are not, the advice is ignored and nothing else changes.
     */
    public static Mmap anonymous(long size) {
        if (size <= 0) throw new IllegalArgumentException("mapping size must be positive: " + size);
        long mapLen = (size + Native.PAGE_SIZE - 1) & -Native.PAGE_SIZE;
        boolean huge = mapLen >= HUGE_PAGE;
        // Room to slide the start to a huge-page boundary; the slack is unmapped right away.
        long reserve = huge ? mapLen + HUGE_PAGE : mapLen;
        MemorySegment addr;
        try {
            addr = (MemorySegment) Native.MMAP.invokeExact(Native.capture(), MemorySegment.NULL, reserve, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0L);
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
        if (addr.address() == -1L) throw Native.fail("mmap(anonymous, " + size + " bytes)");
        long base = addr.address();
        if (huge) {
            long aligned = (base + HUGE_PAGE - 1) & -HUGE_PAGE;
            long head = aligned - base;
            long tail = reserve - head - mapLen;
            if (head > 0) unmap(base, head);
            if (tail > 0) unmap(aligned + mapLen, tail);
            base = aligned;
            try {
                // Advice only: a kernel without THP says EINVAL, and the mapping works as before.
                int ignored = (int) Native.MADVISE.invokeExact(base, mapLen, MADV_HUGEPAGE);
            } catch (Throwable t) {
                // same: advice only
            }
        }
        Arena arena = Arena.ofShared();
        final long start = base;
        MemorySegment whole = MemorySegment.ofAddress(start).reinterpret(mapLen, arena, s -> unmap(start, mapLen));
        return new Mmap(arena, whole.asSlice(0, size), size);
    }

    /**
     * Gives the pages wholly inside {@code [offset, offset + length)} of a private anonymous
     * mapping back to the kernel ({@code MADV_DONTNEED}): they read as zeros afterwards and no
     * longer use memory. Returns the number of bytes at the start and end of the range that were
     * not whole pages (the caller zeroes those itself), or -1 when madvise failed (the caller
     * zeroes the whole range). No allocation, no errno capture: usable on the data path.
     */
    public static long discard(MemorySegment mapping, long offset, long length) {
        long start = mapping.address() + offset;
        long pageStart = (start + Native.PAGE_SIZE - 1) & -Native.PAGE_SIZE;
        long pageEnd = (start + length) & -Native.PAGE_SIZE;
        if (pageEnd <= pageStart) return length;
        int r;
        try {
            r = (int) Native.MADVISE.invokeExact(pageStart, pageEnd - pageStart, MADV_DONTNEED);
        } catch (Throwable t) {
            return -1;
        }
        return r == 0 ? length - (pageEnd - pageStart) : -1;
    }

    /** munmap(2), used by the arena's cleanup when the mapping is closed; failures are ignored. */
    public static void unmap(long address, long length) {
        try {
            int r = (int) Native.MUNMAP.invokeExact(Native.capture(), MemorySegment.ofAddress(address), length);
        } catch (Throwable t) {
            // unmapping failure leaves a mapping behind; nothing else to do
        }
    }

    public MemorySegment segment() {
        return segment;
    }

    public long length() {
        return length;
    }

    @Override
    public void close() {
        arena.close();
    }
}
