package io.jvhost.runtime;

/**
 * Something a {@link Reactor} polls. All methods run on the reactor thread.
 *
 * <p>A pollable should not throw, but one that touches memory a peer controls (guest memory
 * from a front-end's memfd) can: when the peer truncates the file, an access raises SIGBUS and
 * the JVM turns it into an {@link InternalError}, in compiled code possibly a little after the
 * faulting access. The reactor catches every {@link Throwable} around each call, attributes it
 * (see {@link Reactor}) and tells the pollable through {@link #onError} or
 * {@link #onMemoryFault}; it never lets one pollable end the loop that serves the others.
 */
public interface Pollable {
    /** Does available work; returns how much (0 = idle). Never blocks, should not throw. */
    int poll();

    /**
     * Called before the reactor sleeps: re-enable notifications and re-check for work. Return
     * false to keep the reactor awake (work pending, I/O in flight, or a queue without a kick fd).
     */
    boolean prepareSleep();

    /** {@link #ioWaitNanos()}: nothing of this pollable's is in flight in a block layer (no opinion). */
    long NO_IO_WAIT = 0;
    /** {@link #ioWaitNanos()}: this pollable has work that needs polling (the reactor must not sleep early). */
    long MUST_POLL = -1;

    /**
     * For the reactor's hybrid wait, asked on idle loops (must be cheap, no side effects): when
     * all this pollable waits for is block I/O whose channels will signal a registered wake fd,
     * the time its channels expect until their next completion (ns, &gt; 0); {@link #NO_IO_WAIT}
     * when it has nothing in flight (or no estimate yet); {@link #MUST_POLL} when anything it has
     * in flight needs polling to progress. Only a hint: {@link #prepareSleep()} stays the check
     * that makes sleeping safe.
     */
    default long ioWaitNanos() {
        return NO_IO_WAIT;
    }

    /** Called after the reactor wakes: suppress notifications again while polling. */
    void afterWake();

    /**
     * The reactor caught {@code error} while running this pollable and could not attribute it
     * elsewhere. The pollable must stop doing what failed (no more access to memory that may be
     * gone), stay stoppable through its usual commands and let the reactor sleep. Must not
     * throw. A pollable that throws again after this is removed from the reactor. The default
     * does nothing, so the reactor removes such a pollable at its next error.
     */
    default void onError(Throwable error) {
    }

    /**
     * Asked after a memory-access fault ({@link InternalError}) on this reactor, whichever
     * pollable was running: does this pollable use memory that is no longer backed (a peer
     * truncated its file)? If so it fails itself as in {@link #onError} and returns true.
     * Control path: may make system calls; must not touch the memory in question.
     */
    default boolean onMemoryFault(Throwable fault) {
        return false;
    }
}
