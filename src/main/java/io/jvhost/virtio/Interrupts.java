package io.jvhost.virtio;

/**
 * When a queue's used-buffer notifications go out, apart from the ring walker: the ring says
 * that entries were published and whether the driver asked for a notification (it reads the
 * suppression fields, VIRTIO 1.2 2.7.10); this class sends it at once through the current
 * {@link Notifier}, or holds it back under interrupt coalescing (SPDK's
 * vhost_controller_set_coalescing), and counts calls and call errors in the queue's
 * {@link QueueStats}.
 *
 * <p>The notifier can be replaced while the queue runs ({@link #notifier(Notifier)}, sent as a
 * reactor command on SET_VRING_CALL): a call held back goes to the new one. Owning reactor
 * thread only.
 */
public final class Interrupts {
    /** Interval over which the request rate is measured (SPDK_VHOST_STATS_CHECK_INTERVAL_MS). */
    public static final long COALESCING_INTERVAL_NS = 10_000_000L;

    private final QueueStats stats;
    private Notifier notifier;
    // Coalescing: off while delayBaseNs == 0.
    private long delayBaseNs;
    private long thresholdPerInterval;
    private long nextStatsCheck;
    private long requestsInInterval;
    private long irqDelayNs;
    private long nextSignalAt;
    private boolean deferred;

    public Interrupts(QueueStats stats, Notifier notifier) {
        this.stats = stats;
        this.notifier = notifier == null ? Notifier.NONE : notifier;
    }

    public Notifier notifier() {
        return notifier;
    }

    /** Replaces the notifier (reactor thread); a call held back by coalescing goes to the new one. */
    public void notifier(Notifier next) {
        notifier = next == null ? Notifier.NONE : next;
    }

    /**
     * The ring published {@code count} used entries; {@code wanted}: the driver asked for a
     * notification. Returns 1 if one was sent now, else 0.
     */
    public int onPublished(int count, boolean wanted) {
        if (delayBaseNs != 0) {
            requestsInInterval += count;
            return wanted ? coalesced(System.nanoTime()) : 0;
        }
        return wanted && signal() ? 1 : 0;
    }

    /** Sends one notification now, whatever coalescing says (after a restart or a notifier swap). */
    public boolean signal() {
        Notifier n = notifier;
        if (n == Notifier.NONE) return false;
        stats.countCall();
        if (!n.signal()) stats.countCallError();
        return true;
    }

    /**
     * Sets interrupt coalescing as SPDK does: every 10 ms the queue's request rate is compared
     * with {@code iopsThreshold}; above it, calls are spaced by
     * {@code delayBaseUs * (rate - threshold) / threshold}. {@code delayBaseUs == 0} turns it off
     * (and sends a call still held back).
     */
    public void coalescing(long delayBaseUs, long iopsThreshold) {
        if (deferred) signal();
        deferred = false;
        delayBaseNs = delayBaseUs * 1000;
        thresholdPerInterval = Math.max(1, iopsThreshold * COALESCING_INTERVAL_NS / 1_000_000_000L);
        irqDelayNs = 0;
        requestsInInterval = 0;
        nextStatsCheck = 0;
    }

    private int coalesced(long now) {
        if (now >= nextStatsCheck) {
            nextStatsCheck = now + COALESCING_INTERVAL_NS;
            long req = requestsInInterval;
            requestsInInterval = 0;
            irqDelayNs = req <= thresholdPerInterval ? 0 : delayBaseNs * (req - thresholdPerInterval) / thresholdPerInterval;
        }
        if (irqDelayNs == 0 || now >= nextSignalAt) {
            deferred = false;
            nextSignalAt = now + irqDelayNs;
            signal();
            return 1;
        }
        deferred = true;
        return 0;
    }

    /** Sends a call that coalescing held back once its time has come; returns 1 if it did. */
    public int flushDeferred() {
        if (!deferred) return 0;
        long now = System.nanoTime();
        if (now < nextSignalAt) return 0;
        deferred = false;
        nextSignalAt = now + irqDelayNs;
        signal();
        return 1;
    }

    /** True while coalescing holds back a call (the reactor must not sleep). */
    public boolean deferred() {
        return deferred;
    }

    /** Forgets a call held back (the ring is gone: nothing is published any more). */
    public void dropDeferred() {
        deferred = false;
    }
}
