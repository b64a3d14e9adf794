package io.jvhost.sys;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/** Plain file-descriptor calls: close, dup, read/write of small values, files. */
public final class Fd {
    private Fd() {}

    public static final int O_RDONLY = 0;
    public static final int O_RDWR = 2;
    public static final int O_CREAT = 0100;
    public static final int O_DIRECT = 040000;
    public static final int O_CLOEXEC = 02000000;

    /** Closes {@code fd} if it is >= 0; errors are ignored (the fd is gone either way on Linux). */
    public static void closeQuietly(int fd) {
        if (fd < 0) return;
        try {
            int r = (int) Native.CLOSE.invokeExact(Native.capture(), fd);
        } catch (Throwable t) {
            // nothing useful to do
        }
    }

    public static int dup(int fd) {
        try {
            int r = (int) Native.DUP.invokeExact(Native.capture(), fd);
            if (r < 0) throw Native.fail("dup(" + fd + ")");
            return r;
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    /** True if {@code fd} refers to an open file description (fcntl F_GETFD succeeds). */
    public static boolean isValid(int fd) {
        if (fd < 0) return false;
        try {
            int r = (int) Native.FCNTL.invokeExact(Native.capture(), fd, 1 /* F_GETFD */, 0);
            return r >= 0;
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    /** What fstat(2) says about an fd: whether it is a regular file and its size. */
    public record Stat(boolean regularFile, long size) {}

    public static Stat fstat(int fd) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = a.allocate(144, 8); // struct stat on x86_64
            int r = (int) Native.FSTAT.invokeExact(Native.capture(), fd, st);
            if (r < 0) throw Native.fail("fstat(fd " + fd + ")");
            int mode = st.get(java.lang.foreign.ValueLayout.JAVA_INT, 24);
            long size = st.get(java.lang.foreign.ValueLayout.JAVA_LONG, 48);
            return new Stat((mode & 0170000) == 0100000, size);
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    public static final int F_SEAL_SEAL = 0x1;
    public static final int F_SEAL_SHRINK = 0x2;
    public static final int F_SEAL_GROW = 0x4;
    public static final int F_SEAL_WRITE = 0x8;

    /** The seals on {@code fd} (fcntl F_GET_SEALS), or -errno (EINVAL: the file cannot be sealed). */
    public static int seals(int fd) {
        try {
            int r = (int) Native.FCNTL.invokeExact(Native.capture(), fd, 1034 /* F_GET_SEALS */, 0);
            return r < 0 ? -Native.errno() : r;
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    /**
     * Adds {@code seals} to {@code fd} (fcntl F_ADD_SEALS); 0 or -errno (EINVAL: not sealable,
     * e.g. a memfd made without MFD_ALLOW_SEALING or a tmpfs file; EPERM: F_SEAL_SEAL is set).
     */
    public static int addSeals(int fd, int seals) {
        try {
            int r = (int) Native.FCNTL.invokeExact(Native.capture(), fd, 1033 /* F_ADD_SEALS */, seals);
            return r < 0 ? -Native.errno() : 0;
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    /**
     * Best effort: forbid shrinking a memfd we map (F_SEAL_SHRINK), so the peer cannot truncate
     * it under our mapping. Returns true when the file is sealed against shrinking afterwards.
     */
    public static boolean trySealShrink(int fd) {
        int have = seals(fd);
        if (have >= 0 && (have & F_SEAL_SHRINK) != 0) return true;
        return have >= 0 && addSeals(fd, F_SEAL_SHRINK) == 0;
    }

    /** Sets O_NONBLOCK on {@code fd} so a hostile peer's fd can never block a reactor. */
    public static void setNonBlocking(int fd) {
        try {
            int fl = (int) Native.FCNTL.invokeExact(Native.capture(), fd, 3 /* F_GETFL */, 0);
            if (fl < 0) throw Native.fail("fcntl(F_GETFL, fd " + fd + ")");
            int r = (int) Native.FCNTL.invokeExact(Native.capture(), fd, 4 /* F_SETFL */, fl | 04000 /* O_NONBLOCK */);
            if (r < 0) throw Native.fail("fcntl(F_SETFL, fd " + fd + ")");
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    public static int open(String path, int flags, int mode) {
        try (Arena a = Arena.ofConfined()) {
            int r = (int) Native.OPEN.invokeExact(Native.capture(), a.allocateFrom(path), flags | O_CLOEXEC, mode);
            if (r < 0) throw Native.fail("open(" + path + ")");
            return r;
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    /** Size of a regular file or block device (lseek to the end). */
    public static long size(int fd) {
        try {
            long r = (long) Native.LSEEK.invokeExact(Native.capture(), fd, 0L, 2 /* SEEK_END */);
            if (r < 0) throw Native.fail("lseek");
            return r;
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    public static void ftruncate(int fd, long size) {
        try {
            int r = (int) Native.FTRUNCATE.invokeExact(Native.capture(), fd, size);
            if (r < 0) throw Native.fail("ftruncate");
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    /** preadv at {@code offset}; {@code iov} holds {@code count} struct iovec. Returns bytes or -errno. */
    public static long preadv(int fd, MemorySegment iov, int count, long offset) {
        try {
            long r = (long) Native.PREADV.invokeExact(Native.capture(), fd, iov, count, offset);
            return r < 0 ? -Native.errno() : r;
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    public static long pwritev(int fd, MemorySegment iov, int count, long offset) {
        try {
            long r = (long) Native.PWRITEV.invokeExact(Native.capture(), fd, iov, count, offset);
            return r < 0 ? -Native.errno() : r;
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    /** fdatasync; 0 or -errno. */
    public static int fdatasync(int fd) {
        try {
            int r = (int) Native.FDATASYNC.invokeExact(Native.capture(), fd);
            return r < 0 ? -Native.errno() : 0;
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    public static final int FALLOC_FL_KEEP_SIZE = 1;
    public static final int FALLOC_FL_PUNCH_HOLE = 2;
    public static final int FALLOC_FL_ZERO_RANGE = 0x10;

    /** fallocate; 0 or -errno. */
    public static int fallocate(int fd, int mode, long offset, long len) {
        try {
            int r = (int) Native.FALLOCATE.invokeExact(Native.capture(), fd, mode, offset, len);
            return r < 0 ? -Native.errno() : 0;
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    /** write(2) of a segment on the control path; returns bytes written, throws on error. */
    public static long write(int fd, MemorySegment buf, long len) {
        try {
            long r = (long) Native.WRITE_E.invokeExact(Native.capture(), fd, buf, len);
            if (r < 0) throw Native.fail("write");
            return r;
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }
}
