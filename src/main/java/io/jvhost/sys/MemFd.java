package io.jvhost.sys;

import java.lang.foreign.Arena;

/** memfd_create(2): anonymous shareable memory, as QEMU's memory-backend-memfd uses. */
public final class MemFd {
    public static final int MFD_CLOEXEC = 0x1;
    public static final int MFD_ALLOW_SEALING = 0x2;
    private static final int MFD_HUGETLB = 0x4;
    /** MFD_HUGE_2MB: log2(2 MiB) = 21 in the bits above MFD_HUGE_SHIFT (26), see memfd_create(2). */
    private static final int MFD_HUGE_2MB = 21 << 26;

    private MemFd() {}

    /**
     * Creates a memfd of {@code size} bytes (zero-filled) that allows sealing, as QEMU's
     * memory-backend-memfd does, so a back-end can seal it against shrinking.
     */
    public static int create(String name, long size) {
        return create(name, size, true);
    }

    /** As {@link #create(String, long)}; {@code allowSealing == false} makes a memfd no one can seal. */
    public static int create(String name, long size, boolean allowSealing) {
        return create(name, size, MFD_CLOEXEC | (allowSealing ? MFD_ALLOW_SEALING : 0));
    }

    /**
     * Creates a sealable memfd backed by 2 MiB hugetlbfs pages ({@code MFD_HUGETLB | MFD_HUGE_2MB})
     * of {@code size} bytes, which must be a multiple of {@link HugePages#SIZE}. The pages are
     * reserved when the fd is first mapped shared, not here: check {@link HugePages} before.
     */
    public static int createHugetlb(String name, long size) {
        if (size <= 0 || size % HugePages.SIZE != 0) {
            throw new IllegalArgumentException("hugetlb memfd size must be a positive multiple of 2 MiB: " + size);
        }
        return create(name, size, MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_HUGETLB | MFD_HUGE_2MB);
    }

    private static int create(String name, long size, int flags) {
        int fd;
        try (Arena a = Arena.ofConfined()) {
            fd = (int) Native.MEMFD_CREATE.invokeExact(Native.capture(), a.allocateFrom(name), flags);
            if (fd < 0) throw Native.fail((flags & MFD_HUGETLB) != 0 ? "memfd_create(MFD_HUGETLB | MFD_HUGE_2MB)" : "memfd_create");
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
        try {
            Fd.ftruncate(fd, size);
        } catch (RuntimeException e) {
            Fd.closeQuietly(fd);
            throw e;
        }
        return fd;
    }
}
