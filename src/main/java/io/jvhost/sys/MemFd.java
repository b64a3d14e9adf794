package io.jvhost.sys;

import java.lang.foreign.Arena;

/** memfd_create(2): anonymous shareable memory, as QEMU's memory-backend-memfd uses. */
public final class MemFd {
    private MemFd() {}

    /** Creates a memfd of {@code size} bytes (zero-filled). */
    public static int create(String name, long size) {
        int fd;
        try (Arena a = Arena.ofConfined()) {
            fd = (int) Native.MEMFD_CREATE.invokeExact(Native.capture(), a.allocateFrom(name), 1 /* MFD_CLOEXEC */);
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
