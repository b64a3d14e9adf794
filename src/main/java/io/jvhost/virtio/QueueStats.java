package io.jvhost.virtio;

import io.jvhost.runtime.CounterLayout;
import io.jvhost.runtime.CounterSet;

/**
 * Counters of one virtqueue, kept in a {@link CounterSet} of their own. Written by the owning
 * reactor thread only (the {@code count*}/{@code add*} methods: opaque stores, no atomics);
 * read from any thread without a reactor round trip (values may be a few requests stale). The
 * queue's processor publishes the set in the process's counter registry while it runs.
 */
public final class QueueStats {
    /** The layout of every queue's set (metric families {@code jvhost_queue_*}). */
    public static final CounterLayout LAYOUT;
    private static final int REQUESTS, CHAIN_ERRORS, REQUEST_ERRORS, CALLS, CALL_ERRORS, KICKS, FAULTS, DROPPED, BUSY_RETRIES,
            BYTES_READ, BYTES_WRITTEN, IN_FLIGHT;

    static {
        CounterLayout.Builder b = CounterLayout.builder("queue");
        REQUESTS = b.counter("requests", "jvhost_queue_requests", "Chains fetched from the avail ring (requests, well-formed or not)");
        BYTES_READ = b.counter("bytes_read", "jvhost_queue_read_bytes", "Data bytes read from the device into the guest by successful requests");
        BYTES_WRITTEN = b.counter("bytes_written", "jvhost_queue_written_bytes", "Data bytes written from the guest to the device by successful requests");
        IN_FLIGHT = b.gauge("in_flight", "jvhost_queue_in_flight", "Requests fetched and not yet answered");
        KICKS = b.counter("kicks", "jvhost_queue_kicks", "Kicks (guest notifications) drained while the reactor slept");
        CALLS = b.counter("calls", "jvhost_queue_calls", "Calls (interrupts) signalled to the guest");
        String errors = "jvhost_queue_errors";
        String errorsHelp = "Errors by kind: malformed chains, failed requests, failed call signals, dropped requests, queue faults";
        CHAIN_ERRORS = b.counter("chain_errors", errors, errorsHelp, "kind", "chain");
        REQUEST_ERRORS = b.counter("request_errors", errors, errorsHelp, "kind", "request");
        CALL_ERRORS = b.counter("call_errors", errors, errorsHelp, "kind", "call");
        DROPPED = b.counter("dropped_requests", errors, errorsHelp, "kind", "dropped");
        FAULTS = b.counter("faults", errors, errorsHelp, "kind", "fault");
        BUSY_RETRIES = b.counter("busy_retries", "jvhost_queue_busy_retries", "Submits the block layer answered with no room now (-EAGAIN/-ENOMEM), put on the retry list");
        LAYOUT = b.build();
    }

    private final CounterSet set = new CounterSet(LAYOUT);

    /** The underlying set (to publish it). */
    public CounterSet counters() {
        return set;
    }

    // ---- readers (any thread)

    /** Chains fetched (each well-formed or not). */
    public long requests() { return set.get(REQUESTS); }
    public long chainErrors() { return set.get(CHAIN_ERRORS); }
    public long requestErrors() { return set.get(REQUEST_ERRORS); }
    public long calls() { return set.get(CALLS); }
    public long callErrors() { return set.get(CALL_ERRORS); }
    public long kicks() { return set.get(KICKS); }
    /** Times processing faulted (guest memory gone or an internal error): 0 or 1 per queue start. */
    public long faults() { return set.get(FAULTS); }
    /**
     * Requests in flight when the queue faulted that could not be answered because their status
     * or the ring lay in vanished memory: forgotten without a status (those that could be
     * answered got an I/O error and count in {@link #requestErrors}).
     */
    public long droppedRequests() { return set.get(DROPPED); }
    /**
     * Times the block layer answered a submit with "no room now" ({@code -EAGAIN}/{@code -ENOMEM})
     * and the request was put on the queue's retry list instead of failing it.
     */
    public long busyRetries() { return set.get(BUSY_RETRIES); }
    public long bytesRead() { return set.get(BYTES_READ); }
    public long bytesWritten() { return set.get(BYTES_WRITTEN); }
    /** Requests in flight as of the owner's last poll. */
    public long inFlight() { return set.get(IN_FLIGHT); }

    // ---- writers (owning reactor thread only)

    public void countRequest() { set.incrementOwned(REQUESTS); }
    public void countChainError() { set.incrementOwned(CHAIN_ERRORS); }
    public void countRequestError() { set.incrementOwned(REQUEST_ERRORS); }
    public void countCall() { set.incrementOwned(CALLS); }
    public void countCallError() { set.incrementOwned(CALL_ERRORS); }
    public void addKicks(long n) { set.addOwned(KICKS, n); }
    public void countFault() { set.incrementOwned(FAULTS); }
    public void addDroppedRequests(long n) { set.addOwned(DROPPED, n); }
    public void countBusyRetry() { set.incrementOwned(BUSY_RETRIES); }
    public void addBytesRead(long n) { set.addOwned(BYTES_READ, n); }
    public void addBytesWritten(long n) { set.addOwned(BYTES_WRITTEN, n); }
    public void inFlight(int n) { set.setOwned(IN_FLIGHT, n); }
}
