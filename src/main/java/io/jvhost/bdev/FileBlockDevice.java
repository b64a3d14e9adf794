package io.jvhost.bdev;

import io.jvhost.sys.BlockDeviceIoctl;
import io.jvhost.sys.Errno;
import io.jvhost.sys.Fd;
import io.jvhost.sys.NativeException;
import org.slf4j.LoggerFactory;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.UUID;

/**
 * A regular file or block device (SPDK: aio and uring bdevs). The reactor never does the file's
 * system calls: a {@link FileIoEngine} does them, by default io_uring ({@link UringFileIoEngine},
 * polled by the reactor), or where io_uring is missing or forbidden a few worker threads
 * ({@link ThreadPoolFileIoEngine}); completions come back on the submitting reactor.
 *
 * <p>The file is opened twice: buffered, and with {@code O_DIRECT} where the file system allows
 * it. Aligned reads and writes go to the direct fd (no page cache, as SPDK and QEMU's
 * {@code cache.direct=on}), others to the buffered one. A block device's size comes from
 * {@code BLKGETSIZE64} and its default block size from {@code BLKSSZGET} (which is also its
 * direct-I/O alignment); a file's direct-I/O alignment is probed (512, then 4096).
 */
public final class FileBlockDevice extends AbstractBlockDevice {
    /** Which SPDK method made the device (its name, product name and save_config entry). */
    public enum Kind {
        AIO("bdev_aio_create", "AIO disk", "aio"),
        URING("bdev_uring_create", "URING bdev", "uring");

        public final String createMethod, productName, driverKey;

        Kind(String createMethod, String productName, String driverKey) {
            this.createMethod = createMethod;
            this.productName = productName;
            this.driverKey = driverKey;
        }
    }

    private final Kind kind;
    private final String path;
    private final boolean readOnly;
    private final boolean blockSizeGiven;
    private final boolean uuidGiven;
    private final FileHandles handles;
    private final Arena zerosArena;
    private final FileIoEngine engine;

    /** {@code blockSize} 0: the default (512, or a block device's logical block size); SPDK's save_config writes it only when it was given. */
    public FileBlockDevice(String name, String path, int blockSize, boolean readOnly, UUID uuid) {
        this(name, path, blockSize, readOnly, uuid, FileIoEngine.AUTO);
    }

    /** As above, with the I/O engine chosen by {@code engines} (tests inject slow or failing ones). */
    public FileBlockDevice(String name, String path, int blockSize, boolean readOnly, UUID uuid, FileIoEngine.Factory engines) {
        this(Kind.AIO, name, path, blockSize, readOnly, uuid, engines);
    }

    public FileBlockDevice(Kind kind, String name, String path, int blockSize, boolean readOnly, UUID uuid, FileIoEngine.Factory engines) {
        this(kind, name, path, blockSize, readOnly, uuid, openChecked(name, path, blockSize, readOnly), engines);
    }

    private FileBlockDevice(Kind kind, String name, String path, int blockSizeArg, boolean readOnly, UUID uuid, Opened o, FileIoEngine.Factory engines) {
        super(name, o.size / o.blockSize, o.blockSize, uuid != null ? uuid : UUID.nameUUIDFromBytes(("jvhost-aio:" + path).getBytes()));
        this.kind = kind;
        this.path = path;
        this.readOnly = readOnly;
        this.blockSizeGiven = blockSizeArg != 0;
        this.uuidGiven = uuid != null;
        this.handles = o.handles;
        this.zerosArena = o.zerosArena;
        FileIoEngine e;
        try {
            e = engines.create(name, new Ops(), handles);
        } catch (RuntimeException ex) {
            o.close();
            throw ex;
        }
        this.engine = e;
    }

    /** Whether the block size was given at creation (SPDK: {@code block_size_override}). */
    public boolean blockSizeGiven() { return blockSizeGiven; }

    /** Whether the UUID was given at creation (otherwise it is derived from the path). */
    public boolean uuidGiven() { return uuidGiven; }

    public Kind kind() { return kind; }

    /** True when the path is a block device. */
    public boolean isBlockDevice() { return handles.blockDevice(); }

    /** True when aligned requests bypass the page cache ({@code O_DIRECT}). */
    public boolean directIo() { return handles.directFd() >= 0; }

    /** The alignment direct I/O needs (0 without direct I/O). */
    public int directAlignment() { return handles.directFd() >= 0 ? handles.directAlign() : 0; }

    /** The file's size now, in whole blocks (for {@code bdev_aio_rescan}). */
    public long currentNumBlocks() {
        return (handles.blockDevice() ? BlockDeviceIoctl.sizeBytes(handles.fd()) : Fd.size(handles.fd())) / blockSize();
    }

    /** What {@link #openChecked} found: the fds, the size and block size, the zero buffer. */
    private record Opened(FileHandles handles, long size, int blockSize, Arena zerosArena) {
        void close() {
            Fd.closeQuietly(handles.fd());
            Fd.closeQuietly(handles.directFd());
            zerosArena.close();
        }
    }

    /** Opens the file (buffered and, if possible, O_DIRECT) and checks its size and geometry (closing it on failure). */
    private static Opened openChecked(String name, String path, int blockSizeArg, boolean readOnly) {
        if (path == null || path.isBlank()) throw new IllegalArgumentException("filename must not be empty");
        int flags = readOnly ? Fd.O_RDONLY : Fd.O_RDWR;
        int fd = Fd.open(path, flags, 0);
        int directFd = -1;
        Arena zerosArena = Arena.ofShared();
        try {
            boolean blockDevice = BlockDeviceIoctl.isBlockDevice(fd);
            long size;
            int align;
            int blockSize;
            if (blockDevice) {
                size = BlockDeviceIoctl.sizeBytes(fd);
                align = BlockDeviceIoctl.logicalBlockSize(fd);
                blockSize = blockSizeArg != 0 ? blockSizeArg : align;
                if (blockSize < align) {
                    LoggerFactory.getLogger(FileBlockDevice.class).warn("bdev {}: block_size {} is smaller than {}'s logical block size {}: "
                            + "requests not aligned to {} bytes go through the page cache", name, blockSize, path, align, align);
                }
            } else {
                size = Fd.size(fd);
                blockSize = blockSizeArg != 0 ? blockSizeArg : 512;
                align = 0;
            }
            if (size < blockSize) throw new IllegalArgumentException("file " + path + " is " + size
                    + " bytes, smaller than one " + blockSize + "-byte block");
            BlockDevices.checkGeometry(name, size / blockSize, blockSize);
            MemorySegment zeros = zerosArena.allocate(1 << 20, 4096);
            try {
                directFd = Fd.open(path, flags | Fd.O_DIRECT, 0);
                if (!blockDevice) align = probeDirectAlignment(directFd, size, zeros);
                if (align <= 0) {
                    Fd.closeQuietly(directFd);
                    directFd = -1;
                }
            } catch (NativeException e) {
                directFd = -1; // EINVAL: this file system has no O_DIRECT (tmpfs); buffered only
            }
            return new Opened(new FileHandles(fd, directFd, Math.max(align, 1), blockDevice, readOnly, zeros), size, blockSize, zerosArena);
        } catch (RuntimeException e) {
            Fd.closeQuietly(fd);
            Fd.closeQuietly(directFd);
            zerosArena.close();
            throw e;
        }
    }

    /**
     * The smallest of 512 and 4096 at which an O_DIRECT read of the file's first bytes succeeds
     * (EINVAL means misaligned); 0 when neither does. Reads nothing beyond the file's size.
     */
    private static int probeDirectAlignment(int directFd, long size, MemorySegment buffer4k) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment iov = a.allocate(16, 8);
            for (int align = 512; align <= 4096; align <<= 1) {
                if (size < align) return 0;
                iov.set(ValueLayout.JAVA_LONG, 0, buffer4k.address());
                iov.set(ValueLayout.JAVA_LONG, 8, align);
                long r = Fd.preadv(directFd, iov, 1, 0);
                if (r == align) return align;
                if (r != -Errno.EINVAL) return 0;
            }
            return 0;
        } finally {
            buffer4k.asSlice(0, 4096).fill((byte) 0); // it is the zero buffer
        }
    }

    public String path() { return path; }
    @Override public String productName() { return kind.productName; }
    @Override public boolean readOnly() { return readOnly; }
    @Override public boolean supportsUnmap() { return true; }
    @Override public boolean supportsWriteZeroes() { return true; }
    @Override public boolean volatileWriteCache() { return true; }

    /** The engine's name (reported by bdev_get_bdevs). */
    public String ioEngine() {
        return engine.name();
    }

    @Override
    public BlockChannel openChannel() {
        return ioStats.wrap(engine.openChannel(sizeBytes()));
    }

    @Override
    public void close() {
        engine.close();
        zerosArena.close();
        Fd.closeQuietly(handles.fd());
        Fd.closeQuietly(handles.directFd());
    }

    /**
     * The blocking file operations, run on the thread pool engine's workers (never on a
     * reactor): aligned transfers on the O_DIRECT fd, others buffered; block devices zeroed with
     * {@code BLKZEROOUT} where fallocate is refused.
     */
    private final class Ops implements FileOps {
        private final int fd = handles.fd();
        private final MemorySegment zeros = handles.zeros();

        @Override
        public int execute(BlockRequest r, Scratch s) {
            return switch (r.op) {
                case READ -> vectored(r, false, s.iov);
                case WRITE -> readOnly ? -Errno.EROFS : vectored(r, true, s.iov);
                case FLUSH -> Fd.fdatasync(fd);
                case UNMAP -> readOnly ? -Errno.EROFS : punch(r.offset, r.length, s.iov);
                case WRITE_ZEROES -> readOnly ? -Errno.EROFS : zero(r.offset, r.length, s.iov);
            };
        }

        private int vectored(BlockRequest r, boolean write, MemorySegment iov) {
            int fd = handles.directOk(r) ? handles.directFd() : this.fd;
            long pos = r.offset;
            int i = 0, n = r.bufferCount();
            long skip = 0; // bytes of buffer i already transferred
            while (i < n) {
                int cnt = 0;
                for (int k = i; k < n && cnt < Scratch.IOV_MAX; k++, cnt++) {
                    long off = r.bufferOffset(k) + (k == i ? skip : 0);
                    long len = r.bufferLength(k) - (k == i ? skip : 0);
                    long addr = r.bufferSegment(k).address() + off;
                    iov.set(ValueLayout.JAVA_LONG, 16L * cnt, addr);
                    iov.set(ValueLayout.JAVA_LONG, 16L * cnt + 8, len);
                }
                long got = write ? Fd.pwritev(fd, iov, cnt, pos) : Fd.preadv(fd, iov, cnt, pos);
                if (got < 0) {
                    if (got == -Errno.EINTR || got == -Errno.EAGAIN) continue;
                    return (int) got;
                }
                if (got == 0) return -Errno.EIO; // unexpected end of file
                pos += got;
                // advance (i, skip) by got bytes
                while (got > 0 && i < n) {
                    long rest = r.bufferLength(i) - skip;
                    if (got >= rest) {
                        got -= rest;
                        i++;
                        skip = 0;
                    } else {
                        skip += got;
                        got = 0;
                    }
                }
            }
            return 0;
        }

        private int punch(long off, long len, MemorySegment iov) {
            int r = Fd.fallocate(fd, Fd.FALLOC_FL_PUNCH_HOLE | Fd.FALLOC_FL_KEEP_SIZE, off, len);
            return r == 0 ? 0 : zero(off, len, iov); // block devices and some filesystems: write zeros
        }

        private int zero(long off, long len, MemorySegment iov) {
            int r = Fd.fallocate(fd, Fd.FALLOC_FL_ZERO_RANGE | Fd.FALLOC_FL_KEEP_SIZE, off, len);
            if (r == 0) return 0;
            if (handles.blockDevice() && BlockDeviceIoctl.zeroOut(fd, off, len, iov) == 0) return 0;
            long pos = off, end = off + len;
            while (pos < end) {
                long chunk = Math.min(zeros.byteSize(), end - pos);
                iov.set(ValueLayout.JAVA_LONG, 0, zeros.address());
                iov.set(ValueLayout.JAVA_LONG, 8, chunk);
                long got = Fd.pwritev(fd, iov, 1, pos);
                if (got == -Errno.EINTR) continue;
                if (got <= 0) return got == 0 ? -Errno.EIO : (int) got;
                pos += got;
            }
            return 0;
        }
    }
}
