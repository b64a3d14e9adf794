package io.jvhost.sys;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * eventfd(2) helpers. Kick and call fds of a virtqueue are eventfds that the front-end owns and
 * passes to us; {@link #signal(int, MemorySegment)} is the data-path write (no allocation, no errno).
 */
public final class EventFd {
    private EventFd() {}

    public static final int EFD_NONBLOCK = 0x800;
    public static final int EFD_CLOEXEC = 0x80000;

    public static int create(boolean nonBlocking) {
        try {
            int r = (int) Native.EVENTFD.invokeExact(Native.capture(), 0, EFD_CLOEXEC | (nonBlocking ? EFD_NONBLOCK : 0));
            if (r < 0) throw Native.fail("eventfd");
            return r;
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    /** A reusable 8-byte scratch buffer for {@link #signal} / {@link #drain}, one per owner thread. */
    public static MemorySegment scratch(Arena arena) {
        return arena.allocate(8, 8);
    }

    /** Adds 1 to the eventfd counter. Returns the write(2) result (8, or negative on error). */
    public static long signal(int fd, MemorySegment scratch) {
        scratch.set(ValueLayout.JAVA_LONG, 0, 1L);
        try {
            return (long) Native.WRITE.invokeExact(fd, scratch, 8L);
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    /** Reads (and so resets) the counter of a non-blocking eventfd; returns the count or 0. */
    public static long drain(int fd, MemorySegment scratch) {
        try {
            long r = (long) Native.READ.invokeExact(fd, scratch, 8L);
            return r == 8 ? scratch.get(ValueLayout.JAVA_LONG, 0) : 0;
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }
}
