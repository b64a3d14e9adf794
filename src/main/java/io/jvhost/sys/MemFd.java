package io.jvhost.sys;

import java.lang.foreign.Arena;

/** memfd_create(2): anonymous shareable memory, as QEMU's memory-backend-memfd uses. */
public final class MemFd {
    private MemFd() {}

    public static final int MFD_CLOEXEC = 1;
    public static final int MFD_ALLOW_SEALING = 2;

    /**
     * Creates a memfd of {@code size} bytes (zero-filled) that allows sealing, as QEMU's
     * memory-backend-memfd does, so a back-end can seal it against shrinking.
     */
    public static int create(String name, long size) {
        return create(name, size, true);
    }

    /** As {@link #create(String, long)}; {@code allowSealing == false} makes a memfd no one can seal. */
    public static int create(String name, long size, boolean allowSealing) {
        int fd;
        try (Arena a = Arena.ofConfined()) {
            fd = (int) Native.MEMFD_CREATE.invokeExact(Native.capture(), a.allocateFrom(name), MFD_CLOEXEC | (allowSealing ? MFD_ALLOW_SEALING : 0));
            if (fd < 0) throw Native.fail("memfd_create");
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
