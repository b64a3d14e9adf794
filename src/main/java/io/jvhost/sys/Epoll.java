package io.jvhost.sys;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * An epoll instance with a preallocated event array. Owned by one thread (the one that waits);
 * {@link #add}/{@link #remove} may be called from that thread only.
 *
 * <p>struct epoll_event is packed on x86_64: {@code u32 events; u64 data} = 12 bytes.
 */
public final class Epoll implements AutoCloseable {
    public static final int EPOLLIN = 0x1;
    public static final int EPOLLERR = 0x8;
    public static final int EPOLLHUP = 0x10;
    private static final int EVENT_SIZE = 12;

    private final int epfd;
    private final Arena arena = Arena.ofShared();
    private final MemorySegment events;
    private final MemorySegment ctlEvent;
    /** struct timespec for {@link #awaitNanos}. */
    private final MemorySegment timespec;
    /** epoll_pwait2 failed with ENOSYS (a kernel before 5.11): round up to milliseconds instead. */
    private boolean noPwait2 = Native.EPOLL_PWAIT2 == null;
    private final int maxEvents;

    public Epoll(int maxEvents) {
        this.maxEvents = maxEvents;
        try {
            int r = (int) Native.EPOLL_CREATE1.invokeExact(Native.capture(), 0x80000 /* EPOLL_CLOEXEC */);
            if (r < 0) throw Native.fail("epoll_create1");
            epfd = r;
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
        events = arena.allocate((long) EVENT_SIZE * maxEvents, 8);
        ctlEvent = arena.allocate(16, 8);
        timespec = arena.allocate(16, 8);
    }

    /** Registers {@code fd} for {@code events}; {@code data} is returned by {@link #data(int)}. */
    public void add(int fd, int eventMask, long data) {
        ctl(1, fd, eventMask, data);
    }

    public void remove(int fd) {
        ctl(2, fd, 0, 0);
    }

    private void ctl(int op, int fd, int eventMask, long data) {
        ctlEvent.set(ValueLayout.JAVA_INT_UNALIGNED, 0, eventMask);
        ctlEvent.set(ValueLayout.JAVA_LONG_UNALIGNED, 4, data);
        try {
            int r = (int) Native.EPOLL_CTL.invokeExact(Native.capture(), epfd, op, fd, ctlEvent);
            if (r < 0) throw Native.fail("epoll_ctl(op " + op + ", fd " + fd + ")");
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    /** Waits up to {@code timeoutMs} (-1: forever); returns the number of ready events (0 on EINTR). */
    public int await(int timeoutMs) {
        try {
            int r = (int) Native.EPOLL_WAIT.invokeExact(Native.capture(), epfd, events, maxEvents, timeoutMs);
            if (r < 0) {
                if (Native.errno() == Errno.EINTR) return 0;
                throw Native.fail("epoll_wait");
            }
            return r;
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    /**
     * Waits up to {@code timeoutNanos} (&gt; 0) with epoll_pwait2's nanosecond timeout (where the
     * kernel or libc lacks it, the timeout is rounded up to whole milliseconds); returns the
     * number of ready events (0 on timeout or EINTR).
     */
    public int awaitNanos(long timeoutNanos) {
        if (noPwait2) return await((int) Math.min(Integer.MAX_VALUE, (timeoutNanos + 999_999) / 1_000_000));
        timespec.set(ValueLayout.JAVA_LONG, 0, timeoutNanos / 1_000_000_000L);
        timespec.set(ValueLayout.JAVA_LONG, 8, timeoutNanos % 1_000_000_000L);
        try {
            int r = (int) Native.EPOLL_PWAIT2.invokeExact(Native.capture(), epfd, events, maxEvents, timespec, MemorySegment.NULL);
            if (r < 0) {
                int e = Native.errno();
                if (e == Errno.EINTR) return 0;
                if (e == Errno.ENOSYS) {
                    noPwait2 = true;
                    return awaitNanos(timeoutNanos);
                }
                throw Native.fail("epoll_pwait2");
            }
            return r;
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    public long data(int i) {
        return events.get(ValueLayout.JAVA_LONG_UNALIGNED, (long) i * EVENT_SIZE + 4);
    }

    public int events(int i) {
        return events.get(ValueLayout.JAVA_INT_UNALIGNED, (long) i * EVENT_SIZE);
    }

    @Override
    public void close() {
        Fd.closeQuietly(epfd);
        arena.close();
    }
}
