package io.jvhost.scsi;

import io.jvhost.bdev.BlockChannel;
import io.jvhost.bdev.BlockRequest;

import java.lang.foreign.Arena;
import io.jvhost.memory.SgList;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;

/**
 * One SCSI command, reusable: the transport preallocates one per virtqueue slot, sets its
 * {@link #completion(Completion) completion} once, and for each request calls {@link #reset()},
 * fills in the CDB, LUN, tag, direction and data buffers, and hands it to
 * {@link ScsiTarget#execute} (or {@link ScsiLun#execute}). Exactly one
 * {@link Completion#onTaskComplete} follows, either before {@code execute} returns (commands
 * answered without block I/O, and all errors) or later from the {@link BlockChannel#poll()} of
 * the channel passed to {@code execute}, on the same thread.
 *
 * <p>The data buffers are a scatter-gather list of (segment, offset, length) triples over guest
 * memory, all of one {@link Direction}. The layer writes only into FROM_DEVICE buffers and only
 * inside the given triples, and reads only TO_DEVICE buffers. READ/WRITE allocate nothing: the
 * task carries a pooled {@link BlockRequest} with the same segment capacity, a scratch byte array
 * for emulated commands, and (allocated lazily on first use, then kept) a native buffer for
 * COMPARE AND WRITE, VERIFY with BYTCHK and WRITE SAME with a non-zero pattern.
 *
 * <p>Not thread-safe: a task belongs to the reactor thread that executes it.
 */
public final class ScsiTask {
    /** Data transfer direction, from the initiator's point of view of the device. */
    public enum Direction {
        /** No data buffers. */
        NONE,
        /** Data-in: the device writes the buffers (READ, INQUIRY...). */
        FROM_DEVICE,
        /** Data-out: the device reads the buffers (WRITE, UNMAP parameter list...). */
        TO_DEVICE
    }

    /** Receives the single completion of an executed task. */
    @FunctionalInterface
    public interface Completion {
        void onTaskComplete(ScsiTask task);
    }

    /** Largest CDB kept; longer input is truncated (virtio-scsi's default cdb_size is 32). */
    public static final int MAX_CDB_LENGTH = 32;
    /** Scratch for emulated commands: the largest is an UNMAP list of 256 descriptors. */
    static final int SCRATCH_BYTES = 8 + 16 * ScsiLun.MAX_UNMAP_DESCRIPTORS;
    /** Native bounce buffer for compare and pattern operations; holds at least one block. */
    static final int BOUNCE_BYTES = 64 * 1024;

    // Execution phases
    static final int FREE = 0;     // not executing: the transport may fill and execute it
    static final int SYNC = 1;     // inside execute or a completion step, no block I/O pending
    static final int IO = 2;       // one block request submitted, its completion pending

    // ---- filled by the transport
    final byte[] cdb = new byte[MAX_CDB_LENGTH];
    int cdbLength;
    int lun;
    long tag;
    Direction direction = Direction.NONE;
    long expectedLength = -1;
    /** The data buffers (data-in or data-out, per {@link #direction}). */
    private final SgList buffers;
    private Completion completion;
    private Object attachment;

    // ---- results
    int status;
    final byte[] sense = new byte[ScsiSense.FIXED_LENGTH];
    int senseLength;
    long transferred;
    long residual;
    boolean targetUnavailable;

    // ---- execution state (owned by the executing ScsiLun, reactor thread only)
    int phase = FREE;
    ScsiLun owner;
    BlockChannel channel;
    final BlockRequest request;
    final byte[] scratch = new byte[SCRATCH_BYTES];
    private MemorySegment bounce;
    boolean aborted;
    long seq;
    ScsiTask prev, next;          // LUN's in-flight list
    ScsiTask waitNext;            // LUN's list of tasks waiting for the channel to take them
    int lane;                     // which lane of the LUN (see lane(int))
    int kind;                     // which multi-step command (ScsiLun.K_*)
    long lba;                     // cursor for multi-step commands
    long remaining;               // blocks left
    long dataOffset;              // offset into the data buffers
    long ioBytes;                 // bytes of the current block request
    int index, limit;             // UNMAP descriptor cursor
    int flags;                    // per-command bits (FUA, BYTCHK...)

    /** @param maxSegments most scatter-gather entries per request (the virtqueue's seg_max) */
    public ScsiTask(int maxSegments) {
        if (maxSegments < 1) throw new IllegalArgumentException("maxSegments must be positive");
        this.maxSegments = maxSegments;
        buffers = new SgList(maxSegments);
        request = new BlockRequest(maxSegments);
        request.completion(this::onBlockComplete);
    }

    /** Sets the completion callback, once per task (not per request). */
    public ScsiTask completion(Completion c) {
        this.completion = c;
        return this;
    }

    /**
     * The lane (reactor) this task runs on, kept across {@link #reset()}: the LUN keeps its
     * in-flight list, retry list and pending task management per lane, so several reactors can
     * execute tasks on one LUN, each touching only its own lane. 0 unless the transport spreads
     * its queues; must be below the target's {@link ScsiTarget#lanes()}.
     */
    public ScsiTask lane(int lane) {
        checkFree();
        if (lane < 0) throw new IllegalArgumentException("lane must be >= 0");
        this.lane = lane;
        return this;
    }

    public int lane() {
        return lane;
    }

    /** An object of the transport's (e.g. its slot), kept across {@link #reset()}. */
    public ScsiTask attachment(Object o) {
        this.attachment = o;
        return this;
    }

    public Object attachment() {
        return attachment;
    }

    /** Clears the request and the results, dropping buffer references; call before refilling. */
    public ScsiTask reset() {
        checkFree();
        Arrays.fill(cdb, (byte) 0);
        cdbLength = 0;
        lun = 0;
        tag = 0;
        direction = Direction.NONE;
        expectedLength = -1;
        buffers.clear();
        clearResults();
        return this;
    }

    /** Copies the CDB (at most {@link #MAX_CDB_LENGTH} bytes) out of guest memory. */
    public ScsiTask cdb(MemorySegment src, long offset, int length) {
        checkFree();
        int n = Math.max(0, Math.min(length, MAX_CDB_LENGTH));
        Arrays.fill(cdb, (byte) 0);
        MemorySegment.copy(src, ValueLayout.JAVA_BYTE, offset, cdb, 0, n);
        cdbLength = n;
        return this;
    }

    public ScsiTask cdb(byte[] src, int offset, int length) {
        checkFree();
        int n = Math.max(0, Math.min(length, MAX_CDB_LENGTH));
        Arrays.fill(cdb, (byte) 0);
        System.arraycopy(src, offset, cdb, 0, n);
        cdbLength = n;
        return this;
    }

    public ScsiTask cdb(byte... bytes) {
        return cdb(bytes, 0, bytes.length);
    }

    /** Logical unit number, already decoded from the transport's LUN field. */
    public ScsiTask lun(int lun) {
        this.lun = lun;
        return this;
    }

    /** Task tag (virtio-scsi: the request id), used by ABORT TASK and QUERY TASK. */
    public ScsiTask tag(long tag) {
        this.tag = tag;
        return this;
    }

    public ScsiTask direction(Direction d) {
        this.direction = d == null ? Direction.NONE : d;
        return this;
    }

    /**
     * The transport's expected data transfer length; by default the sum of the buffer lengths.
     * The device moves at most min(this, buffers) bytes; the residual is computed against it.
     */
    public ScsiTask expectedTransferLength(long bytes) {
        this.expectedLength = bytes;
        return this;
    }

    /**
     * Appends a data buffer. Returns false, adding nothing, when the list is full or the triple
     * does not lie inside the segment (the transport should then fail the request).
     */
    public boolean addBuffer(MemorySegment seg, long offset, long length) {
        if (seg == null || offset < 0 || length < 0 || offset > seg.byteSize() - length) return false;
        if (length == 0) return buffers.count() < buffers.max();
        return buffers.add(seg, offset, length);
    }

    private final int maxSegments;

    public int bufferCount() {
        return buffers.count();
    }

    public int maxBuffers() {
        return maxSegments;
    }

    /** Sum of the buffer lengths. */
    public long bufferBytes() {
        return buffers.bytes();
    }

    public byte[] cdbBytes() {
        return cdb;
    }

    public int cdbLength() {
        return cdbLength;
    }

    public int lun() {
        return lun;
    }

    public long tag() {
        return tag;
    }

    public Direction direction() {
        return direction;
    }

    // ---- results, valid in the completion callback

    /** SAM status, {@link ScsiStatus}. */
    public int status() {
        return status;
    }

    /** Sense data (fixed format); valid up to {@link #senseLength()}. Do not modify. */
    public byte[] senseBuffer() {
        return sense;
    }

    /** 18 with CHECK CONDITION, else 0. */
    public int senseLength() {
        return senseLength;
    }

    public int senseKey() {
        return senseLength == 0 ? ScsiSense.NO_SENSE : sense[ScsiSense.OFF_SENSE_KEY] & 0x0F;
    }

    /** {@code (ASC << 8) | ASCQ}, or 0 without sense data. */
    public int ascAscq() {
        return senseLength == 0 ? 0 : (sense[ScsiSense.OFF_ASC] & 0xFF) << 8 | (sense[ScsiSense.OFF_ASCQ] & 0xFF);
    }

    /** Copies the sense data into guest memory; returns the bytes copied. */
    public int copySense(MemorySegment dst, long offset, int max) {
        int n = Math.max(0, Math.min(senseLength, max));
        MemorySegment.copy(sense, 0, dst, ValueLayout.JAVA_BYTE, offset, n);
        return n;
    }

    /** Bytes moved to or from the data buffers. */
    public long dataTransferred() {
        return transferred;
    }

    /** Expected transfer length minus {@link #dataTransferred()}. */
    public long residual() {
        return residual;
    }

    /**
     * True when the task was refused because its target is being removed or is gone (status is
     * CHECK CONDITION, ILLEGAL REQUEST, LOGICAL UNIT NOT SUPPORTED); a virtio-scsi transport
     * reports VIRTIO_SCSI_S_BAD_TARGET instead.
     */
    public boolean targetUnavailable() {
        return targetUnavailable;
    }

    /** True while executing (between execute and the completion callback). */
    public boolean busy() {
        return phase != FREE;
    }

    // ---- package-private machinery

    private void checkFree() {
        if (phase != FREE) throw new IllegalStateException("task is executing");
    }

    void clearResults() {
        status = ScsiStatus.GOOD;
        senseLength = 0;
        transferred = 0;
        residual = 0;
        targetUnavailable = false;
        aborted = false;
    }

    /** Starts an execution; throws only on transport bugs (task reused while busy, no callback). */
    void begin(ScsiLun lun, BlockChannel ch) {
        if (phase != FREE) throw new IllegalStateException("task is already executing");
        if (completion == null) throw new IllegalStateException("task has no completion callback");
        clearResults();
        owner = lun;
        channel = ch;
        phase = SYNC;
    }

    void checkCondition(int key, int ascAscq) {
        status = ScsiStatus.CHECK_CONDITION;
        ScsiSense.fill(sense, key, ascAscq, true, -1, -1);
        senseLength = ScsiSense.FIXED_LENGTH;
    }

    void checkCondition(int key, int ascAscq, boolean inCdb, int fieldByte, int fieldBit) {
        status = ScsiStatus.CHECK_CONDITION;
        ScsiSense.fill(sense, key, ascAscq, inCdb, fieldByte, fieldBit);
        senseLength = ScsiSense.FIXED_LENGTH;
    }

    /** Final bookkeeping and the callback; the task is FREE (reusable) inside the callback. */
    void finish() {
        if (aborted) {
            status = ScsiStatus.TASK_ABORTED;
            senseLength = 0;
        }
        if (status != ScsiStatus.GOOD) transferred = 0;
        long expected = expectedLength >= 0 ? expectedLength : buffers.bytes();
        residual = Math.max(0, expected - transferred);
        request.clearBuffers();
        owner = null;
        channel = null;
        phase = FREE;
        completion.onTaskComplete(this);
    }

    private void onBlockComplete(BlockRequest r, int st) {
        ScsiLun l = owner;
        if (phase != IO || l == null) return; // cannot happen with a well-behaved channel
        l.blockComplete(this, st);
    }

    /** Bytes of data-in the device may write: min(expected, buffers), 0 unless FROM_DEVICE. */
    long capacityIn() {
        return direction == Direction.FROM_DEVICE ? capacity() : 0;
    }

    /** Bytes of data-out the device may read: min(expected, buffers), 0 unless TO_DEVICE. */
    long capacityOut() {
        return direction == Direction.TO_DEVICE ? capacity() : 0;
    }

    private long capacity() {
        return expectedLength >= 0 ? Math.min(expectedLength, buffers.bytes()) : buffers.bytes();
    }

    /**
     * Scatters {@code src[0..len)} into the data-in buffers, at most {@link #capacityIn()}
     * bytes; returns the bytes copied and counts them as transferred.
     */
    int copyToDataIn(byte[] src, int len) {
        long n = Math.min(len, capacityIn());
        int done = 0;
        for (int i = 0, count = buffers.count(); i < count && done < n; i++) {
            int chunk = (int) Math.min(buffers.length(i), n - done);
            MemorySegment.copy(src, done, buffers.segment(i), ValueLayout.JAVA_BYTE, buffers.offset(i), chunk);
            done += chunk;
        }
        transferred = done;
        return done;
    }

    /** Gathers data-out bytes {@code [skip, skip+len)} into {@code dst[0..)}; returns bytes copied. */
    int copyFromDataOut(long skip, byte[] dst, int len) {
        long cap = capacityOut();
        if (skip >= cap) return 0;
        long n = Math.min(len, cap - skip);
        int done = 0;
        long pos = 0;
        for (int i = 0, count = buffers.count(); i < count && done < n; i++) {
            long end = pos + buffers.length(i);
            if (end > skip) {
                long from = Math.max(skip, pos) - pos;
                int chunk = (int) Math.min(buffers.length(i) - from, n - done);
                MemorySegment.copy(buffers.segment(i), ValueLayout.JAVA_BYTE, buffers.offset(i) + from, dst, done, chunk);
                done += chunk;
            }
            pos = end;
        }
        return done;
    }

    /** Gathers data-out bytes {@code [skip, skip+len)} into a native segment; returns bytes copied. */
    long copyFromDataOut(long skip, MemorySegment dst, long dstOffset, long len) {
        long cap = capacityOut();
        if (skip >= cap) return 0;
        long n = Math.min(len, cap - skip);
        long done = 0;
        long pos = 0;
        for (int i = 0, count = buffers.count(); i < count && done < n; i++) {
            long end = pos + buffers.length(i);
            if (end > skip) {
                long from = Math.max(skip, pos) - pos;
                long chunk = Math.min(buffers.length(i) - from, n - done);
                MemorySegment.copy(buffers.segment(i), buffers.offset(i) + from, dst, dstOffset + done, chunk);
                done += chunk;
            }
            pos = end;
        }
        return done;
    }

    /**
     * Compares data-out bytes {@code [skip, skip+len)} with {@code buf[bufOffset..)}; returns the
     * offset (relative to {@code skip}) of the first differing byte, or -1 when equal. The caller
     * has checked that the data-out buffers hold {@code skip+len} bytes.
     */
    long mismatchDataOut(long skip, MemorySegment buf, long bufOffset, long len) {
        long done = 0;
        long pos = 0;
        for (int i = 0, count = buffers.count(); i < count && done < len; i++) {
            long end = pos + buffers.length(i);
            if (end > skip) {
                long from = Math.max(skip, pos) - pos;
                long chunk = Math.min(buffers.length(i) - from, len - done);
                long m = MemorySegment.mismatch(buffers.segment(i), buffers.offset(i) + from, buffers.offset(i) + from + chunk,
                        buf, bufOffset + done, bufOffset + done + chunk);
                if (m >= 0) return done + m;
                done += chunk;
            }
            pos = end;
        }
        return -1;
    }

    /**
     * Adds the data buffer range {@code [skip, skip+len)} to the block request; the caller has
     * checked the range against the capacity of the direction.
     */
    void addToRequest(BlockRequest r, long skip, long len) {
        long done = 0;
        long pos = 0;
        for (int i = 0, count = buffers.count(); i < count && done < len; i++) {
            long end = pos + buffers.length(i);
            if (end > skip) {
                long from = Math.max(skip, pos) - pos;
                long chunk = Math.min(buffers.length(i) - from, len - done);
                r.addBuffer(buffers.segment(i), buffers.offset(i) + from, chunk);
                done += chunk;
            }
            pos = end;
        }
    }

    /** The native bounce buffer, allocated on first use and kept for the task's lifetime. */
    MemorySegment bounce() {
        MemorySegment b = bounce;
        if (b == null) bounce = b = Arena.ofAuto().allocate(BOUNCE_BYTES, 4096);
        return b;
    }
}
