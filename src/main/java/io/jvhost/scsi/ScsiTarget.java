package io.jvhost.scsi;

import io.jvhost.bdev.BlockChannel;
import io.jvhost.bdev.BlockDevice;

import java.util.concurrent.atomic.AtomicLong;

import static io.jvhost.scsi.Bytes.be16;
import static io.jvhost.scsi.Bytes.be32;
import static io.jvhost.scsi.Bytes.put32;
import static io.jvhost.scsi.Bytes.u8;

/**
 * A SCSI target (id 0-7) with LUN 0 backed by a block device.
 *
 * <p><b>State.</b> ACTIVE accepts tasks. {@link #remove} (any thread) moves it to REMOVING: new
 * tasks are refused at once (CHECK CONDITION, ILLEGAL REQUEST, LOGICAL UNIT NOT SUPPORTED, with
 * {@link ScsiTask#targetUnavailable()} set) while tasks in flight complete normally; when the last
 * one has completed it becomes REMOVED and the removal callback runs — on the calling thread if
 * nothing was in flight, else on the reactor thread inside the completion. State and in-flight
 * count live in one atomic word, so a task is either counted before removal starts or refused.
 *
 * <p><b>Threading.</b> {@link #execute} and {@link #manage} run on the reactor thread of the
 * task's (or function's) lane, which owns that lane's block channel (see {@link ScsiLun});
 * {@link #remove}, {@link #state()} and the accessors may be called from any thread.
 */
public final class ScsiTarget {
    public static final int MAX_ID = 7;
    /** LUNs per target (only LUN 0 is populated). */
    public static final int MAX_LUNS = 1;

    public enum State { ACTIVE, REMOVING, REMOVED }

    private static final int STATE_SHIFT = 62;
    private static final long COUNT_MASK = (1L << STATE_SHIFT) - 1;
    private static final long ACTIVE = 0, REMOVING = 1, REMOVED = 2;

    private final int id;
    private final String name;
    private final ScsiLun[] luns;
    private final byte[] noLunInquiry;
    private final AtomicLong ctl = new AtomicLong();
    private volatile Runnable onRemoved;
    /**
     * Execution sequence numbers for task management, one per lane, each written by its lane's
     * reactor only; spaced a cache line apart so lanes on different cores do not share one.
     */
    private final long[] seqs;
    private static final int SEQ_STRIDE = 8;
    private final int lanes;

    public ScsiTarget(int id, String name, BlockDevice bdev) {
        this(id, name, bdev, 1);
    }

    /** A target whose LUNs take tasks on {@code lanes} reactors (see {@link ScsiTask#lane(int)}). */
    public ScsiTarget(int id, String name, BlockDevice bdev, int lanes) {
        if (id < 0 || id > MAX_ID) throw new IllegalArgumentException("target id must be 0-" + MAX_ID + ", got " + id);
        if (name == null || name.isBlank()) throw new IllegalArgumentException("target name must not be empty");
        if (bdev == null) throw new IllegalArgumentException("bdev is required");
        if (lanes < 1 || lanes > 64) throw new IllegalArgumentException("lanes must be 1..64, got " + lanes);
        this.id = id;
        this.name = name;
        this.lanes = lanes;
        this.seqs = new long[lanes * SEQ_STRIDE];
        this.luns = new ScsiLun[] {new ScsiLun(this, 0, bdev, lanes)};
        this.noLunInquiry = luns[0].standardInquiry.clone();
        noLunInquiry[0] = 0x7F; // peripheral qualifier 011b (no LUN here), device type 1Fh (unknown)
    }

    public int id() {
        return id;
    }

    public String name() {
        return name;
    }

    /** The LUN with this number, or null. */
    public ScsiLun lun(int n) {
        return n >= 0 && n < luns.length ? luns[n] : null;
    }

    /** Lanes (reactors) the LUNs take tasks on. */
    public int lanes() {
        return lanes;
    }

    /** Reactor thread: resubmits tasks waiting for room in their channels (see {@link ScsiLun#resubmitWaiting()}). */
    public int resubmitWaiting() {
        return resubmitWaiting(0);
    }

    /** Lane {@code lane}'s reactor: resubmits that lane's tasks waiting for room. */
    public int resubmitWaiting(int lane) {
        int n = 0;
        for (ScsiLun l : luns) if (l != null && l.tasksWaitingForRoom(lane)) n += l.resubmitWaiting(lane);
        return n;
    }

    /** Reactor thread: true when some LUN has tasks waiting for room in their channel. */
    public boolean tasksWaitingForRoom() {
        return tasksWaitingForRoom(0);
    }

    /** Lane {@code lane}'s reactor: true when some LUN has tasks of that lane waiting for room. */
    public boolean tasksWaitingForRoom(int lane) {
        for (ScsiLun l : luns) if (l != null && l.tasksWaitingForRoom(lane)) return true;
        return false;
    }

    public int lunCount() {
        return luns.length;
    }

    public State state() {
        long s = ctl.get() >>> STATE_SHIFT;
        return s == ACTIVE ? State.ACTIVE : s == REMOVING ? State.REMOVING : State.REMOVED;
    }

    /** Tasks executing on this target (their count is exact; read from any thread). */
    public int inFlight() {
        return (int) (ctl.get() & COUNT_MASK);
    }

    /**
     * Executes a task on the LUN {@link ScsiTask#lun(int) addressed} by it; see
     * {@link ScsiLun#execute}. Tasks for a LUN that does not exist get the SPC answers for one:
     * INQUIRY with peripheral qualifier 011b, REPORT LUNS, REQUEST SENSE with LOGICAL UNIT NOT
     * SUPPORTED parameter data, and CHECK CONDITION / LOGICAL UNIT NOT SUPPORTED otherwise.
     */
    public void execute(ScsiTask t, BlockChannel channel) {
        ScsiLun l = lun(t.lun);
        if (l != null) {
            l.execute(t, channel);
            return;
        }
        t.begin(null, channel);
        try {
            noSuchLun(t);
        } catch (RuntimeException e) {
            t.checkCondition(ScsiSense.HARDWARE_ERROR, ScsiSense.INTERNAL_TARGET_FAILURE);
        } catch (InternalError e) {
            // the data buffer's memory vanished (SIGBUS): answer, then tell the transport
            t.checkCondition(ScsiSense.HARDWARE_ERROR, ScsiSense.INTERNAL_TARGET_FAILURE);
            t.finish();
            throw e;
        }
        t.finish();
    }

    private void noSuchLun(ScsiTask t) {
        byte[] c = t.cdb;
        int op = c[0] & 0xFF;
        if ((ctl.get() >>> STATE_SHIFT) != ACTIVE) {
            t.targetUnavailable = true;
            t.checkCondition(ScsiSense.ILLEGAL_REQUEST, ScsiSense.LOGICAL_UNIT_NOT_SUPPORTED);
            return;
        }
        int size = ScsiLun.cdbSize(op);
        if (size != 0 && t.cdbLength < size) {
            t.checkCondition(ScsiSense.ILLEGAL_REQUEST, ScsiSense.INVALID_FIELD_IN_CDB);
            return;
        }
        switch (op) {
            case ScsiOpcode.INQUIRY -> {
                if ((c[1] & 0x03) != 0 || c[2] != 0) {
                    t.checkCondition(ScsiSense.ILLEGAL_REQUEST, ScsiSense.LOGICAL_UNIT_NOT_SUPPORTED);
                } else {
                    t.copyToDataIn(noLunInquiry, Math.min(noLunInquiry.length, be16(c, 3)));
                }
            }
            case ScsiOpcode.REPORT_LUNS -> reportLunsData(t);
            case ScsiOpcode.REQUEST_SENSE -> {
                int len = ScsiLun.senseData(t.scratch, (c[1] & 0x01) != 0,
                        ScsiSense.ILLEGAL_REQUEST, ScsiSense.LOGICAL_UNIT_NOT_SUPPORTED);
                t.copyToDataIn(t.scratch, Math.min(len, u8(c, 4)));
            }
            default -> t.checkCondition(ScsiSense.ILLEGAL_REQUEST, ScsiSense.LOGICAL_UNIT_NOT_SUPPORTED);
        }
    }

    /** Fills the REPORT LUNS answer, or sets INVALID FIELD IN CDB for an unknown SELECT REPORT. */
    void reportLunsData(ScsiTask t) {
        byte[] c = t.cdb;
        int select = u8(c, 2);
        long alloc = be32(c, 6);
        boolean all;
        switch (select) {
            case 0x00, 0x02 -> all = true;  // logical units / all logical units
            case 0x01 -> all = false;       // well-known logical units: none here
            default -> {
                t.checkCondition(ScsiSense.ILLEGAL_REQUEST, ScsiSense.INVALID_FIELD_IN_CDB, true, 2, -1);
                return;
            }
        }
        byte[] s = t.scratch;
        int n = 0;
        java.util.Arrays.fill(s, 0, 8 + 8 * luns.length, (byte) 0);
        if (all) {
            for (ScsiLun l : luns) {
                if (l == null) continue;
                // single level LUN structure, peripheral device addressing (LUN < 256)
                s[8 + 8 * n + 1] = (byte) l.id();
                n++;
            }
        }
        put32(s, 0, 8L * n);
        int len = 8 + 8 * n;
        t.copyToDataIn(s, (int) Math.min(len, alloc));
    }

    /**
     * Runs a task management function on the tasks of its {@link ScsiTmf#lane lane}.
     * LUN-addressed functions go to {@link ScsiTmf#lun} (INCORRECT LOGICAL UNIT NUMBER when
     * missing); TARGET RESET and I_T NEXUS RESET reset every LUN. That lane's reactor thread only.
     */
    public void manage(ScsiTmf tmf) {
        if (tmf.lane < 0 || tmf.lane >= lanes) throw new IllegalArgumentException("lane " + tmf.lane + " of a " + lanes + "-lane target");
        tmf.begin();
        tmf.seq = seqs[tmf.lane * SEQ_STRIDE];
        switch (tmf.function) {
            case TARGET_RESET, I_T_NEXUS_RESET -> {
                int n = 0;
                for (ScsiLun l : luns) if (l != null) n++;
                tmf.lunsPending = n;
                for (ScsiLun l : luns) {
                    if (l == null) continue;
                    l.reset(tmf.lane);
                    l.waitForLater(tmf);
                }
                if (n == 0) tmf.finish(ScsiTmf.Response.FUNCTION_COMPLETE);
                else for (ScsiLun l : luns) if (l != null && tmf.pending) l.checkTmfs(tmf.lane);
            }
            default -> {
                ScsiLun l = lun(tmf.lun);
                if (l == null) tmf.finish(ScsiTmf.Response.INCORRECT_LOGICAL_UNIT_NUMBER);
                else l.manage(tmf);
            }
        }
    }

    /**
     * Starts removal (any thread): no new tasks, in-flight ones complete, then REMOVED and
     * {@code onRemoved} runs (maybe before this returns). Returns false when not ACTIVE.
     */
    public synchronized boolean remove(Runnable onRemoved) {
        if ((ctl.get() >>> STATE_SHIFT) != ACTIVE) return false;
        this.onRemoved = onRemoved;
        for (;;) {
            long c = ctl.get();
            long n = REMOVING << STATE_SHIFT | (c & COUNT_MASK);
            if (ctl.compareAndSet(c, n)) {
                if ((n & COUNT_MASK) == 0) finishRemoval(n);
                return true;
            }
        }
    }

    /** Counts a task in; false when the target no longer accepts tasks. */
    boolean enter() {
        for (;;) {
            long c = ctl.get();
            if ((c >>> STATE_SHIFT) != ACTIVE) return false;
            if (ctl.compareAndSet(c, c + 1)) return true;
        }
    }

    /** Counts a task out; finishes a pending removal after the last one. */
    void exit() {
        long c = ctl.decrementAndGet();
        if ((c >>> STATE_SHIFT) == REMOVING && (c & COUNT_MASK) == 0) finishRemoval(c);
    }

    private void finishRemoval(long expected) {
        if (!ctl.compareAndSet(expected, REMOVED << STATE_SHIFT)) return;
        Runnable r = onRemoved;
        onRemoved = null;
        if (r != null) r.run();
    }

    long nextSeq(int lane) {
        return ++seqs[lane * SEQ_STRIDE];
    }

    @Override
    public String toString() {
        return "ScsiTarget[" + id + " " + name + " " + state() + "]";
    }
}
