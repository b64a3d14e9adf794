package io.jvhost.bdev;

import io.jvhost.sys.Errno;
import io.jvhost.sys.EventFd;
import io.jvhost.sys.Fd;
import io.jvhost.sys.IoUring;
import io.jvhost.runtime.IoWaitEstimate;
import io.jvhost.runtime.LoopClock;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * A {@link FileIoEngine} on io_uring: every channel (one per bdev and reactor, see
 * {@code ReactorChannels}) owns its own ring, polled by its reactor. No thread per I/O and no
 * system call per I/O: {@code submit} only writes an SQE into the mapped ring; the channel's
 * {@code poll} makes one {@code io_uring_enter} for everything prepared since the last poll and
 * then reaps the CQ from memory. The ring's CQ eventfd is the channel's {@link #wakeFd}, so the
 * reactor can sleep with I/O in flight.
 *
 * <p><b>Why a ring per channel rather than one per reactor:</b> the channel already is the
 * per-(bdev, reactor) object with a lifecycle (opened on first use, closed by the last queue),
 * so the ring, its registered files (this bdev's two fds) and its eventfd live and die with it,
 * and nothing is shared between bdevs or needs a reactor-level service. The cost is one ring (a
 * few pages) per bdev per reactor and one {@code io_uring_enter} per busy channel per poll
 * instead of per reactor; with a handful of disks per reactor that is noise.
 *
 * <p><b>Requests.</b> {@code user_data} is the index of a slot in a preallocated table (request,
 * iovec array, progress); in-flight requests are capped at the SQ size, so a request's SQE
 * always finds room and the CQ (twice the SQ) never overflows; beyond the cap {@code submit}
 * answers {@code -EAGAIN}. Nothing is allocated per request (a slot's iovec array grows, once,
 * the first time a request needs more entries).
 *
 * <p><b>O_DIRECT.</b> A READ/WRITE whose range and guest buffers are aligned to the direct
 * alignment goes to the {@code O_DIRECT} fd (registered file 1); one that is not goes to the
 * buffered fd (registered file 0) instead: it never fails for alignment, and no bounce buffer or
 * copy is needed (the kernel keeps the page cache coherent with direct I/O: a direct write
 * invalidates cached pages of its range, a direct read first writes back dirty ones).
 *
 * <p><b>Short transfers</b> (a read or write that moved fewer bytes than asked, which io_uring
 * may return like preadv does) are resubmitted for the rest from where they stopped, on the
 * same slot: that is what a synchronous caller would do, and a guest must not see an error for
 * a transfer the kernel merely split. A transfer that moves nothing (end of file: the file
 * shrank under us) fails with EIO; a negative result fails the request with that errno (the
 * guest sees an I/O error); EAGAIN/EINTR are retried a bounded number of times.
 *
 * <p><b>FLUSH</b> = {@code IORING_OP_FSYNC} with {@code IORING_FSYNC_DATASYNC} (fdatasync).
 * <b>UNMAP</b> = {@code IORING_OP_FALLOCATE} with {@code PUNCH_HOLE|KEEP_SIZE} and
 * <b>WRITE_ZEROES</b> = {@code ZERO_RANGE|KEEP_SIZE}: on a block device the kernel turns these into
 * a zero-out that may unmap (discard) resp. a zero-out (what {@code BLKZEROOUT} does), run
 * asynchronously; where the file or device refuses, the range is overwritten with zeros by
 * chained writes from a zero buffer.
 */
public final class UringFileIoEngine implements FileIoEngine {
    private static final Logger log = LoggerFactory.getLogger(UringFileIoEngine.class);
    /** Default SQ entries per channel (the in-flight cap); the CQ has twice as many. */
    public static final int DEFAULT_ENTRIES = 256;
    /** Most iovecs one READV/WRITEV takes (the kernel's UIO_MAXIOV). */
    static final int IOV_MAX = 1024;
    private static final int FIXED_BUFFERED = 0, FIXED_DIRECT = 1;
    private static final int MAX_RETRIES = 1000;
    /**
     * Register guest memory with each ring as fixed buffers ({@link UringFixedBuffers});
     * {@code -Djvhost.uring.fixedBuffers=false} turns it off (measurements).
     */
    static final boolean FIXED_BUFFERS = !"false".equals(System.getProperty("jvhost.uring.fixedBuffers"));

    private final String bdevName;
    private final FileHandles file;
    private final int entries;
    /** Tests: rewrites CQE results (short transfers, failures) before the channel sees them. */
    private final ResultFilter filter;

    /** Tests only: what a completion's result becomes. */
    @FunctionalInterface
    interface ResultFilter {
        int filter(BlockRequest r, int res);
    }

    UringFileIoEngine(String bdevName, FileHandles file, int entries, ResultFilter filter) {
        if (Integer.bitCount(entries) != 1) throw new IllegalArgumentException("ring entries must be a power of two: " + entries);
        this.bdevName = bdevName;
        this.file = file;
        this.entries = entries;
        this.filter = filter;
    }

    /**
     * The io_uring engine when io_uring works here (and the {@code jvhost.fileEngine} property
     * does not say {@code threads}), else the thread pool; logs which and why.
     */
    static FileIoEngine createOrFallBack(String bdevName, FileOps ops, FileHandles file) {
        String forced = System.getProperty("jvhost.fileEngine", "");
        String why = forced.equals("threads") ? "jvhost.fileEngine=threads" : IoUring.unavailableReason();
        String direct = file.directFd() >= 0 ? "O_DIRECT (alignment " + file.directAlign() + ") where requests are aligned" : "buffered (no O_DIRECT here)";
        if (why == null) {
            log.info("bdev {}: I/O engine io_uring (a ring per reactor channel, {} entries), {}", bdevName, DEFAULT_ENTRIES, direct);
            return new UringFileIoEngine(bdevName, file, DEFAULT_ENTRIES, null);
        }
        log.warn("bdev {}: io_uring not used ({}); I/O engine threads (a worker pool), {}", bdevName, why, direct);
        return FileIoEngine.THREADS.create(bdevName, ops);
    }

    @Override
    public String name() {
        return "io_uring";
    }

    /** The channel opened last (tests). */
    volatile Channel lastOpened;

    @Override
    public BlockChannel openChannel(long sizeBytes) {
        Channel c = new Channel(sizeBytes);
        lastOpened = c;
        return c;
    }

    @Override
    public void close() {
        // channels own their rings; nothing shared
    }

    // slot kinds
    private static final byte K_RW = 0, K_SIMPLE = 1, K_FALLOCATE = 2, K_ZEROFILL = 3, K_FORCED = 4;

    /** One reactor's channel: a ring, a request table and the ring's CQ eventfd. Reactor thread only. */
    final class Channel implements BlockChannel, IoUring.CompletionHandler {
        private final long sizeBytes;
        private final IoUring ring;
        private final int eventFd;
        private final Arena arena = Arena.ofShared();
        private final BlockRequest[] requests;
        private final MemorySegment[] iovs;
        private final int[] iovCapacity;
        private final int[] iovFirst, iovCount;
        private final long[] pos, end;
        private final byte[] kind, opcode, fixedFd;
        /** Fixed buffer slot of a READ_FIXED/WRITE_FIXED (slot's request). */
        private final int[] bufIndex;
        /** Guest memory registered with the ring, or null (not wanted, or not possible here). */
        private final UringFixedBuffers fixed;
        private final int[] forced, retries;
        private final int[] freeSlots;
        private int freeTop;
        private int inFlight;
        private boolean closed;
        private long enterErrors;
        /** How long a poll finding nothing waits for the next completion (the opening reactor's loop clock). */
        private final IoWaitEstimate waits = new IoWaitEstimate(LoopClock.current());
        /** Reads/writes started on the O_DIRECT fd, on the buffered fd, and short transfers resubmitted (owner thread; tests and diagnostics). */
        long directIos, bufferedIos, resubmits;
        /** Reads/writes started as READ_FIXED/WRITE_FIXED, and fixed ones redone unregistered after EFAULT (owner thread). */
        long fixedIos, fixedFallbacks;

        Channel(long sizeBytes) {
            this.sizeBytes = sizeBytes;
            IoUring r = IoUring.create(entries, 2 * entries);
            int efd = -1;
            try {
                efd = EventFd.create(true);
                if (file.directFd() >= 0) r.registerFiles(file.fd(), file.directFd());
                else r.registerFiles(file.fd());
                r.registerEventFd(efd);
            } catch (RuntimeException e) {
                r.close();
                Fd.closeQuietly(efd);
                arena.close();
                throw e;
            }
            ring = r;
            eventFd = efd;
            fixed = FIXED_BUFFERS ? UringFixedBuffers.create(r, bdevName, arena) : null;
            bufIndex = new int[entries];
            requests = new BlockRequest[entries];
            iovs = new MemorySegment[entries];
            iovCapacity = new int[entries];
            iovFirst = new int[entries];
            iovCount = new int[entries];
            pos = new long[entries];
            end = new long[entries];
            kind = new byte[entries];
            opcode = new byte[entries];
            fixedFd = new byte[entries];
            forced = new int[entries];
            retries = new int[entries];
            freeSlots = new int[entries];
            for (int i = 0; i < entries; i++) freeSlots[i] = entries - 1 - i;
            freeTop = entries;
        }

        @Override
        public int submit(BlockRequest r) {
            if (r.offset < 0 || r.length < 0 || r.offset > sizeBytes - r.length) return -Errno.EINVAL;
            if (closed) return -Errno.EBADF;
            if (freeTop == 0) return -Errno.EAGAIN;
            int slot = freeSlots[--freeTop];
            requests[slot] = r;
            retries[slot] = 0;
            forced[slot] = 0;
            inFlight++;
            boolean write = r.op != BlockRequest.Op.READ && r.op != BlockRequest.Op.FLUSH;
            if (write && file.readOnly()) {
                force(slot, -Errno.EROFS);
            } else {
                switch (r.op) {
                    case READ, WRITE -> startRw(slot, r);
                    case FLUSH -> {
                        kind[slot] = K_SIMPLE;
                        prepare(slot, IoUring.OP_FSYNC, FIXED_BUFFERED, 0, 0, 0, IoUring.IORING_FSYNC_DATASYNC);
                    }
                    case UNMAP -> startFallocate(slot, r, Fd.FALLOC_FL_PUNCH_HOLE | Fd.FALLOC_FL_KEEP_SIZE);
                    case WRITE_ZEROES -> startFallocate(slot, r, Fd.FALLOC_FL_ZERO_RANGE | Fd.FALLOC_FL_KEEP_SIZE);
                }
            }
            return 0;
        }

        /** Completes {@code slot} with {@code status} from the next poll (a NOP carries it through the ring). */
        private void force(int slot, int status) {
            kind[slot] = K_FORCED;
            forced[slot] = status;
            prepare(slot, IoUring.OP_NOP, 0, 0, 0, 0, 0);
        }

        private void startRw(int slot, BlockRequest r) {
            int n = r.bufferCount();
            if (n > IOV_MAX || n == 0) {
                force(slot, n == 0 && r.length == 0 ? 0 : -Errno.EINVAL);
                return;
            }
            MemorySegment iov = iovFor(slot, n);
            for (int i = 0; i < n; i++) {
                iov.set(ValueLayout.JAVA_LONG, 16L * i, r.bufferSegment(i).address() + r.bufferOffset(i));
                iov.set(ValueLayout.JAVA_LONG, 16L * i + 8, r.bufferLength(i));
            }
            kind[slot] = K_RW;
            iovFirst[slot] = 0;
            iovCount[slot] = n;
            pos[slot] = r.offset;
            end[slot] = r.offset + r.length;
            boolean read = r.op == BlockRequest.Op.READ;
            if (file.directOk(r)) {
                fixedFd[slot] = FIXED_DIRECT;
                directIos++;
            } else {
                fixedFd[slot] = FIXED_BUFFERED;
                bufferedIos++;
            }
            opcode[slot] = n == 1 && r.length <= Integer.MAX_VALUE
                    ? (read ? IoUring.OP_READ : IoUring.OP_WRITE)
                    : (read ? IoUring.OP_READV : IoUring.OP_WRITEV);
            if (n == 1 && fixed != null) {
                // One buffer inside one registered chunk: the kernel skips pinning its pages.
                int b = fixed.slotFor(r.bufferSegment(0), iov.get(ValueLayout.JAVA_LONG, 0), r.length);
                if (b >= 0) {
                    bufIndex[slot] = b;
                    opcode[slot] = read ? IoUring.OP_READ_FIXED : IoUring.OP_WRITE_FIXED;
                    fixedIos++;
                }
            }
            prepareRw(slot);
        }

        /** The slot's iovec array with room for {@code n} entries (grows once per slot, to a power of two). */
        private MemorySegment iovFor(int slot, int n) {
            if (iovCapacity[slot] < n) {
                int cap = Math.max(16, Integer.highestOneBit(n - 1) << 1);
                iovs[slot] = arena.allocate(16L * cap, 8);
                iovCapacity[slot] = cap;
            }
            return iovs[slot];
        }

        private void prepareRw(int slot) {
            MemorySegment iov = iovs[slot];
            long first = 16L * iovFirst[slot];
            byte op = opcode[slot];
            if (op == IoUring.OP_READ || op == IoUring.OP_WRITE || op == IoUring.OP_READ_FIXED || op == IoUring.OP_WRITE_FIXED) {
                long addr = iov.get(ValueLayout.JAVA_LONG, first);
                long len = iov.get(ValueLayout.JAVA_LONG, first + 8);
                if (!ring.prepare(op, IoUring.IOSQE_FIXED_FILE, fixedFd[slot], pos[slot], addr, (int) len, 0, slot, bufIndex[slot])) {
                    throw new IllegalStateException("io_uring SQ full with " + inFlight + " in flight");
                }
            } else {
                prepare(slot, op, fixedFd[slot], pos[slot], iov.address() + first, iovCount[slot] - iovFirst[slot], 0);
            }
        }

        private void startFallocate(int slot, BlockRequest r, int mode) {
            kind[slot] = K_FALLOCATE;
            pos[slot] = r.offset;
            end[slot] = r.offset + r.length;
            if (r.length == 0) {
                force(slot, 0);
                return;
            }
            prepare(slot, IoUring.OP_FALLOCATE, FIXED_BUFFERED, r.offset, r.length, mode, 0);
        }

        /** Overwrites the rest of the slot's range with zeros, one chunk per SQE. */
        private void nextZeroChunk(int slot) {
            kind[slot] = K_ZEROFILL;
            MemorySegment zeros = file.zeros();
            long chunk = Math.min(zeros.byteSize(), end[slot] - pos[slot]);
            int fixed = file.directOk(pos[slot], zeros.address(), chunk) ? FIXED_DIRECT : FIXED_BUFFERED;
            prepare(slot, IoUring.OP_WRITE, fixed, pos[slot], zeros.address(), (int) chunk, 0);
        }

        private void prepare(int slot, byte op, int fixed, long off, long addr, int len, int opFlags) {
            // Cannot fail: in flight <= SQ entries and each request holds at most one SQE.
            if (!ring.prepare(op, IoUring.IOSQE_FIXED_FILE, fixed, off, addr, len, opFlags, slot)) {
                throw new IllegalStateException("io_uring SQ full with " + inFlight + " in flight");
            }
        }

        @Override
        public int poll() {
            // With COOP_TASKRUN the kernel does not interrupt this (spinning) thread with an IPI
            // per completion: it flags the SQ ring instead, and the completions appear once we
            // enter the kernel, which we do only when it says so (or to submit).
            boolean flush = ring.taskRunPending();
            if (flush || ring.unsubmitted() > 0) {
                int s = flush ? ring.submitAndFlush() : ring.submit(); // one io_uring_enter for the whole batch
                if (s < 0 && s != -Errno.EAGAIN && s != -Errno.EINTR && s != -Errno.EBUSY && Long.bitCount(++enterErrors) == 1) {
                    log.error("bdev {}: io_uring_enter failed: errno {} ({} times so far); retrying on the next poll", bdevName, -s, enterErrors);
                }
            }
            int n = ring.reap(this, 2 * entries);
            waits.polled(n, inFlight);
            // Entries prepared by completions above go in on the next poll: say there is work so
            // the reactor comes back instead of sleeping on them.
            if (n == 0 && ring.unsubmitted() > 0) n = 1;
            return n;
        }

        @Override
        public void onCompletion(long userData, int res) {
            int slot = (int) userData;
            BlockRequest r = requests[slot];
            if (r == null) return; // cannot happen: every SQE carries a live slot
            if (filter != null && kind[slot] != K_FORCED) res = filter.filter(r, res);
            switch (kind[slot]) {
                case K_FORCED -> finish(slot, forced[slot]);
                case K_SIMPLE -> finish(slot, res < 0 ? res : 0);
                case K_FALLOCATE -> {
                    if (res == 0) finish(slot, 0);
                    else if (res == -Errno.EINTR || res == -Errno.EAGAIN) retry(slot, res);
                    else nextZeroChunk(slot); // not supported here (or failed): write the zeros
                }
                case K_ZEROFILL -> {
                    if (res < 0) {
                        if (res == -Errno.EINTR || res == -Errno.EAGAIN) retry(slot, res);
                        else finish(slot, res);
                    } else if (res == 0) {
                        finish(slot, -Errno.EIO);
                    } else {
                        pos[slot] += res;
                        if (pos[slot] < end[slot]) nextZeroChunk(slot);
                        else finish(slot, 0);
                    }
                }
                default -> rwDone(slot, res);
            }
        }

        private void retry(int slot, int res) {
            if (++retries[slot] > MAX_RETRIES) {
                finish(slot, res);
                return;
            }
            switch (kind[slot]) {
                case K_RW -> prepareRw(slot);
                case K_ZEROFILL -> nextZeroChunk(slot);
                default -> startFallocate(slot, requests[slot],
                        requests[slot].op == BlockRequest.Op.UNMAP ? Fd.FALLOC_FL_PUNCH_HOLE | Fd.FALLOC_FL_KEEP_SIZE
                                : Fd.FALLOC_FL_ZERO_RANGE | Fd.FALLOC_FL_KEEP_SIZE);
            }
        }

        private void rwDone(int slot, int res) {
            if (res == -Errno.EFAULT && (opcode[slot] == IoUring.OP_READ_FIXED || opcode[slot] == IoUring.OP_WRITE_FIXED)) {
                // The registered buffer did not cover it after all (its slot was replaced
                // before the kernel got to the request): redo it the ordinary way.
                fixedFallbacks++;
                opcode[slot] = opcode[slot] == IoUring.OP_READ_FIXED ? IoUring.OP_READ : IoUring.OP_WRITE;
                prepareRw(slot);
                return;
            }
            if (res < 0) {
                if (res == -Errno.EINTR || res == -Errno.EAGAIN) retry(slot, res);
                else finish(slot, res);
                return;
            }
            long remaining = end[slot] - pos[slot];
            if (res >= remaining) {
                finish(slot, 0);
                return;
            }
            if (res == 0) {
                finish(slot, -Errno.EIO); // end of file: the file shrank under us
                return;
            }
            // Short transfer: skip what was done and submit the rest on the same slot.
            resubmits++;
            pos[slot] += res;
            MemorySegment iov = iovs[slot];
            long left = res;
            int i = iovFirst[slot];
            while (left > 0) {
                long len = iov.get(ValueLayout.JAVA_LONG, 16L * i + 8);
                if (left >= len) {
                    left -= len;
                    i++;
                } else {
                    iov.set(ValueLayout.JAVA_LONG, 16L * i, iov.get(ValueLayout.JAVA_LONG, 16L * i) + left);
                    iov.set(ValueLayout.JAVA_LONG, 16L * i + 8, len - left);
                    left = 0;
                }
            }
            iovFirst[slot] = i;
            // The rest may no longer be aligned for O_DIRECT: re-check against what remains.
            if (fixedFd[slot] == FIXED_DIRECT && !restDirectOk(slot)) fixedFd[slot] = FIXED_BUFFERED;
            if (opcode[slot] == IoUring.OP_READV || opcode[slot] == IoUring.OP_WRITEV) {
                if (iovCount[slot] - i == 1) opcode[slot] = opcode[slot] == IoUring.OP_READV ? IoUring.OP_READ : IoUring.OP_WRITE;
            }
            prepareRw(slot);
        }

        private boolean restDirectOk(int slot) {
            MemorySegment iov = iovs[slot];
            if (!file.directOk(pos[slot], 0, 0)) return false;
            for (int i = iovFirst[slot]; i < iovCount[slot]; i++) {
                if (!file.directOk(0, iov.get(ValueLayout.JAVA_LONG, 16L * i), iov.get(ValueLayout.JAVA_LONG, 16L * i + 8))) return false;
            }
            return true;
        }

        private void finish(int slot, int status) {
            BlockRequest r = requests[slot];
            requests[slot] = null;
            freeSlots[freeTop++] = slot;
            inFlight--;
            r.complete(status);
        }

        @Override
        public int inFlight() {
            return inFlight;
        }

        @Override
        public int wakeFd() {
            return eventFd;
        }

        @Override
        public long expectedWaitNanos() {
            return waits.expectedNanos(inFlight);
        }

        /** The fixed buffers, or null (tests). */
        UringFixedBuffers fixedBuffers() {
            return fixed;
        }

        /** The ring (tests). */
        IoUring ring() {
            return ring;
        }

        @Override
        public void close() {
            if (closed) return;
            closed = true;
            if (log.isInfoEnabled()) { // once per (bdev, reactor) when its last queue stops
                log.info("bdev {}: channel closes after {} direct and {} buffered reads/writes, {} of them on fixed buffers ({} chunks registered, {} refused, {} redone unregistered), {} short transfers resubmitted, io_uring setup flags 0x{}, expected wait for a completion {} us ({} waits)",
                        bdevName, directIos, bufferedIos, fixedIos, fixed == null ? 0 : fixed.registrations, fixed == null ? 0 : fixed.refusals,
                        fixedFallbacks, resubmits, Integer.toHexString(ring.setupFlags()), waits.expectedNanos() / 1000, waits.samples());
            }
            // In-flight requests are abandoned (the contract); the kernel cancels or finishes
            // them while tearing the ring down, and pins the guest pages it still uses.
            ring.close();
            Fd.closeQuietly(eventFd);
            arena.close();
        }
    }
}
