package io.jvhost.scsi;

/**
 * A task management function request (SAM-5 7), reusable like {@link ScsiTask}: fill
 * {@link #function}, {@link #lun} and (ABORT TASK, QUERY TASK) {@link #tag}, set the completion
 * once, then call {@link ScsiTarget#manage}. Exactly one {@link Completion#onTmfComplete} follows
 * with {@link #response()} set: before {@code manage} returns when nothing has to be waited for,
 * otherwise from the block channel's {@code poll()} once the last affected task has completed
 * (block I/O cannot be cancelled, so aborted tasks are waited for and then reported with status
 * TASK ABORTED, before the function's own completion).
 *
 * <p>Must be called on the reactor thread that executes the LUN's tasks.
 */
public final class ScsiTmf {
    /** The functions, in the order of virtio-scsi's VIRTIO_SCSI_T_TMF_* subtypes (0-7), plus TARGET RESET. */
    public enum Function {
        ABORT_TASK,
        ABORT_TASK_SET,
        CLEAR_ACA,
        CLEAR_TASK_SET,
        I_T_NEXUS_RESET,
        LOGICAL_UNIT_RESET,
        QUERY_TASK,
        QUERY_TASK_SET,
        TARGET_RESET
    }

    /** SAM-5 service responses of a task management function. */
    public enum Response {
        /** Done (for ABORT TASK also when the task did not exist). */
        FUNCTION_COMPLETE,
        /** QUERY TASK / QUERY TASK SET: the task(s) exist. */
        FUNCTION_SUCCEEDED,
        /** Not supported (CLEAR ACA: this layer never establishes an ACA). */
        FUNCTION_REJECTED,
        /** No such logical unit. */
        INCORRECT_LOGICAL_UNIT_NUMBER
    }

    @FunctionalInterface
    public interface Completion {
        void onTmfComplete(ScsiTmf tmf);
    }

    public Function function = Function.ABORT_TASK;
    public int lun;
    /** Tag of the task to abort or query. */
    public long tag;

    /**
     * The lane this function acts on: only tasks of that lane are aborted, queried or waited
     * for, and it runs on that lane's reactor. A transport whose queues span several lanes sends
     * one function per lane and combines the answers (SPDK runs a whole device on one thread
     * and never needs to).
     */
    public int lane;

    private Completion completion;
    Response response;
    boolean pending;
    long seq;          // tasks with seq <= this, in flight when the function was issued, are affected
    int lunsPending;   // LUNs that still have affected tasks in flight

    public ScsiTmf completion(Completion c) {
        this.completion = c;
        return this;
    }

    public ScsiTmf set(Function f, int lun, long tag) {
        if (pending) throw new IllegalStateException("task management function is pending");
        this.function = f;
        this.lun = lun;
        this.tag = tag;
        return this;
    }

    /** Valid in the completion callback. */
    public Response response() {
        return response;
    }

    public boolean busy() {
        return pending;
    }

    void begin() {
        if (pending) throw new IllegalStateException("task management function is pending");
        if (completion == null) throw new IllegalStateException("no completion callback");
        if (function == null) throw new IllegalStateException("no function");
        response = null;
        lunsPending = 0;
        pending = true;
    }

    void finish(Response r) {
        response = r;
        pending = false;
        completion.onTmfComplete(this);
    }

    /** Does this function wait for task {@code t} (in flight, aborted by it or an earlier function)? */
    boolean waitsFor(ScsiTask t) {
        if (!t.aborted || t.seq > seq) return false;
        return function != Function.ABORT_TASK || t.tag == tag;
    }
}
