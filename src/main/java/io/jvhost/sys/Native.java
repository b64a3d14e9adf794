package io.jvhost.sys;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.VarHandle;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * The only class that touches {@link Linker}: {@code static final} downcall handles to libc,
 * called with {@code invokeExact}. Two flavours per call where it matters: one that captures
 * {@code errno} (control path, turned into {@link NativeException}) and a plain one whose
 * negative return is all the caller needs (data path: no allocation, no thread-local lookup).
 *
 * <p>Native access must be enabled for the unnamed module
 * ({@code --enable-native-access=ALL-UNNAMED}); the launcher, the jar manifest and Surefire do so.
 */
public final class Native {
    private Native() {}

    private static final Linker LINKER = Linker.nativeLinker();
    private static final SymbolLookup LIBC = LINKER.defaultLookup();
    private static final Linker.Option ERRNO = Linker.Option.captureCallState("errno");
    private static final StructLayout CAPTURE_LAYOUT = Linker.Option.captureStateLayout();
    private static final VarHandle ERRNO_HANDLE =
            CAPTURE_LAYOUT.varHandle(MemoryLayout.PathElement.groupElement("errno"));

    /** Per-thread errno capture buffer (control path only). */
    private static final ThreadLocal<MemorySegment> CAPTURE =
            ThreadLocal.withInitial(() -> Arena.global().allocate(CAPTURE_LAYOUT));

    private static MethodHandle errnoHandle(String name, FunctionDescriptor fd, Linker.Option... extra) {
        Linker.Option[] opts = new Linker.Option[extra.length + 1];
        opts[0] = ERRNO;
        System.arraycopy(extra, 0, opts, 1, extra.length);
        return LINKER.downcallHandle(LIBC.find(name).orElseThrow(), fd, opts);
    }

    /** As {@link #errnoHandle}, or null when this libc lacks {@code name} (newer calls such as epoll_pwait2). */
    private static MethodHandle optionalErrnoHandle(String name, FunctionDescriptor fd) {
        return LIBC.find(name).map(addr -> LINKER.downcallHandle(addr, fd, ERRNO)).orElse(null);
    }

    private static MethodHandle plainHandle(String name, FunctionDescriptor fd) {
        return LINKER.downcallHandle(LIBC.find(name).orElseThrow(), fd);
    }

    static final MethodHandle SOCKET = errnoHandle("socket", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT));
    static final MethodHandle SOCKETPAIR = errnoHandle("socketpair", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS));
    static final MethodHandle BIND = errnoHandle("bind", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT));
    static final MethodHandle LISTEN = errnoHandle("listen", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT));
    static final MethodHandle ACCEPT4 = errnoHandle("accept4", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, ADDRESS, JAVA_INT));
    static final MethodHandle CONNECT = errnoHandle("connect", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT));
    static final MethodHandle SENDMSG = errnoHandle("sendmsg", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_INT));
    static final MethodHandle RECVMSG = errnoHandle("recvmsg", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_INT));
    // Datagram sockets (UnixDatagram: sd_notify)
    static final MethodHandle SENDTO = errnoHandle("sendto", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG, JAVA_INT, ADDRESS, JAVA_INT));
    static final MethodHandle RECV = errnoHandle("recv", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG, JAVA_INT));
    static final MethodHandle GETSOCKOPT = errnoHandle("getsockopt", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS, ADDRESS));
    static final MethodHandle SHUTDOWN = errnoHandle("shutdown", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT));
    static final MethodHandle CLOSE = errnoHandle("close", FunctionDescriptor.of(JAVA_INT, JAVA_INT));
    static final MethodHandle UNLINK = errnoHandle("unlink", FunctionDescriptor.of(JAVA_INT, ADDRESS));
    static final MethodHandle MMAP = errnoHandle("mmap", FunctionDescriptor.of(ADDRESS, ADDRESS, JAVA_LONG, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_LONG));
    static final MethodHandle MUNMAP = errnoHandle("munmap", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG));
    static final MethodHandle EVENTFD = errnoHandle("eventfd", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT));
    static final MethodHandle EPOLL_CREATE1 = errnoHandle("epoll_create1", FunctionDescriptor.of(JAVA_INT, JAVA_INT));
    static final MethodHandle EPOLL_CTL = errnoHandle("epoll_ctl", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS));
    static final MethodHandle EPOLL_WAIT = errnoHandle("epoll_wait", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT));
    /** epoll_pwait2(epfd, events, maxevents, const struct timespec *timeout, const sigset_t *sigmask): glibc 2.35+, Linux 5.11+; null when missing. */
    static final MethodHandle EPOLL_PWAIT2 = optionalErrnoHandle("epoll_pwait2", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT, ADDRESS, ADDRESS));
    static final MethodHandle MEMFD_CREATE = errnoHandle("memfd_create", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT));
    static final MethodHandle FTRUNCATE = errnoHandle("ftruncate", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_LONG));
    static final MethodHandle OPEN = errnoHandle("open", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT),
            Linker.Option.firstVariadicArg(2));
    static final MethodHandle LSEEK = errnoHandle("lseek", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, JAVA_LONG, JAVA_INT));
    static final MethodHandle FCNTL = errnoHandle("fcntl", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT),
            Linker.Option.firstVariadicArg(2));
    static final MethodHandle FSTAT = errnoHandle("fstat", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS));
    static final MethodHandle SCHED_SETAFFINITY = errnoHandle("sched_setaffinity", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_LONG, ADDRESS));
    static final MethodHandle DUP = errnoHandle("dup", FunctionDescriptor.of(JAVA_INT, JAVA_INT));
    static final MethodHandle READ_E = errnoHandle("read", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG));
    static final MethodHandle WRITE_E = errnoHandle("write", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG));
    static final MethodHandle STRERROR = plainHandle("strerror", FunctionDescriptor.of(ADDRESS, JAVA_INT));

    // Data path: no errno capture; a negative return is the failure signal.
    static final MethodHandle READ = plainHandle("read", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG));
    static final MethodHandle WRITE = plainHandle("write", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG));
    static final MethodHandle PREADV = errnoHandle("preadv", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_INT, JAVA_LONG));
    static final MethodHandle PWRITEV = errnoHandle("pwritev", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_INT, JAVA_LONG));
    static final MethodHandle FDATASYNC = errnoHandle("fdatasync", FunctionDescriptor.of(JAVA_INT, JAVA_INT));
    /**
     * madvise(2) without errno capture, on the data path (MADV_DONTNEED of a RAM disk range). The
     * address is passed as a {@code long} (same register on x86_64/aarch64) so no segment is built per call.
     */
    static final MethodHandle MADVISE = plainHandle("madvise", FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_LONG, JAVA_INT));
    static final MethodHandle FALLOCATE = errnoHandle("fallocate", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_LONG, JAVA_LONG));

    // io_uring (issue 11): raw system calls through libc's syscall(2) (liburing's helpers are
    // inline C and cannot be called), and ioctl(2) for block device geometry. syscall's
    // arguments are variadic longs (the kernel narrows them), so every one is passed as a long. The errno-capture
    // buffer is the caller's own (a ring keeps one), so the data path needs no thread-local.
    static final long SYS_IO_URING_SETUP = 425, SYS_IO_URING_ENTER = 426, SYS_IO_URING_REGISTER = 427;
    static final MethodHandle SYSCALL_SETUP = errnoHandle("syscall", FunctionDescriptor.of(JAVA_LONG, JAVA_LONG, JAVA_LONG, ADDRESS),
            Linker.Option.firstVariadicArg(1));
    static final MethodHandle SYSCALL_ENTER = errnoHandle("syscall",
            FunctionDescriptor.of(JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG),
            Linker.Option.firstVariadicArg(1));
    static final MethodHandle SYSCALL_REGISTER = errnoHandle("syscall", FunctionDescriptor.of(JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG, ADDRESS, JAVA_LONG),
            Linker.Option.firstVariadicArg(1));
    static final MethodHandle IOCTL = errnoHandle("ioctl", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_LONG, ADDRESS),
            Linker.Option.firstVariadicArg(2));

    /** errno as captured into {@code capture} (a caller-owned capture buffer). */
    static int errno(MemorySegment capture) {
        return (int) ERRNO_HANDLE.get(capture, 0L);
    }

    /** A fresh errno-capture buffer in {@code arena}, for owners that call without the thread-local. */
    static MemorySegment newCapture(Arena arena) {
        return arena.allocate(CAPTURE_LAYOUT);
    }

    /** The errno-capture buffer of the calling thread, to pass as the first argument. */
    static MemorySegment capture() {
        return CAPTURE.get();
    }

    /** errno as captured by the last errno-capturing call on this thread. */
    public static int errno() {
        return (int) ERRNO_HANDLE.get(CAPTURE.get(), 0L);
    }

    public static String strerror(int errno) {
        try {
            MemorySegment p = (MemorySegment) STRERROR.invokeExact(errno);
            return p.reinterpret(256).getString(0);
        } catch (Throwable t) {
            return "errno " + errno;
        }
    }

    static NativeException fail(String what) {
        int e = errno();
        return new NativeException(what, e);
    }

    static RuntimeException rethrow(Throwable t) {
        if (t instanceof RuntimeException r) return r;
        if (t instanceof Error e) throw e;
        return new IllegalStateException(t);
    }

    /** Page size of this platform (x86_64 Linux: 4096). */
    public static final long PAGE_SIZE = 4096;

}
