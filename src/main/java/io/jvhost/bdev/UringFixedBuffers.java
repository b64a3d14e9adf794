package io.jvhost.bdev;

import io.jvhost.sys.Errno;
import io.jvhost.sys.IoUring;
import io.jvhost.sys.NativeException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * The fixed buffers of one io_uring channel: guest memory registered with the ring, so that a
 * READ_FIXED/WRITE_FIXED skips the kernel's per-request page pinning (get_user_pages on every
 * page of the transfer, then unpinning; on these VMs fio's 128 KiB reads gain 1.3-1.7x from
 * {@code --fixedbufs}). Reactor thread only.
 *
 * <p><b>What is registered.</b> Not whole guest regions up front (a 4 GiB guest would have all
 * its RAM faulted in and pinned at once, on the reactor, and the kernel takes at most 1 GiB per
 * buffer) but 4 MiB chunks, the first time a request's buffer lies in one: the table is a sparse
 * buffer table of {@link #SLOTS} slots (IORING_REGISTER_BUFFERS2), and a chunk goes into slot
 * {@code (address / 4 MiB) mod SLOTS} with IORING_REGISTER_BUFFERS_UPDATE (pinning at most
 * 1024 pages, once). Contiguous memory maps to consecutive slots, so 4 GiB of guest memory
 * fits without collisions. A slot belongs to the first segment registered there as long as that
 * segment's memory lives: a second one that maps to it (two regions sharing a 4 MiB chunk, or
 * memory 4 GiB away) goes unregistered rather than having both re-register in turn; a slot
 * whose memory is gone (its arena closed) is taken over (the kernel keeps the old buffer for
 * requests it has already taken).
 *
 * <p><b>Identity, not address.</b> A slot remembers the {@link MemorySegment} it was registered
 * for and is used only for buffers of that very segment object: guest regions that are
 * unmapped and mapped again (a new memory table) come as new segments even at the same address,
 * so a stale registration (pinning the old pages) is never used for them; it is replaced when
 * a live segment needs the slot. Until then the ring keeps those old pages pinned (at most the
 * table's 4 GiB; all of it freed with the channel).
 *
 * <p><b>When registration fails</b> for a chunk (memory the kernel cannot pin for long, e.g. a
 * file mapping on a disk file system: EOPNOTSUPP/EFAULT) the slot remembers the failure and
 * requests there go the ordinary way. ENOMEM (RLIMIT_MEMLOCK without CAP_IPC_LOCK) or a kernel
 * without sparse tables (EINVAL, before 5.19) turns fixed buffers off for the channel, with
 * one log line.
 */
final class UringFixedBuffers {
    private static final Logger log = LoggerFactory.getLogger(UringFixedBuffers.class);
    static final int CHUNK_SHIFT = 22;
    static final long CHUNK = 1L << CHUNK_SHIFT;
    static final int SLOTS = 1024;

    private final IoUring ring;
    private final String bdevName;
    private final MemorySegment[] owner = new MemorySegment[SLOTS];
    private final long[] base = new long[SLOTS];
    private final boolean[] failed = new boolean[SLOTS];
    private final MemorySegment scratch;
    private boolean off;
    /** Chunks registered, registrations refused (owner thread; tests and diagnostics). */
    long registrations, refusals;

    private UringFixedBuffers(IoUring ring, String bdevName, Arena arena) {
        this.ring = ring;
        this.bdevName = bdevName;
        this.scratch = arena.allocate(48, 8);
    }

    /** The table for {@code ring}, or null (logged) when this kernel or process cannot have one. */
    static UringFixedBuffers create(IoUring ring, String bdevName, Arena arena) {
        try {
            ring.registerSparseBuffers(SLOTS);
            return new UringFixedBuffers(ring, bdevName, arena);
        } catch (NativeException e) {
            log.info("bdev {}: io_uring fixed buffers not used ({})", bdevName, e.getMessage());
            return null;
        }
    }

    /**
     * The slot to use for a transfer of {@code len} bytes at absolute address {@code addr} inside
     * {@code seg}, registering its chunk first if needed; -1 when it must go without (it spans
     * two chunks, or its chunk could not be registered). Allocation-free; a system call only the
     * first time a chunk is seen.
     */
    int slotFor(MemorySegment seg, long addr, long len) {
        long chunk = addr & -CHUNK;
        long start = Math.max(seg.address(), chunk);
        long end = Math.min(seg.address() + seg.byteSize(), chunk + CHUNK);
        if (addr < start || addr + len > end || len <= 0) return -1;
        int s = (int) ((addr >>> CHUNK_SHIFT) & (SLOTS - 1));
        MemorySegment o = owner[s];
        if (o == seg && base[s] == start) return failed[s] ? -1 : s;
        // Someone else's chunk (another segment sharing this 4 MiB, or one 4 GiB away): it
        // keeps the slot while its memory lives, rather than both re-registering in turn.
        if (off || o != null && o.scope().isAlive()) return -1;
        return register(s, seg, start, end - start);
    }

    private int register(int s, MemorySegment seg, long start, long len) {
        // SQEs prepared but not yet submitted may name this slot's old buffer: hand them to the
        // kernel first, which resolves them against the table as it is now.
        ring.submit();
        if (ring.unsubmitted() > 0) return -1; // the kernel is busy; try again next time
        owner[s] = seg;
        base[s] = start;
        try {
            ring.updateBuffer(s, start, len, scratch);
            failed[s] = false;
            registrations++;
            return s;
        } catch (NativeException e) {
            failed[s] = true;
            refusals++;
            if (e.errno() == Errno.ENOMEM || e.errno() == Errno.EINVAL) {
                off = true;
                log.warn("bdev {}: io_uring fixed buffers turned off for this channel ({})", bdevName, e.getMessage());
            } else if (Long.bitCount(refusals) == 1) {
                log.info("bdev {}: guest memory at 0x{} not registrable with io_uring ({}); such requests go unregistered ({} so far)",
                        bdevName, Long.toHexString(start), e.getMessage(), refusals);
            }
            return -1;
        }
    }

    /** False once registration was turned off (tests). */
    boolean on() {
        return !off;
    }

    /** Tests: what a failed registration does, without needing a kernel that refuses. */
    void turnOffForTest() {
        off = true;
    }
}
