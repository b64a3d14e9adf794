package io.jvhost.runtime;

/**
 * Something a {@link Reactor} polls. All methods run on the reactor thread.
 */
public interface Pollable {
    /** Does available work; returns how much (0 = idle). Never blocks, never throws. */
    int poll();

    /**
     * Called before the reactor sleeps: re-enable notifications and re-check for work. Return
     * false to keep the reactor awake (work pending, I/O in flight, or a queue without a kick fd).
     */
    boolean prepareSleep();

    /** Called after the reactor wakes: suppress notifications again while polling. */
    void afterWake();
}
