package io.jvhost.sys;

import java.io.EOFException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;

/**
 * An AF_UNIX stream socket with SCM_RIGHTS fd passing (recvmsg/sendmsg), as vhost-user needs.
 * One thread reads and one thread writes at a time (each direction has its own buffers);
 * {@link #shutdown()} may be called from any thread to unblock a reader.
 *
 * <pre>
 * struct msghdr (x86_64, 56 bytes)          struct cmsghdr (16 bytes + data)
 *   0 void*  msg_name                          0 size_t cmsg_len
 *   8 u32    msg_namelen                       8 int    cmsg_level  (SOL_SOCKET = 1)
 *  16 iovec* msg_iov                          12 int    cmsg_type   (SCM_RIGHTS = 1)
 *  24 size_t msg_iovlen                       16 int    fds[]
 *  32 void*  msg_control
 *  40 size_t msg_controllen
 *  48 int    msg_flags
 * </pre>
 */
public final class UnixSocket implements AutoCloseable {
    public static final int AF_UNIX = 1;
    public static final int SOCK_STREAM = 1;
    public static final int SOCK_CLOEXEC = 0x80000;
    private static final int MSG_CTRUNC = 0x8;
    private static final int MSG_NOSIGNAL = 0x4000;
    private static final int MSG_CMSG_CLOEXEC = 0x40000000;
    private static final int SUN_PATH_MAX = 107;

    /** Room for this many fds in one received message; more is treated as a protocol error. */
    public static final int MAX_RECV_FDS = 16;
    private static final long CMSG_SPACE_RECV = 16 + ((MAX_RECV_FDS * 4L + 7) & ~7L);

    private final int fd;
    private final Arena arena = Arena.ofShared();
    private final MemorySegment rxMsg, rxIov, rxControl;
    private final MemorySegment txMsg, txIov, txControl;
    private volatile boolean closed;

    public UnixSocket(int fd) {
        this.fd = fd;
        rxMsg = arena.allocate(56, 8);
        rxIov = arena.allocate(16, 8);
        rxControl = arena.allocate(CMSG_SPACE_RECV, 8);
        txMsg = arena.allocate(56, 8);
        txIov = arena.allocate(16, 8);
        txControl = arena.allocate(CMSG_SPACE_RECV, 8);
    }

    public int fd() {
        return fd;
    }

    /**
     * The process id of the peer as the kernel recorded it at connect time (SO_PEERCRED), or -1
     * when it cannot be told (the peer is in another pid namespace: 0; or the call failed).
     */
    public long peerPid() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment ucred = a.allocate(12, 4); // struct ucred { pid_t pid; uid_t uid; gid_t gid; }
            MemorySegment len = a.allocate(ValueLayout.JAVA_INT);
            len.set(ValueLayout.JAVA_INT, 0, 12);
            int r = (int) Native.GETSOCKOPT.invokeExact(Native.capture(), fd, 1 /* SOL_SOCKET */, 17 /* SO_PEERCRED */, ucred, len);
            int pid = ucred.get(ValueLayout.JAVA_INT, 0);
            return r == 0 && pid > 0 ? pid : -1;
        } catch (Throwable t) {
            return -1;
        }
    }

    /** Result of one {@link #recv}: bytes read (0 at end of stream) and the fds that came with them. */
    public record Received(int bytes, int[] fds) {}

    private static final int[] NO_FDS = new int[0];

    /**
     * One recvmsg into {@code buf[0, len)}: returns what arrived (maybe fewer bytes) and any fds
     * (already close-on-exec; the caller owns them). A truncated control message (too many fds)
     * closes what did arrive and throws.
     */
    public Received recv(MemorySegment buf, long len) throws EOFException {
        rxIov.set(ValueLayout.ADDRESS, 0, buf);
        rxIov.set(ValueLayout.JAVA_LONG, 8, len);
        rxMsg.fill((byte) 0);
        rxMsg.set(ValueLayout.ADDRESS, 16, rxIov);
        rxMsg.set(ValueLayout.JAVA_LONG, 24, 1L);
        rxMsg.set(ValueLayout.ADDRESS, 32, rxControl);
        rxMsg.set(ValueLayout.JAVA_LONG, 40, CMSG_SPACE_RECV);
        rxControl.fill((byte) 0);
        long n;
        while (true) {
            try {
                n = (long) Native.RECVMSG.invokeExact(Native.capture(), fd, rxMsg, MSG_CMSG_CLOEXEC);
            } catch (Throwable t) {
                throw Native.rethrow(t);
            }
            if (n >= 0) break;
            int e = Native.errno();
            if (e == Errno.EINTR) continue;
            if (closed) throw new EOFException("socket shut down");
            if (e == Errno.ECONNRESET) throw new EOFException("connection reset by peer");
            throw new NativeException("recvmsg", e);
        }
        int[] fds = NO_FDS;
        long controlLen = rxMsg.get(ValueLayout.JAVA_LONG, 40);
        if (controlLen >= 16) {
            long cmsgLen = rxControl.get(ValueLayout.JAVA_LONG, 0);
            int level = rxControl.get(ValueLayout.JAVA_INT, 8);
            int type = rxControl.get(ValueLayout.JAVA_INT, 12);
            if (level == 1 && type == 1 && cmsgLen >= 16 && cmsgLen <= CMSG_SPACE_RECV) {
                int count = (int) ((cmsgLen - 16) / 4);
                fds = new int[count];
                for (int i = 0; i < count; i++) fds[i] = rxControl.get(ValueLayout.JAVA_INT, 16 + 4L * i);
            }
        }
        int flags = rxMsg.get(ValueLayout.JAVA_INT, 48);
        if ((flags & MSG_CTRUNC) != 0) {
            for (int f : fds) Fd.closeQuietly(f);
            throw new ProtocolFdException("more than " + MAX_RECV_FDS + " file descriptors in one message (control data truncated)");
        }
        if (n == 0 && fds.length == 0) throw new EOFException("peer closed the connection");
        return new Received((int) n, fds);
    }

    /** Reads exactly {@code len} bytes (no fds expected; fds arriving here are closed and reported). */
    public void recvFully(MemorySegment buf, long len) throws EOFException {
        long done = 0;
        while (done < len) {
            Received r = recv(buf.asSlice(done), len - done);
            if (r.fds().length > 0) {
                for (int f : r.fds()) Fd.closeQuietly(f);
                throw new ProtocolFdException("file descriptors arrived in the middle of a message");
            }
            if (r.bytes() == 0) throw new EOFException("peer closed the connection mid-message");
            done += r.bytes();
        }
    }

    /** Sends {@code buf[0, len)} with {@code fds} attached (SCM_RIGHTS) to the first byte. */
    public synchronized void send(MemorySegment buf, long len, int[] fds) {
        if (fds.length > MAX_RECV_FDS) throw new IllegalArgumentException("too many fds: " + fds.length);
        long sent = 0;
        boolean first = true;
        while (sent < len || (first && len == 0)) {
            txIov.set(ValueLayout.ADDRESS, 0, buf.asSlice(sent));
            txIov.set(ValueLayout.JAVA_LONG, 8, len - sent);
            txMsg.fill((byte) 0);
            txMsg.set(ValueLayout.ADDRESS, 16, txIov);
            txMsg.set(ValueLayout.JAVA_LONG, 24, 1L);
            if (first && fds.length > 0) {
                long cmsgLen = 16 + 4L * fds.length;
                txControl.fill((byte) 0);
                txControl.set(ValueLayout.JAVA_LONG, 0, cmsgLen);
                txControl.set(ValueLayout.JAVA_INT, 8, 1);
                txControl.set(ValueLayout.JAVA_INT, 12, 1);
                for (int i = 0; i < fds.length; i++) txControl.set(ValueLayout.JAVA_INT, 16 + 4L * i, fds[i]);
                txMsg.set(ValueLayout.ADDRESS, 32, txControl);
                txMsg.set(ValueLayout.JAVA_LONG, 40, (cmsgLen + 7) & ~7L);
            }
            long n;
            try {
                n = (long) Native.SENDMSG.invokeExact(Native.capture(), fd, txMsg, MSG_NOSIGNAL);
            } catch (Throwable t) {
                throw Native.rethrow(t);
            }
            if (n < 0) {
                int e = Native.errno();
                if (e == Errno.EINTR) continue;
                throw new NativeException("sendmsg", e);
            }
            first = false;
            sent += n;
            if (len == 0) break;
        }
    }

    public void send(MemorySegment buf, long len) {
        send(buf, len, NO_FDS);
    }

    /**
     * Has the peer ended the connection? Looks without waiting or consuming (MSG_PEEK |
     * MSG_DONTWAIT): true at end of stream (or a reset), false while the connection is open,
     * even when bytes are waiting. Diagnostics and tests.
     */
    public boolean peerClosed() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment one = a.allocate(1);
            long n = (long) Native.RECV.invokeExact(Native.capture(), fd, one, 1L, 0x2 /* MSG_PEEK */ | 0x40 /* MSG_DONTWAIT */);
            if (n > 0) return false;
            if (n == 0) return true;
            int e = Native.errno();
            return e != Errno.EAGAIN && e != Errno.EINTR;
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    /** Shuts both directions down: a blocked {@link #recv} returns end of stream. Any thread. */
    public void shutdown() {
        closed = true;
        try {
            int r = (int) Native.SHUTDOWN.invokeExact(Native.capture(), fd, 2 /* SHUT_RDWR */);
        } catch (Throwable t) {
            // ignore
        }
    }

    @Override
    public void close() {
        shutdown();
        Fd.closeQuietly(fd);
        arena.close();
    }

    // ---- creation ----

    private static int newSocket() {
        try {
            int s = (int) Native.SOCKET.invokeExact(Native.capture(), AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
            if (s < 0) throw Native.fail("socket(AF_UNIX)");
            return s;
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    private static MemorySegment sockaddr(Arena a, String path) {
        byte[] p = path.getBytes(StandardCharsets.UTF_8);
        if (p.length > SUN_PATH_MAX) {
            throw new IllegalArgumentException("socket path is " + p.length + " bytes, longer than the "
                    + SUN_PATH_MAX + " a Unix socket allows: " + path + " (use a shorter --socket-dir)");
        }
        MemorySegment sa = a.allocate(110, 8);
        sa.set(ValueLayout.JAVA_SHORT, 0, (short) AF_UNIX);
        MemorySegment.copy(p, 0, sa, ValueLayout.JAVA_BYTE, 2, p.length);
        return sa;
    }

    /** Connects to a listening socket at {@code path}. */
    public static UnixSocket connect(String path) {
        int s = newSocket();
        try (Arena a = Arena.ofConfined()) {
            MemorySegment sa = sockaddr(a, path);
            int r = (int) Native.CONNECT.invokeExact(Native.capture(), s, sa, 110);
            if (r < 0) throw Native.fail("connect(" + path + ")");
            return new UnixSocket(s);
        } catch (Throwable t) {
            Fd.closeQuietly(s);
            throw Native.rethrow(t);
        }
    }

    /** A connected pair (socketpair(2)), used by tests and in-process peers. */
    public static UnixSocket[] pair() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment sv = a.allocate(8, 4);
            int r = (int) Native.SOCKETPAIR.invokeExact(Native.capture(), AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv);
            if (r < 0) throw Native.fail("socketpair");
            return new UnixSocket[] {new UnixSocket(sv.get(ValueLayout.JAVA_INT, 0)), new UnixSocket(sv.get(ValueLayout.JAVA_INT, 4))};
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    /** A listening socket bound to a filesystem path. */
    public static final class Listener implements AutoCloseable {
        private final int fd;
        private final String path;
        private volatile boolean closed;

        private Listener(int fd, String path) {
            this.fd = fd;
            this.path = path;
        }

        /** Binds and listens at {@code path} with the default access ({@code 0600}). */
        public static Listener bind(String path) {
            return bind(path, SocketAccess.DEFAULT);
        }

        /**
         * Binds and listens at {@code path}. The path is first made free by
         * {@link #claimSocketPath}: only a stale socket is replaced. The socket file gets
         * {@code access} after {@code bind(2)} and before {@code listen(2)}, so nobody can
         * connect while it still has the umask's permissions.
         *
         * @throws SocketPathException when the path is taken or its permissions cannot be set
         */
        public static Listener bind(String path, SocketAccess access) {
            try (Arena a = Arena.ofConfined()) {
                MemorySegment sa = sockaddr(a, path);
                claimSocketPath(path);
                int s = newSocket();
                int r = (int) Native.BIND.invokeExact(Native.capture(), s, sa, 110);
                if (r < 0) {
                    NativeException e = Native.fail("bind(" + path + ")");
                    Fd.closeQuietly(s);
                    throw e;
                }
                try {
                    access.apply(java.nio.file.Path.of(path));
                } catch (RuntimeException e) {
                    Fd.closeQuietly(s);
                    unlinkQuietly(path);
                    throw e;
                }
                r = (int) Native.LISTEN.invokeExact(Native.capture(), s, 16);
                if (r < 0) {
                    NativeException e = Native.fail("listen(" + path + ")");
                    Fd.closeQuietly(s);
                    unlinkQuietly(path);
                    throw e;
                }
                return new Listener(s, path);
            } catch (Throwable t) {
                throw Native.rethrow(t);
            }
        }

        public String path() {
            return path;
        }

        /** Blocks for the next connection; throws {@link EOFException} once closed. */
        public UnixSocket accept() throws EOFException {
            while (true) {
                int c;
                try {
                    c = (int) Native.ACCEPT4.invokeExact(Native.capture(), fd, MemorySegment.NULL, MemorySegment.NULL, SOCK_CLOEXEC);
                } catch (Throwable t) {
                    throw Native.rethrow(t);
                }
                if (c >= 0) return new UnixSocket(c);
                int e = Native.errno();
                if (closed) throw new EOFException("listener closed");
                if (e == Errno.EINTR || e == 103 /* ECONNABORTED */) continue;
                throw new NativeException("accept4(" + path + ")", e);
            }
        }

        /** Stops accepting (wakes a blocked {@link #accept}) and removes the socket file. */
        @Override
        public void close() {
            if (closed) return;
            closed = true;
            try {
                int r = (int) Native.SHUTDOWN.invokeExact(Native.capture(), fd, 2);
            } catch (Throwable t) {
                // ignore
            }
            Fd.closeQuietly(fd);
            try {
                unlink(path);
            } catch (RuntimeException e) {
                // already gone
            }
        }
    }

    /**
     * Makes {@code path} free for a new listening socket, the one rule for every socket jvhost
     * creates (controllers and the RPC server): nothing there is fine; a socket nobody accepts
     * on is left over from a dead process and is removed; a socket with a live listener is
     * refused ({@code EADDRINUSE}); anything else (a regular file, a directory, a symbolic link,
     * a FIFO) is never touched and refused ({@code EEXIST}).
     */
    public static void claimSocketPath(String path) {
        java.nio.file.Path p = java.nio.file.Path.of(path);
        String kind = fileKind(p);
        if (kind == null) return;
        if (!kind.equals("socket")) {
            throw new SocketPathException(Errno.EEXIST, "cannot create socket " + path + ": the path exists and is " + kind
                    + ", not a socket; jvhost replaces only a stale socket (remove it yourself or choose another path)");
        }
        boolean live;
        long holder = -1;
        try (UnixSocket probe = connect(path)) {
            live = true;
            holder = probe.peerPid(); // the listener's pid, so the message can say whom to stop
        } catch (NativeException e) {
            if (e.errno() == Errno.ENOENT) return; // removed meanwhile
            if (e.errno() != ECONNREFUSED) {
                // EACCES and the like: we cannot tell whether someone serves there, so it is not ours to remove.
                throw new SocketPathException(e.errno(), "cannot create socket " + path + ": a socket exists there and probing it failed ("
                        + Native.strerror(e.errno()) + "); it is not removed (remove it yourself or choose another path)");
            }
            live = false; // ECONNREFUSED: nobody listens, the socket is stale
        }
        if (live) {
            throw new SocketPathException(EADDRINUSE, "cannot create socket " + path
                    + ": another process is serving on it (" + (holder > 0 ? "pid " + holder + describe(holder) + "; " : "") + "stop it, or choose another path)");
        }
        try {
            unlink(path);
        } catch (NativeException e) {
            if (e.errno() != Errno.ENOENT) {
                throw new SocketPathException(e.errno(), "cannot remove the stale socket " + path + ": " + Native.strerror(e.errno()));
            }
        }
    }

    /** ", jvhost" or ", qemu-storage-d": the process's name where it can be read, else nothing. */
    private static String describe(long pid) {
        try {
            return ", " + java.nio.file.Files.readString(java.nio.file.Path.of("/proc", Long.toString(pid), "comm")).strip();
        } catch (java.io.IOException | RuntimeException e) {
            return "";
        }
    }

    /** Linux EADDRINUSE: a live server already listens at the path. */
    public static final int EADDRINUSE = 98;
    private static final int ECONNREFUSED = 111;

    /** What is at {@code p} without following a link: null (nothing), "socket", "a regular file", ... */
    private static String fileKind(java.nio.file.Path p) {
        int mode;
        try {
            mode = (Integer) java.nio.file.Files.getAttribute(p, "unix:mode", java.nio.file.LinkOption.NOFOLLOW_LINKS);
        } catch (java.nio.file.NoSuchFileException e) {
            return null;
        } catch (java.io.IOException | UnsupportedOperationException | IllegalArgumentException e) {
            return java.nio.file.Files.exists(p, java.nio.file.LinkOption.NOFOLLOW_LINKS) ? "something that cannot be inspected" : null;
        }
        return switch (mode & 0170000) {
            case 0140000 -> "socket";
            case 0100000 -> "a regular file";
            case 0040000 -> "a directory";
            case 0120000 -> "a symbolic link";
            case 0010000 -> "a FIFO";
            case 0020000, 0060000 -> "a device node";
            default -> "not a socket";
        };
    }

    static void unlinkQuietly(String path) {
        try {
            unlink(path);
        } catch (RuntimeException e) {
            // already gone
        }
    }

    static void unlink(String path) {
        try (Arena a = Arena.ofConfined()) {
            int r = (int) Native.UNLINK.invokeExact(Native.capture(), a.allocateFrom(path));
            if (r < 0) throw Native.fail("unlink(" + path + ")");
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }
}
