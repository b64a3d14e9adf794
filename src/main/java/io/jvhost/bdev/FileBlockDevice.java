package io.jvhost.bdev;

import io.jvhost.sys.Errno;
import io.jvhost.sys.Fd;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.UUID;

/**
 * A regular file or block device (SPDK: aio bdev). The reactor never does the file's system
 * calls: a {@link FileIoEngine} does them (today {@link ThreadPoolFileIoEngine}: positional
 * vectored preadv/pwritev, fdatasync and fallocate on a few worker threads) and hands
 * completions back through the channel's queue and eventfd; an io_uring engine replaces it
 * later behind the same seam without changing the channel contract.
 */
public final class FileBlockDevice extends AbstractBlockDevice {
    private final String path;
    private final boolean readOnly;
    private final boolean blockSizeGiven;
    private final int fd;
    private final Arena zerosArena = Arena.ofShared();
    /** Source of zeros where fallocate cannot zero (read-only for the workers). */
    private final MemorySegment zeros = zerosArena.allocate(1 << 20, 4096);
    private final FileIoEngine engine;

    /** {@code blockSize} 0: the default (512); SPDK's save_config writes it only when it was given. */
    public FileBlockDevice(String name, String path, int blockSize, boolean readOnly, UUID uuid) {
        this(name, path, blockSize, readOnly, uuid, FileIoEngine.THREADS);
    }

    /** As above, with the I/O engine chosen by {@code engines} (tests inject slow or failing ones). */
    public FileBlockDevice(String name, String path, int blockSize, boolean readOnly, UUID uuid, FileIoEngine.Factory engines) {
        this(name, path, blockSize == 0 ? 512 : blockSize, blockSize != 0, readOnly, uuid,
                openChecked(name, path, blockSize == 0 ? 512 : blockSize, readOnly), engines);
    }

    private FileBlockDevice(String name, String path, int blockSize, boolean blockSizeGiven, boolean readOnly, UUID uuid, long[] fdAndSize,
                            FileIoEngine.Factory engines) {
        super(name, fdAndSize[1] / blockSize, blockSize, uuid != null ? uuid : UUID.nameUUIDFromBytes(("jvhost-aio:" + path).getBytes()));
        this.fd = (int) fdAndSize[0];
        this.path = path;
        this.readOnly = readOnly;
        this.blockSizeGiven = blockSizeGiven;
        this.engine = engines.create(name, new Ops());
    }

    /** Whether the block size was given at creation (SPDK: {@code block_size_override}). */
    public boolean blockSizeGiven() { return blockSizeGiven; }

    /** The file's size now, in whole blocks (for {@code bdev_aio_rescan}). */
    public long currentNumBlocks() {
        return Fd.size(fd) / blockSize();
    }

    /** Opens the file and checks its size and the geometry (closing it on failure): {fd, size}. */
    private static long[] openChecked(String name, String path, int blockSize, boolean readOnly) {
        if (path == null || path.isBlank()) throw new IllegalArgumentException("filename must not be empty");
        int fd = Fd.open(path, readOnly ? Fd.O_RDONLY : Fd.O_RDWR, 0);
        try {
            long size = Fd.size(fd);
            if (size < blockSize) throw new IllegalArgumentException("file " + path + " is " + size
                    + " bytes, smaller than one " + blockSize + "-byte block");
            BlockDevices.checkGeometry(name, size / blockSize, blockSize);
            return new long[] {fd, size};
        } catch (RuntimeException e) {
            Fd.closeQuietly(fd);
            throw e;
        }
    }

    public String path() { return path; }
    @Override public String productName() { return "AIO disk"; }
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
        Fd.closeQuietly(fd);
    }

    /** The blocking file operations, run on the engine's worker threads (never on a reactor). */
    private final class Ops implements FileOps {
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
