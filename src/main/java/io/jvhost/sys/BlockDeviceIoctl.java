package io.jvhost.sys;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * Block device ioctls ({@code linux/fs.h}) and the file-type test that decides whether a path is
 * one. Control path, except {@link #discard}/{@link #zeroOut} which block and so run only on a
 * worker thread (the io_uring engine uses fallocate instead, which the kernel runs
 * asynchronously and maps to the same zero-out/discard on a block device).
 */
public final class BlockDeviceIoctl {
    private BlockDeviceIoctl() {}

    private static final long BLKSSZGET = 0x1268;          // _IO(0x12, 104): logical block size, int
    private static final long BLKPBSZGET = 0x127b;         // _IO(0x12, 123): physical block size, unsigned int
    private static final long BLKGETSIZE64 = 0x80081272L;  // _IOR(0x12, 114, size_t): size in bytes, u64
    private static final long BLKDISCARD = 0x1277;         // _IO(0x12, 119): uint64_t range[2]
    private static final long BLKZEROOUT = 0x127f;         // _IO(0x12, 127): uint64_t range[2]

    private static final int S_IFMT = 0170000, S_IFBLK = 0060000;

    /** True when {@code fd} is a block device (fstat's st_mode). */
    public static boolean isBlockDevice(int fd) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = a.allocate(144, 8); // struct stat on x86_64 / aarch64
            int r = (int) Native.FSTAT.invokeExact(Native.capture(), fd, st);
            if (r < 0) throw Native.fail("fstat(fd " + fd + ")");
            return (st.get(ValueLayout.JAVA_INT, 24) & S_IFMT) == S_IFBLK;
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    /** BLKGETSIZE64: the device's size in bytes. */
    public static long sizeBytes(int fd) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment v = a.allocate(8, 8);
            ioctl(fd, BLKGETSIZE64, v, "BLKGETSIZE64");
            return v.get(ValueLayout.JAVA_LONG, 0);
        }
    }

    /** BLKSSZGET: the logical block size (the smallest addressable unit, and O_DIRECT's alignment). */
    public static int logicalBlockSize(int fd) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment v = a.allocate(8, 8);
            ioctl(fd, BLKSSZGET, v, "BLKSSZGET");
            return v.get(ValueLayout.JAVA_INT, 0);
        }
    }

    /** BLKPBSZGET: the physical block size. */
    public static int physicalBlockSize(int fd) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment v = a.allocate(8, 8);
            ioctl(fd, BLKPBSZGET, v, "BLKPBSZGET");
            return v.get(ValueLayout.JAVA_INT, 0);
        }
    }

    /** BLKDISCARD of {@code [offset, offset+length)}: 0 or -errno (blocks: worker threads only). */
    public static int discard(int fd, long offset, long length, MemorySegment range16) {
        return rangeIoctl(fd, BLKDISCARD, offset, length, range16);
    }

    /** BLKZEROOUT of {@code [offset, offset+length)}: 0 or -errno (blocks: worker threads only). */
    public static int zeroOut(int fd, long offset, long length, MemorySegment range16) {
        return rangeIoctl(fd, BLKZEROOUT, offset, length, range16);
    }

    private static int rangeIoctl(int fd, long request, long offset, long length, MemorySegment range16) {
        range16.set(ValueLayout.JAVA_LONG, 0, offset);
        range16.set(ValueLayout.JAVA_LONG, 8, length);
        try {
            int r = (int) Native.IOCTL.invokeExact(Native.capture(), fd, request, range16);
            return r < 0 ? -Native.errno() : 0;
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    private static void ioctl(int fd, long request, MemorySegment arg, String what) {
        try {
            int r = (int) Native.IOCTL.invokeExact(Native.capture(), fd, request, arg);
            if (r < 0) throw Native.fail("ioctl(" + what + ", fd " + fd + ")");
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }
}
