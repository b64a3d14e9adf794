package io.jvhost.scsi;

import io.jvhost.bdev.BlockChannel;
import io.jvhost.bdev.BlockDevice;
import io.jvhost.bdev.BlockRequest;
import io.jvhost.sys.Errno;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.Locale;
import java.util.UUID;

import static io.jvhost.scsi.Bytes.be16;
import static io.jvhost.scsi.Bytes.be24;
import static io.jvhost.scsi.Bytes.be32;
import static io.jvhost.scsi.Bytes.be64;
import static io.jvhost.scsi.Bytes.put16;
import static io.jvhost.scsi.Bytes.put24;
import static io.jvhost.scsi.Bytes.put32;
import static io.jvhost.scsi.Bytes.put64;
import static io.jvhost.scsi.Bytes.putAscii;
import static io.jvhost.scsi.Bytes.u8;
import static io.jvhost.scsi.ScsiSense.*;

/**
 * A logical unit backed by a block device (SPDK: scsi_lun + scsi_bdev): decodes and checks CDBs,
 * answers the emulated SPC/SBC commands, and turns media commands into block requests.
 *
 * <p><b>Threading.</b> A LUN's tasks run on one reactor thread per lane ({@link ScsiTask#lane(int)};
 * one lane unless the transport spreads its queues over reactors): {@link #execute} and
 * {@link ScsiTarget#manage} are called on the lane's thread, with a {@link BlockChannel} of
 * {@link #bdev()} opened and polled by that thread, and completions are delivered from that
 * channel's {@code poll()}. The per-lane state (in-flight list, retry list, pending task
 * management functions) is touched by its lane's thread only and not synchronized; a task
 * management function sees only its own lane's tasks, so a transport with several lanes sends
 * one to each. The unit attention is shared by the lanes (volatile, claimed by compare-and-set).
 * Only target removal ({@link ScsiTarget#remove}) may come from another thread.
 *
 * <p><b>Hostile input.</b> Every CDB and parameter list field that matters is checked; errors end
 * in CHECK CONDITION with fixed-format sense data, never in an exception. The data buffers are
 * accessed only inside the triples given to the task, written only when the task is FROM_DEVICE,
 * and media commands whose transfer does not fit in the buffers are refused (ILLEGAL REQUEST,
 * INVALID FIELD IN CDB, no field pointer) before any I/O; emulated commands truncate their data to
 * the allocation length and the buffers. Parameter lists (UNMAP, MODE SELECT) are copied into the
 * task before they are checked, so the guest cannot change them between check and use; a data-out
 * buffer shorter than the parameter list length is PARAMETER LIST LENGTH ERROR. An UNMAP list is
 * checked as a whole (header lengths, descriptor count, every range, total count) before the first
 * block is unmapped. Unknown opcodes get INVALID COMMAND OPERATION CODE, a CDB shorter than its
 * opcode's size or with NACA/LINK set gets INVALID FIELD IN CDB.
 *
 * <p><b>Decisions.</b> VERIFY with BYTCHK=01b compares against the data-out buffer and BYTCHK=11b
 * compares every block against one block, both by reading through the task's 64 KiB bounce
 * buffer; a miscompare reports MISCOMPARE / MISCOMPARE DURING VERIFY OPERATION with the byte
 * offset into the verified range in INFORMATION. WRITE SAME with a non-zero pattern is written
 * by replicating the block in the bounce buffer and writing it chunk by chunk. COMPARE AND WRITE
 * is not atomic against other writes to the same blocks issued concurrently by the initiator.
 * PERSISTENT RESERVE IN/OUT, RESERVE/RELEASE, LOG SENSE, REPORT SUPPORTED OPERATION CODES,
 * protection information and the 32-byte variable-length CDBs are not supported
 * (INVALID COMMAND OPERATION CODE or INVALID FIELD IN CDB).
 */
public final class ScsiLun {
    private static final Logger log = LoggerFactory.getLogger(ScsiLun.class);

    /** MAXIMUM UNMAP BLOCK DESCRIPTOR COUNT reported in the block limits page. */
    public static final int MAX_UNMAP_DESCRIPTORS = 256;
    /** Placeholder IEEE company id in the NAA 6 designator ("JV", locally administered bit set). */
    public static final int NAA_COMPANY_ID = 0x024A56;
    public static final String VENDOR = "JVHOST";
    public static final String REVISION = "0001";

    private static final long MAX_TRANSFER_BYTES = 4L << 20;
    private static final long MAX_UNMAP_BYTES = 1L << 30;
    private static final int RELATIVE_PORT = 1;

    // Multi-step command kinds (ScsiTask.kind)
    static final int K_SIMPLE = 1;       // one block request, then done
    static final int K_WRITE_FUA = 2;    // write, then flush
    static final int K_UNMAP_LIST = 3;   // one UNMAP per descriptor
    static final int K_CAW_READ = 4;     // COMPARE AND WRITE: read, compare
    static final int K_CAW_WRITE = 5;    // COMPARE AND WRITE: write (then flush if FUA)
    static final int K_VERIFY = 6;       // VERIFY with BYTCHK: read chunk, compare, next chunk
    static final int K_WS_PATTERN = 7;   // WRITE SAME with a pattern: write chunk, next chunk

    private static final int F_FUA = 1;

    private final ScsiTarget target;
    private final int id;
    private final BlockDevice bdev;
    private final int blockSize;
    private final int blockShift;
    private final long numBlocks;
    private final boolean readOnly;
    private final boolean unmap;
    private final boolean writeZeroes;
    private final boolean volatileCache;
    private final String serial;

    private final long maxTransferBlocks;
    private final long maxUnmapBlocks;
    private final long maxWriteSameBlocks;
    private final int maxCompareAndWriteBlocks;
    private final int optimalGranularity;

    final byte[] standardInquiry;
    private final byte[] vpdSupported, vpdSerial, vpdDeviceId, vpdBlockLimits, vpdBlockCharacteristics, vpdProvisioning;
    private final byte[] cachingPage, cachingChangeable, controlPage, controlChangeable;

    /**
     * One lane's state (see {@link ScsiTask#lane(int)}), touched only by that lane's reactor:
     * the tasks it executes, those waiting for room, its pending task management functions.
     */
    private static final class Lane {
        ScsiTask inflightHead;
        int inflight;
        /**
         * Tasks whose block request the channel answered "no room now" (-EAGAIN/-ENOMEM), oldest
         * first: resubmitted by {@link #resubmitWaiting(int)} (SPDK's spdk_bdev_queue_io_wait), so
         * back-pressure never reaches the initiator as BUSY. Intrusive, so nothing is allocated.
         */
        ScsiTask waitHead, waitTail;
        long busyRetries;
        final ArrayList<ScsiTmf> pendingTmfs = new ArrayList<>(4);
        // Keeps two lanes (two reactors' hot fields) off one cache line.
        @SuppressWarnings("unused") long pad1, pad2, pad3, pad4, pad5, pad6, pad7;
    }

    private final Lane[] lanes;
    /**
     * POWER ON, RESET unit attention: shared by the lanes (one initiator), set by a reset on any
     * lane and reported once, to whichever command claims it first (compare-and-set).
     */
    private volatile boolean unitAttention;
    private static final java.lang.invoke.VarHandle UA_HANDLE;
    static {
        try {
            UA_HANDLE = java.lang.invoke.MethodHandles.lookup().findVarHandle(ScsiLun.class, "unitAttention", boolean.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    /** True for the one caller that takes a pending unit attention. */
    private boolean claimUnitAttention() {
        return unitAttention && UA_HANDLE.compareAndSet(this, true, false);
    }

    ScsiLun(ScsiTarget target, int id, BlockDevice bdev) {
        this(target, id, bdev, 1);
    }

    ScsiLun(ScsiTarget target, int id, BlockDevice bdev, int laneCount) {
        this.target = target;
        this.id = id;
        this.bdev = bdev;
        this.lanes = new Lane[laneCount];
        for (int i = 0; i < laneCount; i++) lanes[i] = new Lane();
        this.blockSize = bdev.blockSize();
        if (blockSize < 512 || Integer.bitCount(blockSize) != 1 || blockSize > ScsiTask.BOUNCE_BYTES) {
            throw new IllegalArgumentException("unsupported block size " + blockSize);
        }
        this.blockShift = Integer.numberOfTrailingZeros(blockSize);
        this.numBlocks = bdev.numBlocks();
        this.readOnly = bdev.readOnly();
        this.unmap = bdev.supportsUnmap();
        this.writeZeroes = bdev.supportsWriteZeroes();
        this.volatileCache = bdev.volatileWriteCache();
        UUID u = bdev.uuid();
        this.serial = String.format(Locale.ROOT, "%016x%016x", u.getMostSignificantBits(), u.getLeastSignificantBits());

        this.maxTransferBlocks = Math.max(1, MAX_TRANSFER_BYTES >> blockShift);
        this.maxUnmapBlocks = unmap ? Math.max(1, MAX_UNMAP_BYTES >> blockShift) : 0;
        this.maxWriteSameBlocks = Math.max(1, MAX_UNMAP_BYTES >> blockShift);
        this.maxCompareAndWriteBlocks = Math.min(255, ScsiTask.BOUNCE_BYTES >> blockShift);
        this.optimalGranularity = Math.max(1, 4096 >> blockShift);

        standardInquiry = buildStandardInquiry(bdev.productName());
        vpdSupported = buildVpdSupported();
        vpdSerial = buildVpdSerial();
        vpdDeviceId = buildVpdDeviceId(u);
        vpdBlockLimits = buildVpdBlockLimits();
        vpdBlockCharacteristics = buildVpdBlockCharacteristics();
        vpdProvisioning = buildVpdProvisioning();
        cachingPage = new byte[20];
        cachingPage[0] = 0x08;
        cachingPage[1] = 0x12;
        cachingPage[2] = (byte) (volatileCache ? 0x04 : 0x00); // WCE
        cachingChangeable = new byte[20];
        cachingChangeable[0] = 0x08;
        cachingChangeable[1] = 0x12;
        controlPage = new byte[12];
        controlPage[0] = 0x0A;
        controlPage[1] = 0x0A;
        controlPage[2] = 0x02;  // GLTSD: no log parameters saved
        controlPage[3] = 0x10;  // QUEUE ALGORITHM MODIFIER 1: unrestricted reordering
        controlPage[5] = 0x40;  // TAS: aborted tasks end with TASK ABORTED status
        put16(controlPage, 8, 0xFFFF); // BUSY TIMEOUT PERIOD: unlimited
        controlChangeable = new byte[12];
        controlChangeable[0] = 0x0A;
        controlChangeable[1] = 0x0A;
    }

    // ---------------------------------------------------------------- accessors

    public ScsiTarget target() {
        return target;
    }

    public int id() {
        return id;
    }

    public BlockDevice bdev() {
        return bdev;
    }

    /** Unit serial number (VPD page 80h): the bdev UUID as 32 hex digits. */
    public String serial() {
        return serial;
    }

    public long maxTransferBlocks() {
        return maxTransferBlocks;
    }

    public long maxUnmapBlocks() {
        return maxUnmapBlocks;
    }

    public long maxWriteSameBlocks() {
        return maxWriteSameBlocks;
    }

    public int maxCompareAndWriteBlocks() {
        return maxCompareAndWriteBlocks;
    }

    /** Tasks executing on this LUN (exact on the reactor thread of a one-lane LUN; a sum over lanes otherwise). */
    public int inFlight() {
        int n = 0;
        for (Lane l : lanes) n += l.inflight;
        return n;
    }

    /** Task management functions waiting on lane {@code lane} for affected tasks to end (that lane's reactor thread). */
    public int pendingTaskManagement(int lane) {
        return lanes[lane].pendingTmfs.size();
    }

    /** True when a unit attention (POWER ON, RESET...) waits to be reported (reactor thread). */
    public boolean unitAttentionPending() {
        return unitAttention;
    }

    // ---------------------------------------------------------------- execution

    /**
     * Executes a task on this LUN (its LUN field is not looked at). {@code channel} must be a
     * channel of {@link #bdev()} owned by the calling reactor thread; it is used only by media
     * commands and the task's completion comes from its {@code poll()} when I/O was needed.
     * Never throws because of the task's contents; throws IllegalStateException when the task is
     * still executing or has no completion callback (transport bugs).
     */
    public void execute(ScsiTask t, BlockChannel channel) {
        t.begin(this, channel);
        if (!target.enter()) {
            t.targetUnavailable = true;
            t.checkCondition(ILLEGAL_REQUEST, LOGICAL_UNIT_NOT_SUPPORTED);
            t.finish();
            return;
        }
        t.seq = target.nextSeq(t.lane);
        link(t);
        try {
            dispatch(t);
        } catch (RuntimeException e) {
            recover(t, e);
        } catch (InternalError e) {
            // A data buffer's memory vanished under a copy (SIGBUS): answer the task, then let
            // the transport know its guest memory is gone.
            recover(t, e);
            throw e;
        }
    }

    /** Called by the task's block request completion (from the channel's poll). */
    void blockComplete(ScsiTask t, int st) {
        t.phase = ScsiTask.SYNC;
        try {
            step(t, st);
        } catch (RuntimeException e) {
            recover(t, e);
        } catch (InternalError e) {
            recover(t, e);
            throw e;
        }
    }

    private void recover(ScsiTask t, Throwable e) {
        if (t.phase == ScsiTask.SYNC && t.owner == this) {
            if (e instanceof InternalError) {
                log.warn("LUN {}/{}: memory fault on opcode 0x{} ({}); failing the task", target.id(), id,
                        Integer.toHexString(t.cdb[0] & 0xFF), e.getMessage());
            } else {
                log.warn("LUN {}/{}: internal error on opcode 0x{}", target.id(), id,
                        Integer.toHexString(t.cdb[0] & 0xFF), e);
            }
            t.checkCondition(HARDWARE_ERROR, INTERNAL_TARGET_FAILURE);
            complete(t);
        } else if (t.phase == ScsiTask.IO && t.owner == this) {
            log.warn("LUN {}/{}: error after submitting I/O; completion follows", target.id(), id, e);
        } else {
            if (e instanceof RuntimeException r) throw r; // thrown by the transport's completion callback
            throw (Error) e;
        }
    }

    private void dispatch(ScsiTask t) {
        byte[] c = t.cdb;
        int op = c[0] & 0xFF;
        if (unitAttention && op != ScsiOpcode.INQUIRY && op != ScsiOpcode.REPORT_LUNS
                && op != ScsiOpcode.REQUEST_SENSE && claimUnitAttention()) {
            fail(t, UNIT_ATTENTION, POWER_ON_RESET);
            return;
        }
        int size = cdbSize(op);
        if (size == 0) {
            fail(t, ILLEGAL_REQUEST, INVALID_COMMAND_OPERATION_CODE);
            return;
        }
        if (t.cdbLength < size) {
            fail(t, ILLEGAL_REQUEST, INVALID_FIELD_IN_CDB);
            return;
        }
        int control = c[size - 1];
        if ((control & 0x04) != 0) { // NACA: we never establish an ACA
            invalidCdb(t, size - 1, 2);
            return;
        }
        if ((control & 0x01) != 0) { // LINK (obsolete)
            invalidCdb(t, size - 1, 0);
            return;
        }
        switch (op) {
            case ScsiOpcode.TEST_UNIT_READY, ScsiOpcode.START_STOP_UNIT -> complete(t);
            case ScsiOpcode.REQUEST_SENSE -> requestSense(t);
            case ScsiOpcode.INQUIRY -> inquiry(t);
            case ScsiOpcode.REPORT_LUNS -> {
                target.reportLunsData(t);
                complete(t);
            }
            case ScsiOpcode.MODE_SENSE_6 -> modeSense(t, false);
            case ScsiOpcode.MODE_SENSE_10 -> modeSense(t, true);
            case ScsiOpcode.MODE_SELECT_6 -> modeSelect(t, false);
            case ScsiOpcode.MODE_SELECT_10 -> modeSelect(t, true);
            case ScsiOpcode.READ_CAPACITY_10 -> readCapacity10(t);
            case ScsiOpcode.SERVICE_ACTION_IN_16 -> serviceActionIn16(t);
            case ScsiOpcode.READ_6, ScsiOpcode.WRITE_6 -> {
                long lba = (c[1] & 0x1F) << 16 | be16(c, 2);
                int blocks = u8(c, 4);
                readWrite(t, op == ScsiOpcode.WRITE_6, lba, blocks == 0 ? 256 : blocks, 4, false);
            }
            case ScsiOpcode.READ_10, ScsiOpcode.WRITE_10 -> {
                if (protectField(t)) return;
                readWrite(t, op == ScsiOpcode.WRITE_10, be32(c, 2), be16(c, 7), 7, (c[1] & 0x08) != 0);
            }
            case ScsiOpcode.READ_12, ScsiOpcode.WRITE_12 -> {
                if (protectField(t)) return;
                readWrite(t, op == ScsiOpcode.WRITE_12, be32(c, 2), be32(c, 6), 6, (c[1] & 0x08) != 0);
            }
            case ScsiOpcode.READ_16, ScsiOpcode.WRITE_16 -> {
                if (protectField(t)) return;
                readWrite(t, op == ScsiOpcode.WRITE_16, be64(c, 2), be32(c, 10), 10, (c[1] & 0x08) != 0);
            }
            case ScsiOpcode.VERIFY_10 -> verify(t, be32(c, 2), be16(c, 7), 7);
            case ScsiOpcode.VERIFY_16 -> verify(t, be64(c, 2), be32(c, 10), 10);
            case ScsiOpcode.SYNCHRONIZE_CACHE_10 -> synchronizeCache(t, be32(c, 2), be16(c, 7));
            case ScsiOpcode.SYNCHRONIZE_CACHE_16 -> synchronizeCache(t, be64(c, 2), be32(c, 10));
            case ScsiOpcode.UNMAP -> unmap(t);
            case ScsiOpcode.WRITE_SAME_10 -> writeSame(t, be32(c, 2), be16(c, 7), 7, false);
            case ScsiOpcode.WRITE_SAME_16 -> writeSame(t, be64(c, 2), be32(c, 10), 10, true);
            case ScsiOpcode.COMPARE_AND_WRITE -> compareAndWrite(t);
            default -> fail(t, ILLEGAL_REQUEST, INVALID_COMMAND_OPERATION_CODE);
        }
    }

    /** CDB length of a supported opcode, 0 for unsupported ones. */
    static int cdbSize(int op) {
        return switch (op) {
            case ScsiOpcode.TEST_UNIT_READY, ScsiOpcode.REQUEST_SENSE, ScsiOpcode.READ_6, ScsiOpcode.WRITE_6,
                 ScsiOpcode.INQUIRY, ScsiOpcode.MODE_SELECT_6, ScsiOpcode.MODE_SENSE_6,
                 ScsiOpcode.START_STOP_UNIT -> 6;
            case ScsiOpcode.READ_CAPACITY_10, ScsiOpcode.READ_10, ScsiOpcode.WRITE_10, ScsiOpcode.VERIFY_10,
                 ScsiOpcode.SYNCHRONIZE_CACHE_10, ScsiOpcode.WRITE_SAME_10, ScsiOpcode.UNMAP,
                 ScsiOpcode.MODE_SELECT_10, ScsiOpcode.MODE_SENSE_10 -> 10;
            case ScsiOpcode.REPORT_LUNS, ScsiOpcode.READ_12, ScsiOpcode.WRITE_12 -> 12;
            case ScsiOpcode.READ_16, ScsiOpcode.COMPARE_AND_WRITE, ScsiOpcode.WRITE_16, ScsiOpcode.VERIFY_16,
                 ScsiOpcode.SYNCHRONIZE_CACHE_16, ScsiOpcode.WRITE_SAME_16,
                 ScsiOpcode.SERVICE_ACTION_IN_16 -> 16;
            default -> 0;
        };
    }

    // ---------------------------------------------------------------- completion plumbing

    private void complete(ScsiTask t) {
        int lane = t.lane;
        unlink(t);
        boolean tmfs = !lanes[lane].pendingTmfs.isEmpty();
        try {
            t.finish();
        } finally {
            if (tmfs) checkTmfs(lane);
            target.exit();
        }
    }

    private void fail(ScsiTask t, int key, int ascAscq) {
        t.checkCondition(key, ascAscq);
        complete(t);
    }

    private void invalidCdb(ScsiTask t, int fieldByte, int fieldBit) {
        t.checkCondition(ILLEGAL_REQUEST, INVALID_FIELD_IN_CDB, true, fieldByte, fieldBit);
        complete(t);
    }

    private void invalidParameter(ScsiTask t, int fieldByte, int fieldBit) {
        t.checkCondition(ILLEGAL_REQUEST, INVALID_FIELD_IN_PARAMETER_LIST, false, fieldByte, fieldBit);
        complete(t);
    }

    /** The data buffers cannot hold what the CDB asks to transfer. */
    private void bufferTooSmall(ScsiTask t) {
        fail(t, ILLEGAL_REQUEST, INVALID_FIELD_IN_CDB);
    }

    /** Copies {@code min(len, allocation, buffers)} bytes of response data in, then completes. */
    private void dataIn(ScsiTask t, byte[] src, int len, long allocation) {
        t.copyToDataIn(src, (int) Math.min(len, allocation));
        complete(t);
    }

    private void submit(ScsiTask t) {
        BlockChannel ch = t.channel;
        if (ch == null) {
            fail(t, HARDWARE_ERROR, INTERNAL_TARGET_FAILURE);
            return;
        }
        if (lanes[t.lane].waitHead != null) {
            waitForRoom(t); // keep the order: behind the tasks already waiting
            return;
        }
        // the submit contract forbids completing inside submit, so IO can be entered afterwards;
        // an exception thrown by submit thus still finds the task in SYNC and is answered
        int rc = ch.submit(t.request);
        if (rc == -Errno.EAGAIN || rc == -Errno.ENOMEM) {
            waitForRoom(t);
        } else if (rc < 0) {
            mapError(t, rc, t.request.op);
            complete(t);
        } else {
            t.phase = ScsiTask.IO;
        }
    }

    /** The task waits (in phase IO: a TMF sees it as I/O pending) until the channel has room. */
    private void waitForRoom(ScsiTask t) {
        Lane l = lanes[t.lane];
        l.busyRetries++;
        t.phase = ScsiTask.IO;
        t.waitNext = null;
        if (l.waitTail == null) l.waitHead = t;
        else l.waitTail.waitNext = t;
        l.waitTail = t;
    }

    /** True when lane 0's tasks wait for their channel to take them (the reactor must keep polling). */
    public boolean tasksWaitingForRoom() {
        return tasksWaitingForRoom(0);
    }

    /** True when lane {@code lane}'s tasks wait for their channel to take them (that lane's reactor). */
    public boolean tasksWaitingForRoom(int lane) {
        return lanes[lane].waitHead != null;
    }

    /** Times a block submit was answered "no room now" and the task was queued for retry (reactor thread; summed over lanes). */
    public long busyRetries() {
        long n = 0;
        for (Lane l : lanes) n += l.busyRetries;
        return n;
    }

    /**
     * Reactor thread, from the transport's poll: resubmits waiting tasks in order until the
     * channel pushes back again; an aborted one ends without I/O. Returns how many left the list.
     */
    public int resubmitWaiting() {
        return resubmitWaiting(0);
    }

    /** {@link #resubmitWaiting()} for lane {@code lane}, on its reactor. */
    public int resubmitWaiting(int lane) {
        Lane l = lanes[lane];
        int n = 0;
        while (l.waitHead != null) {
            ScsiTask t = l.waitHead;
            int rc = t.aborted ? 0 : t.channel.submit(t.request);
            if (rc == -Errno.EAGAIN || rc == -Errno.ENOMEM) break;
            l.waitHead = t.waitNext;
            if (l.waitHead == null) l.waitTail = null;
            t.waitNext = null;
            n++;
            if (t.aborted) blockComplete(t, 0);      // ends as TASK ABORTED without touching the device
            else if (rc < 0) blockComplete(t, rc);    // a final error: mapped to sense as usual
        }
        return n;
    }

    private void submitFlush(ScsiTask t) {
        BlockRequest r = t.request;
        r.clearBuffers();
        r.reset(BlockRequest.Op.FLUSH, 0);
        r.length = numBlocks << blockShift;
        t.kind = K_SIMPLE;
        submit(t);
    }

    /** Maps a block layer error to status and sense. */
    private static void mapError(ScsiTask t, int err, BlockRequest.Op op) {
        boolean write = op != BlockRequest.Op.READ;
        switch (-err) {
            case Errno.EAGAIN, Errno.ENOMEM, Errno.EBUSY -> {
                t.status = ScsiStatus.BUSY;
                t.senseLength = 0;
            }
            case Errno.EROFS -> t.checkCondition(DATA_PROTECT, WRITE_PROTECTED);
            case Errno.ENOSPC -> t.checkCondition(DATA_PROTECT, SPACE_ALLOCATION_FAILED_WRITE_PROTECT);
            case Errno.EIO -> t.checkCondition(MEDIUM_ERROR, write ? WRITE_ERROR : UNRECOVERED_READ_ERROR);
            case Errno.ENOTSUP -> t.checkCondition(ILLEGAL_REQUEST, INVALID_COMMAND_OPERATION_CODE);
            default -> t.checkCondition(HARDWARE_ERROR, INTERNAL_TARGET_FAILURE);
        }
    }

    private void step(ScsiTask t, int st) {
        if (st < 0) {
            mapError(t, st, t.request.op);
            complete(t);
            return;
        }
        if (t.aborted) {
            complete(t);
            return;
        }
        switch (t.kind) {
            case K_SIMPLE -> complete(t);
            case K_WRITE_FUA -> submitFlush(t);
            case K_UNMAP_LIST -> nextUnmap(t);
            case K_CAW_READ -> compareAndWriteCompared(t);
            case K_CAW_WRITE -> {
                if ((t.flags & F_FUA) != 0 && volatileCache) submitFlush(t);
                else complete(t);
            }
            case K_VERIFY -> verifyCompared(t);
            case K_WS_PATTERN -> nextWriteSameChunk(t);
            default -> fail(t, HARDWARE_ERROR, INTERNAL_TARGET_FAILURE);
        }
    }

    // ---------------------------------------------------------------- in-flight list and TMFs

    private void link(ScsiTask t) {
        Lane l = lanes[t.lane];
        t.prev = null;
        t.next = l.inflightHead;
        if (l.inflightHead != null) l.inflightHead.prev = t;
        l.inflightHead = t;
        l.inflight++;
    }

    private void unlink(ScsiTask t) {
        Lane l = lanes[t.lane];
        if (t.prev != null) t.prev.next = t.next;
        else if (l.inflightHead == t) l.inflightHead = t.next;
        else return; // not linked
        if (t.next != null) t.next.prev = t.prev;
        t.prev = t.next = null;
        l.inflight--;
    }

    /** Handles a LUN-level function on its lane; {@code tmf.begin()} and its seq were set by the target. */
    void manage(ScsiTmf tmf) {
        ScsiTask inflightHead = lanes[tmf.lane].inflightHead;
        switch (tmf.function) {
            case ABORT_TASK -> {
                boolean found = false;
                for (ScsiTask t = inflightHead; t != null; t = t.next) {
                    if (t.tag == tmf.tag) {
                        t.aborted = true;
                        found = true;
                    }
                }
                if (!found) tmf.finish(ScsiTmf.Response.FUNCTION_COMPLETE);
                else waitFor(tmf);
            }
            case ABORT_TASK_SET, CLEAR_TASK_SET -> {
                abortAll(tmf.lane);
                waitFor(tmf);
            }
            case LOGICAL_UNIT_RESET, TARGET_RESET, I_T_NEXUS_RESET -> {
                reset(tmf.lane);
                waitFor(tmf);
            }
            case QUERY_TASK -> {
                boolean found = false;
                for (ScsiTask t = inflightHead; t != null; t = t.next) found |= t.tag == tmf.tag;
                tmf.finish(found ? ScsiTmf.Response.FUNCTION_SUCCEEDED : ScsiTmf.Response.FUNCTION_COMPLETE);
            }
            case QUERY_TASK_SET -> tmf.finish(inflightHead != null
                    ? ScsiTmf.Response.FUNCTION_SUCCEEDED : ScsiTmf.Response.FUNCTION_COMPLETE);
            case CLEAR_ACA -> tmf.finish(ScsiTmf.Response.FUNCTION_REJECTED);
        }
    }

    /** Aborts every task in flight on {@code lane} and sets a POWER ON, RESET unit attention. */
    void reset(int lane) {
        abortAll(lane);
        unitAttention = true;
    }

    private void abortAll(int lane) {
        for (ScsiTask t = lanes[lane].inflightHead; t != null; t = t.next) t.aborted = true;
    }

    /** Registers a function that completes when its affected tasks are gone (maybe right now). */
    void waitFor(ScsiTmf tmf) {
        tmf.lunsPending++;
        lanes[tmf.lane].pendingTmfs.add(tmf);
        checkTmfs(tmf.lane);
    }

    /** Registers without checking, for target-level functions spanning several LUNs. */
    void waitForLater(ScsiTmf tmf) {
        lanes[tmf.lane].pendingTmfs.add(tmf);
    }

    void checkTmfs(int lane) {
        Lane l = lanes[lane];
        ArrayList<ScsiTmf> pendingTmfs = l.pendingTmfs;
        outer:
        while (true) {
            for (int i = 0; i < pendingTmfs.size(); i++) {
                ScsiTmf tmf = pendingTmfs.get(i);
                boolean blocked = false;
                for (ScsiTask t = l.inflightHead; t != null && !blocked; t = t.next) blocked = tmf.waitsFor(t);
                if (!blocked) {
                    pendingTmfs.remove(i);
                    if (--tmf.lunsPending == 0) tmf.finish(ScsiTmf.Response.FUNCTION_COMPLETE);
                    continue outer;
                }
            }
            return;
        }
    }

    // ---------------------------------------------------------------- SPC commands

    private void requestSense(ScsiTask t) {
        byte[] c = t.cdb;
        boolean desc = (c[1] & 0x01) != 0;
        int alloc = u8(c, 4);
        int key = NO_SENSE, code = NO_ADDITIONAL_SENSE;
        if (claimUnitAttention()) {
            key = UNIT_ATTENTION;
            code = POWER_ON_RESET;
        }
        int len = senseData(t.scratch, desc, key, code);
        dataIn(t, t.scratch, len, alloc);
    }

    /** REQUEST SENSE parameter data; returns its length. */
    static int senseData(byte[] s, boolean descriptorFormat, int key, int ascAscq) {
        if (descriptorFormat) {
            java.util.Arrays.fill(s, 0, 8, (byte) 0);
            s[0] = (byte) RESPONSE_CURRENT_DESCRIPTOR;
            s[1] = (byte) key;
            s[2] = (byte) (ascAscq >>> 8);
            s[3] = (byte) ascAscq;
            return 8;
        }
        ScsiSense.fill(s, key, ascAscq, true, -1, -1);
        return FIXED_LENGTH;
    }

    private void inquiry(ScsiTask t) {
        byte[] c = t.cdb;
        if ((c[1] & 0x02) != 0) { // CmdDt (obsolete)
            invalidCdb(t, 1, 1);
            return;
        }
        boolean evpd = (c[1] & 0x01) != 0;
        int page = u8(c, 2);
        int alloc = be16(c, 3);
        if (!evpd) {
            if (page != 0) invalidCdb(t, 2, -1);
            else dataIn(t, standardInquiry, standardInquiry.length, alloc);
            return;
        }
        byte[] p = switch (page) {
            case 0x00 -> vpdSupported;
            case 0x80 -> vpdSerial;
            case 0x83 -> vpdDeviceId;
            case 0xB0 -> vpdBlockLimits;
            case 0xB1 -> vpdBlockCharacteristics;
            case 0xB2 -> vpdProvisioning;
            default -> null;
        };
        if (p == null) invalidCdb(t, 2, -1);
        else dataIn(t, p, p.length, alloc);
    }

    private void modeSense(ScsiTask t, boolean ten) {
        byte[] c = t.cdb;
        boolean dbd = (c[1] & 0x08) != 0;
        boolean llbaa = ten && (c[1] & 0x10) != 0;
        int pc = (c[2] >> 6) & 0x03;
        int page = c[2] & 0x3F;
        int subpage = u8(c, 3);
        int alloc = ten ? be16(c, 7) : u8(c, 4);
        if (pc == 3) {
            t.checkCondition(ILLEGAL_REQUEST, SAVING_PARAMETERS_NOT_SUPPORTED, true, 2, 7);
            complete(t);
            return;
        }
        boolean caching = page == 0x08 || page == 0x3F;
        boolean control = page == 0x0A || page == 0x3F;
        if (!caching && !control) {
            invalidCdb(t, 2, 5);
            return;
        }
        if (subpage != 0x00 && subpage != 0xFF) { // we have no subpages; FFh asks for all of them
            invalidCdb(t, 3, -1);
            return;
        }
        byte[] s = t.scratch;
        int hdr = ten ? 8 : 4;
        int bdl = dbd ? 0 : llbaa ? 16 : 8;
        java.util.Arrays.fill(s, 0, hdr + bdl, (byte) 0);
        int pos = hdr;
        if (bdl == 8) {
            put32(s, pos, Math.min(numBlocks, 0xFFFFFFFFL));
            put24(s, pos + 5, blockSize);
        } else if (bdl == 16) {
            put64(s, pos, numBlocks);
            put32(s, pos + 12, blockSize);
        }
        pos += bdl;
        if (caching) {
            byte[] p = pc == 1 ? cachingChangeable : cachingPage;
            System.arraycopy(p, 0, s, pos, p.length);
            pos += p.length;
        }
        if (control) {
            byte[] p = pc == 1 ? controlChangeable : controlPage;
            System.arraycopy(p, 0, s, pos, p.length);
            pos += p.length;
        }
        int deviceSpecific = (readOnly ? 0x80 : 0) | 0x10; // WP, DPOFUA
        if (ten) {
            put16(s, 0, pos - 2);
            s[3] = (byte) deviceSpecific;
            s[4] = (byte) (bdl == 16 ? 0x01 : 0); // LONGLBA
            put16(s, 6, bdl);
        } else {
            s[0] = (byte) (pos - 1);
            s[2] = (byte) deviceSpecific;
            s[3] = (byte) bdl;
        }
        dataIn(t, s, pos, alloc);
    }

    private void modeSelect(ScsiTask t, boolean ten) {
        byte[] c = t.cdb;
        if ((c[1] & 0x01) != 0) { // SP: nothing can be saved
            invalidCdb(t, 1, 0);
            return;
        }
        int plen = ten ? be16(c, 7) : u8(c, 4);
        if (plen == 0) {
            complete(t);
            return;
        }
        if (plen > ScsiTask.SCRATCH_BYTES) {
            invalidCdb(t, ten ? 7 : 4, -1);
            return;
        }
        int hdr = ten ? 8 : 4;
        int n = plen;
        if (n < hdr || t.capacityOut() < plen) {
            fail(t, ILLEGAL_REQUEST, PARAMETER_LIST_LENGTH_ERROR);
            return;
        }
        byte[] s = t.scratch;
        n = t.copyFromDataOut(0, s, n);
        t.transferred = n;
        boolean longLba = ten && (s[4] & 0x01) != 0;
        int bdl = ten ? be16(s, 6) : u8(s, 3);
        if (bdl != 0 && bdl != (longLba ? 16 : 8)) {
            invalidParameter(t, ten ? 6 : 3, -1);
            return;
        }
        if (hdr + bdl > n) {
            fail(t, ILLEGAL_REQUEST, PARAMETER_LIST_LENGTH_ERROR);
            return;
        }
        if (bdl != 0) {
            int lenOff = hdr + (longLba ? 12 : 5);
            long len = longLba ? be32(s, lenOff) : be24(s, lenOff);
            if (len != blockSize) { // the block size cannot be changed
                invalidParameter(t, lenOff, -1);
                return;
            }
        }
        int pos = hdr + bdl;
        while (pos < n) {
            if ((s[pos] & 0x40) != 0) { // SPF: no subpages here
                invalidParameter(t, pos, 6);
                return;
            }
            if (pos + 2 > n) {
                fail(t, ILLEGAL_REQUEST, PARAMETER_LIST_LENGTH_ERROR);
                return;
            }
            int code = s[pos] & 0x3F;
            int len = u8(s, pos + 1) + 2;
            byte[] cur = code == 0x08 ? cachingPage : code == 0x0A ? controlPage : null;
            if (cur == null) {
                invalidParameter(t, pos, 5);
                return;
            }
            if (len != cur.length) {
                invalidParameter(t, pos + 1, -1);
                return;
            }
            if (pos + len > n) {
                fail(t, ILLEGAL_REQUEST, PARAMETER_LIST_LENGTH_ERROR);
                return;
            }
            for (int i = 2; i < len; i++) {
                if (s[pos + i] != cur[i]) { // no field is changeable
                    invalidParameter(t, pos + i, -1);
                    return;
                }
            }
            pos += len;
        }
        complete(t);
    }

    // ---------------------------------------------------------------- SBC commands

    private boolean inRange(long lba, long blocks) {
        return lba >= 0 && blocks >= 0 && blocks <= numBlocks && lba <= numBlocks - blocks;
    }

    /** RDPROTECT/WRPROTECT/VRPROTECT: no protection information here. */
    private boolean protectField(ScsiTask t) {
        if ((t.cdb[1] & 0xE0) != 0) {
            invalidCdb(t, 1, 7);
            return true;
        }
        return false;
    }

    private void readCapacity10(ScsiTask t) {
        byte[] c = t.cdb;
        if ((c[8] & 0x01) == 0 && be32(c, 2) != 0) { // SBC-2: LBA must be 0 when PMI is 0
            invalidCdb(t, 2, -1);
            return;
        }
        byte[] s = t.scratch;
        put32(s, 0, Math.min(numBlocks - 1, 0xFFFFFFFFL));
        put32(s, 4, blockSize);
        dataIn(t, s, 8, 8);
    }

    private void serviceActionIn16(ScsiTask t) {
        byte[] c = t.cdb;
        if ((c[1] & 0x1F) != ScsiOpcode.SAI_READ_CAPACITY_16) {
            invalidCdb(t, 1, 4);
            return;
        }
        if ((c[14] & 0x01) == 0 && be64(c, 2) != 0) {
            invalidCdb(t, 2, -1);
            return;
        }
        long alloc = be32(c, 10);
        byte[] s = t.scratch;
        java.util.Arrays.fill(s, 0, 32, (byte) 0);
        put64(s, 0, numBlocks - 1);
        put32(s, 8, blockSize);
        if (unmap) s[14] = (byte) 0x80; // LBPME
        dataIn(t, s, 32, alloc);
    }

    private void readWrite(ScsiTask t, boolean write, long lba, long blocks, int lenField, boolean fua) {
        if (!inRange(lba, blocks)) {
            fail(t, ILLEGAL_REQUEST, LBA_OUT_OF_RANGE);
            return;
        }
        if (blocks == 0) {
            complete(t);
            return;
        }
        if (blocks > maxTransferBlocks) {
            invalidCdb(t, lenField, -1);
            return;
        }
        if (write && readOnly) {
            fail(t, DATA_PROTECT, WRITE_PROTECTED);
            return;
        }
        long bytes = blocks << blockShift;
        if ((write ? t.capacityOut() : t.capacityIn()) < bytes) {
            bufferTooSmall(t);
            return;
        }
        BlockRequest r = t.request;
        r.reset(write ? BlockRequest.Op.WRITE : BlockRequest.Op.READ, lba << blockShift);
        t.addToRequest(r, 0, bytes);
        t.kind = write && fua && volatileCache ? K_WRITE_FUA : K_SIMPLE;
        t.transferred = bytes;
        submit(t);
    }

    private void synchronizeCache(ScsiTask t, long lba, long blocks) {
        if (!inRange(lba, blocks)) {
            fail(t, ILLEGAL_REQUEST, LBA_OUT_OF_RANGE);
            return;
        }
        submitFlush(t);
    }

    private void verify(ScsiTask t, long lba, long blocks, int lenField) {
        byte[] c = t.cdb;
        if (protectField(t)) return;
        int bytchk = (c[1] >> 1) & 0x03;
        if (bytchk == 2) {
            invalidCdb(t, 1, 2);
            return;
        }
        if (!inRange(lba, blocks)) {
            fail(t, ILLEGAL_REQUEST, LBA_OUT_OF_RANGE);
            return;
        }
        if (blocks == 0 || bytchk == 0) { // medium verification: the RAM/file media have no errors to find
            complete(t);
            return;
        }
        if (blocks > maxTransferBlocks) {
            invalidCdb(t, lenField, -1);
            return;
        }
        long need = bytchk == 1 ? blocks << blockShift : blockSize;
        if (t.capacityOut() < need) {
            bufferTooSmall(t);
            return;
        }
        t.flags = bytchk;
        t.lba = lba;
        t.remaining = blocks;
        t.dataOffset = 0;
        t.transferred = need;
        t.kind = K_VERIFY;
        nextVerifyChunk(t);
    }

    private void nextVerifyChunk(ScsiTask t) {
        if (t.remaining == 0) {
            complete(t);
            return;
        }
        long n = Math.min(t.remaining, ScsiTask.BOUNCE_BYTES >> blockShift);
        BlockRequest r = t.request;
        r.reset(BlockRequest.Op.READ, t.lba << blockShift);
        r.addBuffer(t.bounce(), 0, n << blockShift);
        t.ioBytes = n << blockShift;
        t.lba += n;
        t.remaining -= n;
        submit(t);
    }

    private void verifyCompared(ScsiTask t) {
        MemorySegment b = t.bounce();
        long bytes = t.ioBytes;
        long miss = -1;
        if (t.flags == 1) {
            long m = t.mismatchDataOut(t.dataOffset, b, 0, bytes);
            if (m >= 0) miss = t.dataOffset + m;
        } else {
            for (long off = 0; off < bytes && miss < 0; off += blockSize) {
                long m = t.mismatchDataOut(0, b, off, blockSize);
                if (m >= 0) miss = t.dataOffset + off + m;
            }
        }
        if (miss >= 0) {
            miscompare(t, miss);
            return;
        }
        t.dataOffset += bytes;
        t.request.clearBuffers();
        nextVerifyChunk(t);
    }

    private void miscompare(ScsiTask t, long offset) {
        t.checkCondition(MISCOMPARE, MISCOMPARE_DURING_VERIFY);
        ScsiSense.information(t.sense, offset);
        complete(t);
    }

    private void compareAndWrite(ScsiTask t) {
        byte[] c = t.cdb;
        if (protectField(t)) return;
        long lba = be64(c, 2);
        int blocks = u8(c, 13);
        if (!inRange(lba, blocks)) {
            fail(t, ILLEGAL_REQUEST, LBA_OUT_OF_RANGE);
            return;
        }
        if (blocks == 0) {
            complete(t);
            return;
        }
        if (blocks > maxCompareAndWriteBlocks) {
            invalidCdb(t, 13, -1);
            return;
        }
        if (readOnly) {
            fail(t, DATA_PROTECT, WRITE_PROTECTED);
            return;
        }
        long bytes = (long) blocks << blockShift;
        if (t.capacityOut() < 2 * bytes) {
            bufferTooSmall(t);
            return;
        }
        t.flags = (c[1] & 0x08) != 0 ? F_FUA : 0;
        t.lba = lba;
        t.ioBytes = bytes;
        t.transferred = 2 * bytes;
        t.kind = K_CAW_READ;
        BlockRequest r = t.request;
        r.reset(BlockRequest.Op.READ, lba << blockShift);
        r.addBuffer(t.bounce(), 0, bytes);
        submit(t);
    }

    private void compareAndWriteCompared(ScsiTask t) {
        long bytes = t.ioBytes;
        long m = t.mismatchDataOut(0, t.bounce(), 0, bytes);
        if (m >= 0) {
            miscompare(t, m);
            return;
        }
        BlockRequest r = t.request;
        r.clearBuffers();
        r.reset(BlockRequest.Op.WRITE, t.lba << blockShift);
        t.addToRequest(r, bytes, bytes);
        t.kind = K_CAW_WRITE;
        submit(t);
    }

    private void unmap(ScsiTask t) {
        byte[] c = t.cdb;
        if (!unmap) {
            fail(t, ILLEGAL_REQUEST, INVALID_COMMAND_OPERATION_CODE);
            return;
        }
        if ((c[1] & 0x01) != 0) { // ANCHOR: ANC_SUP is 0
            invalidCdb(t, 1, 0);
            return;
        }
        if (readOnly) {
            fail(t, DATA_PROTECT, WRITE_PROTECTED);
            return;
        }
        int plen = be16(c, 7);
        if (plen == 0) {
            complete(t);
            return;
        }
        if (plen < 8 || t.capacityOut() < plen) {
            fail(t, ILLEGAL_REQUEST, PARAMETER_LIST_LENGTH_ERROR);
            return;
        }
        byte[] s = t.scratch;
        int n = t.copyFromDataOut(0, s, Math.min(plen, ScsiTask.SCRATCH_BYTES));
        int dataLength = be16(s, 0);
        int descLength = be16(s, 2);
        int count = descLength / 16; // a trailing partial descriptor is ignored (SBC-3 5.28.2)
        if (count > MAX_UNMAP_DESCRIPTORS) {
            invalidParameter(t, 2, -1);
            return;
        }
        if (8 + descLength > plen) {
            invalidParameter(t, 2, -1);
            return;
        }
        if (dataLength < descLength + 6) {
            invalidParameter(t, 0, -1);
            return;
        }
        long total = 0;
        for (int i = 0; i < count; i++) {
            int off = 8 + 16 * i;
            long lba = be64(s, off);
            long blocks = be32(s, off + 8);
            if (blocks > maxUnmapBlocks) {
                invalidParameter(t, off + 8, -1);
                return;
            }
            if (!inRange(lba, blocks)) {
                fail(t, ILLEGAL_REQUEST, LBA_OUT_OF_RANGE);
                return;
            }
            total += blocks;
            if (total > maxUnmapBlocks) {
                invalidParameter(t, off + 8, -1);
                return;
            }
        }
        t.transferred = n;
        t.index = 0;
        t.limit = count;
        t.kind = K_UNMAP_LIST;
        nextUnmap(t);
    }

    private void nextUnmap(ScsiTask t) {
        byte[] s = t.scratch;
        while (t.index < t.limit) {
            int off = 8 + 16 * t.index++;
            long blocks = be32(s, off + 8);
            if (blocks == 0) continue;
            BlockRequest r = t.request;
            r.reset(BlockRequest.Op.UNMAP, be64(s, off) << blockShift);
            r.length = blocks << blockShift;
            submit(t);
            return;
        }
        complete(t);
    }

    private void writeSame(ScsiTask t, long lba, long blocks, int lenField, boolean sixteen) {
        byte[] c = t.cdb;
        int f = c[1];
        if ((f & 0xE0) != 0) { // WRPROTECT
            invalidCdb(t, 1, 7);
            return;
        }
        if ((f & 0x10) != 0) { // ANCHOR
            invalidCdb(t, 1, 4);
            return;
        }
        if ((f & 0x06) != 0) { // PBDATA, LBDATA (obsolete)
            invalidCdb(t, 1, (f & 0x04) != 0 ? 2 : 1);
            return;
        }
        boolean ndob = sixteen && (f & 0x01) != 0;
        boolean unmapBit = (f & 0x08) != 0;
        if (blocks == 0) { // WSNZ=1
            invalidCdb(t, lenField, -1);
            return;
        }
        if (!inRange(lba, blocks)) {
            fail(t, ILLEGAL_REQUEST, LBA_OUT_OF_RANGE);
            return;
        }
        if (blocks > maxWriteSameBlocks) {
            invalidCdb(t, lenField, -1);
            return;
        }
        if (readOnly) {
            fail(t, DATA_PROTECT, WRITE_PROTECTED);
            return;
        }
        if (!ndob && t.capacityOut() < blockSize) {
            bufferTooSmall(t);
            return;
        }
        t.transferred = ndob ? 0 : blockSize;
        BlockRequest r = t.request;
        if (unmapBit && unmap) {
            r.reset(BlockRequest.Op.UNMAP, lba << blockShift);
            r.length = blocks << blockShift;
            t.kind = K_SIMPLE;
            submit(t);
            return;
        }
        MemorySegment b = t.bounce();
        boolean zero;
        if (ndob) {
            b.fill((byte) 0);
            zero = true;
        } else {
            t.copyFromDataOut(0, b, 0, blockSize);
            zero = isZero(b, blockSize);
        }
        if (zero && writeZeroes) {
            r.reset(BlockRequest.Op.WRITE_ZEROES, lba << blockShift);
            r.length = blocks << blockShift;
            t.kind = K_SIMPLE;
            submit(t);
            return;
        }
        long per = Math.min(blocks, ScsiTask.BOUNCE_BYTES >> blockShift);
        for (long k = 1; k < per; k++) MemorySegment.copy(b, 0, b, k << blockShift, blockSize);
        t.lba = lba;
        t.remaining = blocks;
        t.kind = K_WS_PATTERN;
        nextWriteSameChunk(t);
    }

    private static boolean isZero(MemorySegment b, int len) {
        for (int i = 0; i < len; i += 8) {
            if (b.get(ValueLayout.JAVA_LONG_UNALIGNED, i) != 0) return false;
        }
        return true;
    }

    private void nextWriteSameChunk(ScsiTask t) {
        if (t.remaining == 0) {
            complete(t);
            return;
        }
        long n = Math.min(t.remaining, ScsiTask.BOUNCE_BYTES >> blockShift);
        BlockRequest r = t.request;
        r.clearBuffers();
        r.reset(BlockRequest.Op.WRITE, t.lba << blockShift);
        r.addBuffer(t.bounce(), 0, n << blockShift);
        t.lba += n;
        t.remaining -= n;
        submit(t);
    }

    // ---------------------------------------------------------------- response data built once

    private byte[] buildStandardInquiry(String product) {
        byte[] d = new byte[96];
        d[0] = 0x00;         // peripheral qualifier 0, device type 0 (direct access block device)
        d[1] = 0x00;         // RMB 0
        d[2] = 0x06;         // VERSION: SPC-4
        d[3] = 0x12;         // HISUP, RESPONSE DATA FORMAT 2
        d[4] = (byte) (d.length - 5); // ADDITIONAL LENGTH
        d[7] = 0x02;         // CMDQUE
        putAscii(d, 8, VENDOR, 8);
        putAscii(d, 16, product == null ? "" : product, 16);
        putAscii(d, 32, REVISION, 4);
        put16(d, 58, 0x00A0); // SAM-5
        put16(d, 60, 0x0460); // SPC-4
        put16(d, 62, 0x04C0); // SBC-3
        return d;
    }

    private byte[] buildVpdSupported() {
        byte[] pages = {0x00, (byte) 0x80, (byte) 0x83, (byte) 0xB0, (byte) 0xB1, (byte) 0xB2};
        byte[] d = new byte[4 + pages.length];
        d[1] = 0x00;
        put16(d, 2, pages.length);
        System.arraycopy(pages, 0, d, 4, pages.length);
        return d;
    }

    private byte[] buildVpdSerial() {
        byte[] d = new byte[4 + serial.length()];
        d[1] = (byte) 0x80;
        put16(d, 2, serial.length());
        putAscii(d, 4, serial, serial.length());
        return d;
    }

    private byte[] buildVpdDeviceId(UUID u) {
        byte[] d = new byte[4 + (4 + 16) + (4 + 8 + 32) + (4 + 4)];
        d[1] = (byte) 0x83;
        put16(d, 2, d.length - 4);
        int p = 4;
        // NAA IEEE Registered Extended (NAA 6), logical unit: company id + 100 bits of the UUID
        d[p] = 0x01;       // code set: binary
        d[p + 1] = 0x03;   // association: logical unit, designator type: NAA
        d[p + 3] = 16;
        long vsi = u.getMostSignificantBits() >>> 28; // 36 bits
        long ext = u.getLeastSignificantBits();
        d[p + 4] = (byte) (0x60 | (NAA_COMPANY_ID >>> 20) & 0x0F);
        d[p + 5] = (byte) (NAA_COMPANY_ID >>> 12);
        d[p + 6] = (byte) (NAA_COMPANY_ID >>> 4);
        d[p + 7] = (byte) ((NAA_COMPANY_ID & 0x0F) << 4 | (int) (vsi >>> 32) & 0x0F);
        put32(d, p + 8, vsi);
        put64(d, p + 12, ext);
        p += 20;
        // T10 vendor identification, logical unit: vendor + serial
        d[p] = 0x02;       // code set: ASCII
        d[p + 1] = 0x01;   // association: logical unit, designator type: T10 vendor ID
        d[p + 3] = 8 + 32;
        putAscii(d, p + 4, VENDOR, 8);
        putAscii(d, p + 12, serial, 32);
        p += 44;
        // Relative target port identifier, target port
        d[p] = 0x01;       // code set: binary
        d[p + 1] = 0x14;   // association: target port, designator type: relative target port
        d[p + 3] = 4;
        put16(d, p + 6, RELATIVE_PORT);
        return d;
    }

    private byte[] buildVpdBlockLimits() {
        byte[] d = new byte[64];
        d[1] = (byte) 0xB0;
        put16(d, 2, 0x3C);
        d[4] = 0x01;                                   // WSNZ: WRITE SAME needs a block count
        d[5] = (byte) maxCompareAndWriteBlocks;        // MAXIMUM COMPARE AND WRITE LENGTH
        put16(d, 6, optimalGranularity);               // OPTIMAL TRANSFER LENGTH GRANULARITY
        put32(d, 8, maxTransferBlocks);                // MAXIMUM TRANSFER LENGTH
        put32(d, 12, maxTransferBlocks);               // OPTIMAL TRANSFER LENGTH
        if (unmap) {
            put32(d, 20, maxUnmapBlocks);              // MAXIMUM UNMAP LBA COUNT
            put32(d, 24, MAX_UNMAP_DESCRIPTORS);       // MAXIMUM UNMAP BLOCK DESCRIPTOR COUNT
            put32(d, 28, optimalGranularity);          // OPTIMAL UNMAP GRANULARITY
            put32(d, 32, 0x80000000L);                 // UGAVALID, UNMAP GRANULARITY ALIGNMENT 0
        }
        put64(d, 36, maxWriteSameBlocks);              // MAXIMUM WRITE SAME LENGTH
        return d;
    }

    private byte[] buildVpdBlockCharacteristics() {
        byte[] d = new byte[64];
        d[1] = (byte) 0xB1;
        put16(d, 2, 0x3C);
        put16(d, 4, 0x0001); // MEDIUM ROTATION RATE: non-rotating medium
        return d;
    }

    private byte[] buildVpdProvisioning() {
        byte[] d = new byte[8];
        d[1] = (byte) 0xB2;
        put16(d, 2, 4);
        if (unmap) {
            d[5] = (byte) 0xE0; // LBPU, LBPWS, LBPWS10
            d[6] = 0x02;        // PROVISIONING TYPE: thin
        }
        return d;
    }
}
