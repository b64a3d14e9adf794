package io.jvhost.sys;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;

/**
 * An io_uring instance (Linux 5.1+; {@code io_uring_setup(2)}, {@code io_uring_enter(2)},
 * {@code io_uring_register(2)}) driven through raw system calls and its mmap'd rings, with no
 * liburing (whose helpers are inline C). Owned by one thread: every method is called on it.
 *
 * <pre>
 *  submission side                         completion side
 *  SQ ring (shared, mmap 0)                 CQ ring (shared; same mapping with SINGLE_MMAP)
 *  +------+------+------+-------+-------+   +------+------+------+----------------------+
 *  | head | tail | mask | ...   | array |   | head | tail | mask | cqes[n] (16 B each)  |
 *  +------+------+------+-------+-------+   +------+------+------+----------------------+
 *   kernel  us                    |           us     kernel
 *                                 v  array[i] = i (fixed identity map, set once)
 *  SQE array (mmap 0x10000000): sqes[n], 64 B each
 * </pre>
 *
 * <p><b>Memory ordering</b> (the kernel's io_uring.h contract): the SQE is written with plain
 * stores, then the SQ tail is published with a release store; the SQ head (the kernel's) is read
 * with an acquire load to know which slots are free again. On the completion side the CQ tail
 * (the kernel's) is read with an acquire load before the CQEs are read, and the CQ head is
 * published with a release store after they have been consumed, which gives the slots back.
 *
 * <p>The ring does not block: {@link #submit()} is {@code io_uring_enter(to_submit, 0, 0)} (one
 * call for every SQE prepared since the last one) and {@link #reap} reads the CQ from memory
 * without a system call. A registered eventfd ({@link #registerEventFd}) is signalled by the
 * kernel for each completion, so the owner can sleep in epoll with I/O in flight.
 */
public final class IoUring implements AutoCloseable {
    // io_uring_setup flags and features
    private static final int IORING_SETUP_CQSIZE = 1 << 3;
    private static final int IORING_SETUP_SUBMIT_ALL = 1 << 7;
    /** 5.19+: completions are not pushed to the task with an IPI; they wait until it enters the kernel. */
    public static final int IORING_SETUP_COOP_TASKRUN = 1 << 8;
    /** 5.19+, with COOP_TASKRUN: the kernel sets {@link #IORING_SQ_TASKRUN} in the SQ flags when completions wait for us. */
    public static final int IORING_SETUP_TASKRUN_FLAG = 1 << 9;
    /** 6.0+: only the creating thread submits. */
    public static final int IORING_SETUP_SINGLE_ISSUER = 1 << 12;
    /** 6.1+, with SINGLE_ISSUER: completion work runs only in io_uring_enter(GETEVENTS) of the issuer. */
    public static final int IORING_SETUP_DEFER_TASKRUN = 1 << 13;
    /** SQ ring flags word: completion work is pending, enter the kernel to have it posted. */
    private static final int IORING_SQ_TASKRUN = 1 << 2;
    private static final int IORING_FEAT_SINGLE_MMAP = 1;
    private static final int IORING_FEAT_NODROP = 1 << 1;
    // mmap offsets
    private static final long IORING_OFF_SQ_RING = 0L;
    private static final long IORING_OFF_CQ_RING = 0x8000000L;
    private static final long IORING_OFF_SQES = 0x10000000L;
    // io_uring_enter flags
    private static final int IORING_ENTER_GETEVENTS = 1;
    // io_uring_register opcodes
    private static final int IORING_REGISTER_FILES = 2;
    private static final int IORING_UNREGISTER_FILES = 3;
    private static final int IORING_REGISTER_EVENTFD = 4;
    private static final int IORING_REGISTER_BUFFERS = 0;
    private static final int IORING_UNREGISTER_BUFFERS = 1;
    private static final int IORING_REGISTER_BUFFERS2 = 15;
    private static final int IORING_REGISTER_BUFFERS_UPDATE = 16;
    private static final int IORING_RSRC_REGISTER_SPARSE = 1;

    /** Opcodes (enum io_uring_op). */
    public static final byte OP_NOP = 0, OP_READV = 1, OP_WRITEV = 2, OP_FSYNC = 3, OP_READ_FIXED = 4, OP_WRITE_FIXED = 5, OP_FALLOCATE = 17,
            OP_READ = 22, OP_WRITE = 23;
    /** SQE flag: {@code fd} is an index into the registered files. */
    public static final byte IOSQE_FIXED_FILE = 1;
    /** fsync_flags: fdatasync instead of fsync. */
    public static final int IORING_FSYNC_DATASYNC = 1;

    /*
     * struct io_uring_params (120 bytes): sq_entries 0, cq_entries 4, flags 8, sq_thread_cpu 12,
     * sq_thread_idle 16, features 20, wq_fd 24, resv[3] 28, sq_off 40 (io_sqring_offsets: head,
     * tail, ring_mask, ring_entries, flags, dropped, array, resv1: u32 each; user_addr u64),
     * cq_off 80 (io_cqring_offsets: head, tail, ring_mask, ring_entries, overflow, cqes, flags,
     * resv1: u32; user_addr u64).
     */
    private static final long P_SQ_ENTRIES = 0, P_CQ_ENTRIES = 4, P_FLAGS = 8, P_FEATURES = 20, P_SQ_OFF = 40, P_CQ_OFF = 80, PARAMS_SIZE = 120;

    /*
     * struct io_uring_sqe (64 bytes): opcode u8 @0, flags u8 @1, ioprio u16 @2, fd s32 @4,
     * off u64 @8, addr u64 @16, len u32 @24, op flags u32 @28 (rw_flags / fsync_flags),
     * user_data u64 @32, buf_index u16 @40, personality u16 @42, file_index s32 @44,
     * addr3 u64 @48, pad u64 @56.
     */
    public static final long SQE_SIZE = 64;
    private static final long SQE_OPCODE = 0, SQE_FLAGS = 1, SQE_IOPRIO = 2, SQE_FD = 4, SQE_OFF = 8, SQE_ADDR = 16, SQE_LEN = 24,
            SQE_OP_FLAGS = 28, SQE_USER_DATA = 32, SQE_BUF_INDEX = 40, SQE_PERSONALITY = 42, SQE_FILE_INDEX = 44, SQE_ADDR3 = 48, SQE_PAD = 56;
    /* struct io_uring_cqe (16 bytes): user_data u64 @0, res s32 @8, flags u32 @12. */
    private static final long CQE_SIZE = 16, CQE_USER_DATA = 0, CQE_RES = 8;

    private static final VarHandle INT = ValueLayout.JAVA_INT.varHandle();

    /** Receives completions from {@link #reap}. */
    public interface CompletionHandler {
        /** {@code res}: the operation's result (bytes, 0, or -errno). */
        void onCompletion(long userData, int res);
    }

    private final Arena arena = Arena.ofShared();
    private final MemorySegment capture = Native.newCapture(arena);
    private final int fd;
    private final Mmap sqMap;
    private final Mmap cqMap; // == sqMap with IORING_FEAT_SINGLE_MMAP
    private final Mmap sqeMap;
    private final MemorySegment sqRing, cqRing, sqes;
    private final long sqHeadOff, sqTailOff, sqFlagsOff, cqHeadOff, cqTailOff, cqesOff;
    /** The setup flags the kernel accepted. */
    private final int setupFlags;
    private final int sqEntries, sqMask, cqEntries, cqMask;
    private final boolean singleMmap;
    /** Our copy of the SQ tail (only we write it). */
    private int sqTail;
    /** Our copy of the CQ head (only we write it). */
    private int cqHead;
    private boolean closed;
    private boolean filesRegistered;
    private int buffersRegistered;

    private IoUring(int fd, MemorySegment p, int setupFlags) {
        this.fd = fd;
        this.setupFlags = setupFlags;
        sqEntries = p.get(ValueLayout.JAVA_INT, P_SQ_ENTRIES);
        cqEntries = p.get(ValueLayout.JAVA_INT, P_CQ_ENTRIES);
        int features = p.get(ValueLayout.JAVA_INT, P_FEATURES);
        singleMmap = (features & IORING_FEAT_SINGLE_MMAP) != 0;
        long so = P_SQ_OFF, co = P_CQ_OFF;
        long sqArrayOff = u32(p, so + 24);
        cqesOff = u32(p, co + 20);
        long sqSize = sqArrayOff + 4L * sqEntries;
        long cqSize = cqesOff + CQE_SIZE * cqEntries;
        Mmap sq = null, cq = null, se = null;
        try {
            if (singleMmap) {
                sq = Mmap.map(fd, IORING_OFF_SQ_RING, Math.max(sqSize, cqSize), true);
                cq = sq;
            } else {
                sq = Mmap.map(fd, IORING_OFF_SQ_RING, sqSize, true);
                cq = Mmap.map(fd, IORING_OFF_CQ_RING, cqSize, true);
            }
            se = Mmap.map(fd, IORING_OFF_SQES, SQE_SIZE * sqEntries, true);
        } catch (RuntimeException e) {
            if (se != null) se.close();
            if (cq != null && cq != sq) cq.close();
            if (sq != null) sq.close();
            throw e;
        }
        sqMap = sq;
        cqMap = cq;
        sqeMap = se;
        sqRing = sq.segment();
        cqRing = cq.segment();
        sqes = se.segment();
        sqHeadOff = u32(p, so);
        sqTailOff = u32(p, so + 4);
        sqFlagsOff = u32(p, so + 16);
        sqMask = sqRing.get(ValueLayout.JAVA_INT, u32(p, so + 8));
        cqHeadOff = u32(p, co);
        cqTailOff = u32(p, co + 4);
        cqMask = cqRing.get(ValueLayout.JAVA_INT, u32(p, co + 8));
        sqTail = (int) INT.getAcquire(sqRing, sqTailOff);
        cqHead = (int) INT.getAcquire(cqRing, cqHeadOff);
        // The indirection array maps SQ slot i to SQE i, once and for all (as liburing does).
        for (int i = 0; i < sqEntries; i++) sqRing.set(ValueLayout.JAVA_INT, sqArrayOff + 4L * i, i);
    }

    private static long u32(MemorySegment p, long off) {
        return Integer.toUnsignedLong(p.get(ValueLayout.JAVA_INT, off));
    }

    /**
     * Sets up a ring of {@code sqEntries} submission entries (a power of two is used as is; the
     * kernel rounds up otherwise) and {@code cqEntries} completion entries (at least as many).
     * Throws {@link NativeException} with the kernel's errno: ENOSYS (no io_uring in this
     * kernel), EPERM (forbidden: {@code kernel.io_uring_disabled}, seccomp), ENOMEM (locked
     * memory limit), EINVAL (bad sizes).
     */
    public static IoUring create(int sqEntries, int cqEntries) {
        return create(sqEntries, cqEntries, DEFAULT_TASKRUN);
    }

    /**
     * How completions reach a polling owner by default: {@link #IORING_SETUP_COOP_TASKRUN} with
     * {@link #IORING_SETUP_TASKRUN_FLAG} (the owner enters the kernel when {@link #taskRunPending}
     * says so, instead of the kernel interrupting it with an IPI for every completion); the
     * property {@code jvhost.uring.taskrun} = {@code ipi} (no flag), {@code coop} (the default) or
     * {@code defer} (+ SINGLE_ISSUER and DEFER_TASKRUN: the ring may then be entered only by the
     * thread that created it) picks another, for measurements.
     */
    public static final int DEFAULT_TASKRUN = switch (System.getProperty("jvhost.uring.taskrun", "coop")) {
        case "ipi" -> 0;
        case "defer" -> IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_TASKRUN_FLAG;
        default -> IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG;
    };

    /**
     * As {@link #create(int, int)}, asking for the optional setup flags {@code taskRunFlags}
     * (COOP_TASKRUN, TASKRUN_FLAG, SINGLE_ISSUER, DEFER_TASKRUN): a kernel that refuses them
     * (EINVAL: older than 5.19 / 6.1) gets a ring without them, which works the same, only with
     * the kernel's default completion delivery. {@link #setupFlags()} says what was accepted.
     */
    public static IoUring create(int sqEntries, int cqEntries, int taskRunFlags) {
        if (sqEntries < 1 || cqEntries < sqEntries) throw new IllegalArgumentException("sq " + sqEntries + ", cq " + cqEntries);
        try (Arena a = Arena.ofConfined()) {
            MemorySegment capture = Native.newCapture(a);
            MemorySegment p = a.allocate(PARAMS_SIZE, 8);
            // From the most to the least we want; SUBMIT_ALL is 5.18+ (without it a failing SQE
            // stops the batch, which we handle too).
            int[] tries = {IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL | taskRunFlags, IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL,
                    IORING_SETUP_CQSIZE};
            long r = -1;
            int flags = 0;
            for (int t : tries) {
                p.fill((byte) 0);
                flags = t;
                r = setup(capture, sqEntries, cqEntries, flags, p);
                if (r >= 0 || Native.errno(capture) != Errno.EINVAL) break;
            }
            if (r < 0) {
                int e = Native.errno(capture);
                throw new NativeException("io_uring_setup(" + sqEntries + " entries)", e);
            }
            int fd = (int) r;
            try {
                if ((p.get(ValueLayout.JAVA_INT, P_FEATURES) & IORING_FEAT_NODROP) == 0) {
                    // Pre-5.5 kernels drop CQEs on overflow; our in-flight limit keeps the CQ from
                    // overflowing, so this is only worth knowing.
                    org.slf4j.LoggerFactory.getLogger(IoUring.class).debug("io_uring: kernel lacks IORING_FEAT_NODROP");
                }
                return new IoUring(fd, p, flags);
            } catch (RuntimeException e) {
                Fd.closeQuietly(fd);
                throw e;
            }
        }
    }

    private static long setup(MemorySegment capture, int sq, int cq, int flags, MemorySegment p) {
        p.set(ValueLayout.JAVA_INT, P_FLAGS, flags);
        p.set(ValueLayout.JAVA_INT, P_CQ_ENTRIES, cq);
        try {
            return (long) Native.SYSCALL_SETUP.invokeExact(capture, Native.SYS_IO_URING_SETUP, (long) sq, p);
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    private static volatile String probe;

    /**
     * Null when io_uring works here (a small ring could be set up), otherwise why not, e.g.
     * "io_uring_setup: Operation not permitted (EPERM)". Probed once per process.
     */
    public static String unavailableReason() {
        String p = probe;
        if (p == null) {
            try (IoUring r = create(2, 4)) {
                p = "";
            } catch (NativeException e) {
                p = e.getMessage();
            } catch (RuntimeException | LinkageError e) {
                p = e.toString();
            }
            probe = p;
        }
        return p.isEmpty() ? null : p;
    }

    public int fd() { return fd; }
    /** The setup flags this kernel accepted (IORING_SETUP_*). */
    public int setupFlags() { return setupFlags; }
    public int sqEntries() { return sqEntries; }
    public int cqEntries() { return cqEntries; }

    /** SQ slots free for {@link #prepare} (owner thread). */
    public int sqSpace() {
        int head = (int) INT.getAcquire(sqRing, sqHeadOff); // acquire: the kernel has read those SQEs
        return sqEntries - (sqTail - head);
    }

    /** Entries prepared and not yet taken by the kernel (submitted by the next {@link #submit}). */
    public int unsubmitted() {
        return sqTail - (int) INT.getAcquire(sqRing, sqHeadOff);
    }

    /**
     * Writes one SQE and publishes it (not yet submitted: {@link #submit} does that for all
     * pending). Returns false when the SQ is full. {@code fd} is a registered file index when
     * {@code flags} has {@link #IOSQE_FIXED_FILE}. Field use per opcode (as the kernel reads
     * them): READV/WRITEV: addr = iovec array, len = iovec count, off = file offset; FSYNC:
     * opFlags = fsync flags; FALLOCATE: off = offset, addr = length, len = mode.
     */
    public boolean prepare(byte opcode, byte flags, int fd, long off, long addr, int len, int opFlags, long userData) {
        return prepare(opcode, flags, fd, off, addr, len, opFlags, userData, 0);
    }

    /**
     * As above with {@code bufIndex}, the registered buffer a READ_FIXED/WRITE_FIXED reads into
     * or writes from ({@code addr..addr+len} must lie inside it, else the kernel fails it with
     * EFAULT).
     */
    public boolean prepare(byte opcode, byte flags, int fd, long off, long addr, int len, int opFlags, long userData, int bufIndex) {
        int head = (int) INT.getAcquire(sqRing, sqHeadOff); // acquire: pairs with the kernel's release of the SQ head
        if (sqTail - head >= sqEntries) return false;
        long e = SQE_SIZE * (sqTail & sqMask);
        MemorySegment s = sqes;
        s.set(ValueLayout.JAVA_BYTE, e + SQE_OPCODE, opcode);
        s.set(ValueLayout.JAVA_BYTE, e + SQE_FLAGS, flags);
        s.set(ValueLayout.JAVA_SHORT, e + SQE_IOPRIO, (short) 0);
        s.set(ValueLayout.JAVA_INT, e + SQE_FD, fd);
        s.set(ValueLayout.JAVA_LONG, e + SQE_OFF, off);
        s.set(ValueLayout.JAVA_LONG, e + SQE_ADDR, addr);
        s.set(ValueLayout.JAVA_INT, e + SQE_LEN, len);
        s.set(ValueLayout.JAVA_INT, e + SQE_OP_FLAGS, opFlags);
        s.set(ValueLayout.JAVA_LONG, e + SQE_USER_DATA, userData);
        s.set(ValueLayout.JAVA_SHORT, e + SQE_BUF_INDEX, (short) bufIndex);
        s.set(ValueLayout.JAVA_SHORT, e + SQE_PERSONALITY, (short) 0);
        s.set(ValueLayout.JAVA_INT, e + SQE_FILE_INDEX, 0);
        s.set(ValueLayout.JAVA_LONG, e + SQE_ADDR3, 0L);
        s.set(ValueLayout.JAVA_LONG, e + SQE_PAD, 0L);
        sqTail++;
        INT.setRelease(sqRing, sqTailOff, sqTail); // release: the SQE's plain stores before the tail the kernel reads
        return true;
    }

    /**
     * {@code io_uring_enter(to_submit = pending, 0, 0)}: hands the kernel every SQE prepared
     * since the last call, without waiting. Returns how many it took, 0 when nothing was pending
     * (no system call), or -errno (EAGAIN/EBUSY/EINTR: try again on a later poll).
     */
    public int submit() {
        int pending = unsubmitted();
        if (pending == 0) return 0;
        return enter(pending, 0, (setupFlags & IORING_SETUP_DEFER_TASKRUN) != 0 ? IORING_ENTER_GETEVENTS : 0);
    }

    /**
     * True when the kernel holds completions that appear in the CQ only once we enter it (rings
     * set up with {@link #IORING_SETUP_TASKRUN_FLAG}; a plain memory read, no system call).
     */
    public boolean taskRunPending() {
        return (setupFlags & IORING_SETUP_TASKRUN_FLAG) != 0 && ((int) INT.getAcquire(sqRing, sqFlagsOff) & IORING_SQ_TASKRUN) != 0;
    }

    /**
     * Submits what is pending and has the kernel post the completions it holds back
     * ({@code io_uring_enter(pending, 0, GETEVENTS)}: returns without waiting). Returns as
     * {@link #submit}.
     */
    public int submitAndFlush() {
        return enter(unsubmitted(), 0, IORING_ENTER_GETEVENTS);
    }

    /** Submits what is pending and waits for at least {@code minComplete} completions (tests, teardown). */
    public int submitAndWait(int minComplete) {
        return enter(unsubmitted(), minComplete, IORING_ENTER_GETEVENTS);
    }

    private int enter(int toSubmit, int minComplete, int flags) {
        long r;
        try {
            r = (long) Native.SYSCALL_ENTER.invokeExact(capture, Native.SYS_IO_URING_ENTER, (long) fd, (long) toSubmit, (long) minComplete,
                    (long) flags, 0L, 0L);
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
        return r < 0 ? -Native.errno(capture) : (int) r;
    }

    /** Completions waiting in the CQ. */
    public int ready() {
        return (int) INT.getAcquire(cqRing, cqTailOff) - cqHead;
    }

    /**
     * Hands up to {@code max} completions to {@code h} (no system call) and gives their CQ slots
     * back. The handler may prepare new SQEs. Returns how many were reaped.
     */
    public int reap(CompletionHandler h, int max) {
        int tail = (int) INT.getAcquire(cqRing, cqTailOff); // acquire: the CQEs before the tail are complete
        int n = 0;
        MemorySegment ring = cqRing;
        while (cqHead != tail && n < max) {
            long e = cqesOff + CQE_SIZE * (cqHead & cqMask);
            long userData = ring.get(ValueLayout.JAVA_LONG, e + CQE_USER_DATA);
            int res = ring.get(ValueLayout.JAVA_INT, e + CQE_RES);
            cqHead++;
            // release per entry: the slot is ours no more once read, and the handler may take long
            INT.setRelease(ring, cqHeadOff, cqHead);
            n++;
            h.onCompletion(userData, res);
        }
        return n;
    }

    /** Registers {@code fds} as fixed files 0..n-1 (control path). */
    public void registerFiles(int... fds) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment arr = a.allocate(ValueLayout.JAVA_INT, fds.length);
            for (int i = 0; i < fds.length; i++) arr.setAtIndex(ValueLayout.JAVA_INT, i, fds[i]);
            register(IORING_REGISTER_FILES, arr, fds.length, "IORING_REGISTER_FILES");
            filesRegistered = true;
        }
    }

    /**
     * Registers {@code n} buffers (fixed buffers 0..n-1 for READ_FIXED/WRITE_FIXED) from
     * {@code iovecs}, an array of {@code struct iovec} (control path). The kernel pins the pages
     * (and charges them to RLIMIT_MEMLOCK unless the process has CAP_IPC_LOCK): ENOMEM or EFAULT
     * when it cannot, EOPNOTSUPP for memory it cannot pin (e.g. some shared mappings), EBUSY when
     * buffers are registered already. Throws {@link NativeException} with that errno.
     */
    public void registerBuffers(MemorySegment iovecs, int n) {
        register(IORING_REGISTER_BUFFERS, iovecs, n, "IORING_REGISTER_BUFFERS");
        buffersRegistered = n;
    }

    /**
     * Registers an empty (sparse) table of {@code n} fixed buffers, filled slot by slot with
     * {@link #updateBuffer} (5.19+: IORING_REGISTER_BUFFERS2 with IORING_RSRC_REGISTER_SPARSE;
     * EINVAL on older kernels). Control path.
     */
    public void registerSparseBuffers(int n) {
        try (Arena a = Arena.ofConfined()) {
            // struct io_uring_rsrc_register { u32 nr; u32 flags; u64 resv2; u64 data; u64 tags; }
            MemorySegment rr = a.allocate(32, 8);
            rr.set(ValueLayout.JAVA_INT, 0, n);
            rr.set(ValueLayout.JAVA_INT, 4, IORING_RSRC_REGISTER_SPARSE);
            register(IORING_REGISTER_BUFFERS2, rr, 32, "IORING_REGISTER_BUFFERS2");
            buffersRegistered = n;
        }
    }

    /**
     * Puts {@code addr..addr+len} into fixed buffer slot {@code index} of a table from
     * {@link #registerSparseBuffers} ({@code addr} 0 and {@code len} 0 empty the slot), dropping
     * what the slot held: requests the kernel has already taken keep their old buffer until they
     * complete, SQEs not yet submitted see the new one. The kernel pins the pages now (a system
     * call that grows with {@code len}). {@code scratch}: 48 bytes, 8-aligned, for the argument
     * (so the caller allocates nothing). Throws {@link NativeException}: ENOMEM (RLIMIT_MEMLOCK),
     * EFAULT or EOPNOTSUPP (memory that cannot be pinned for long, e.g. a file mapping on a disk
     * file system).
     */
    public void updateBuffer(int index, long addr, long len, MemorySegment scratch) {
        // struct iovec at 32; struct io_uring_rsrc_update2 { u32 offset; u32 resv; u64 data; u64 tags; u32 nr; u32 resv2; } at 0
        scratch.set(ValueLayout.JAVA_LONG, 32, addr);
        scratch.set(ValueLayout.JAVA_LONG, 40, len);
        scratch.set(ValueLayout.JAVA_INT, 0, index);
        scratch.set(ValueLayout.JAVA_INT, 4, 0);
        scratch.set(ValueLayout.JAVA_LONG, 8, scratch.address() + 32);
        scratch.set(ValueLayout.JAVA_LONG, 16, 0L);
        scratch.set(ValueLayout.JAVA_INT, 24, 1);
        scratch.set(ValueLayout.JAVA_INT, 28, 0);
        register(IORING_REGISTER_BUFFERS_UPDATE, scratch, 32, "IORING_REGISTER_BUFFERS_UPDATE");
    }

    /** Drops the fixed buffers (control path; requests using them must have completed). No-op when none. */
    public void unregisterBuffers() {
        if (buffersRegistered == 0) return;
        buffersRegistered = 0;
        register(IORING_UNREGISTER_BUFFERS, MemorySegment.NULL, 0, "IORING_UNREGISTER_BUFFERS");
    }

    /** How many fixed buffers are registered. */
    public int registeredBuffers() {
        return buffersRegistered;
    }

    /** Has the kernel signal {@code eventFd} for every completion posted (control path). */
    public void registerEventFd(int eventFd) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment arr = a.allocate(ValueLayout.JAVA_INT);
            arr.set(ValueLayout.JAVA_INT, 0, eventFd);
            register(IORING_REGISTER_EVENTFD, arr, 1, "IORING_REGISTER_EVENTFD");
        }
    }

    private void register(int opcode, MemorySegment arg, int n, String what) {
        long r;
        try {
            r = (long) Native.SYSCALL_REGISTER.invokeExact(capture, Native.SYS_IO_URING_REGISTER, (long) fd, (long) opcode, arg, (long) n);
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
        if (r < 0) throw new NativeException("io_uring_register(" + what + ")", Native.errno(capture));
    }

    /**
     * Unmaps the rings and closes the ring fd. Requests still in flight are cancelled by the
     * kernel (their buffers must stay valid until then: close only after draining, or when the
     * buffers outlive the ring's teardown, as guest memory does).
     */
    @Override
    public void close() {
        if (closed) return;
        closed = true;
        if (filesRegistered) {
            // Drop the ring's references to the files now: the ring itself is torn down
            // asynchronously by the kernel, and until then a file system holding them stays busy
            // (an operator's umount right after bdev_uring_delete would fail).
            try {
                register(IORING_UNREGISTER_FILES, MemorySegment.NULL, 0, "IORING_UNREGISTER_FILES");
            } catch (NativeException e) {
                // in flight on them, or already gone: the teardown drops them later
            }
        }
        sqeMap.close();
        if (cqMap != sqMap) cqMap.close();
        sqMap.close();
        Fd.closeQuietly(fd);
        arena.close();
    }
}
