package io.jvhost.vhostuser;

import org.slf4j.Logger;

import io.jvhost.runtime.Counter;

/**
 * Counts deviations from vhost-user.rst that the ecosystem's back-ends accept and logs each kind
 * once per session at debug level (a front-end repeats its quirks on every connection and every
 * ring: one line is enough). The decision for each deviation is the README's Compatibility table.
 *
 * <p>Kinds: the codec's {@code VhostUserMessage.TOLERATED_*} bits (0-15), quirk bits 16-31
 * (the dispatcher's {@link VhostUserBackendDispatcher#QUIRK_NEED_REPLY_WITHOUT_REPLY_ACK} is bit
 * 19, the session's quirks take the others), and a request served without the feature that
 * gates it (one kind per request code). One owner thread (the session's).
 */
public final class ToleranceLog {
    private final Logger log;
    private final String name;
    private final Counter counter;
    private int loggedQuirks;
    private long loggedUngated;

    public ToleranceLog(Logger log, String name, Counter counter) {
        this.log = log;
        this.name = name;
        this.counter = counter;
    }

    /** Counts a deviation of kind {@code quirk} (one bit); logs it the first time. */
    public void tolerate(int quirk, String what) {
        counter.incrementAndGet();
        if ((loggedQuirks & quirk) == 0) {
            loggedQuirks |= quirk;
            log.debug("{}: tolerated (as DPDK's vhost library and libvhost-user do): {}", name, what);
        }
    }

    /** Counts the deviations the codec marked in {@code m}. */
    public void codecDeviations(VhostUserMessage m) {
        if (m.tolerated == 0) return;
        for (int bit = 1; bit < 1 << VhostUserMessage.TOLERATED_COUNT; bit <<= 1) {
            if ((m.tolerated & bit) == 0) continue;
            if ((loggedQuirks & bit) != 0) counter.incrementAndGet(); // no log line to build
            else tolerate(bit, VhostUserMessage.toleratedName(bit) + " (" + m + ")");
        }
    }

    /** Counts {@code req} served although the feature that gates it was not negotiated. */
    public void ungated(VhostUserRequest req, String feature) {
        counter.incrementAndGet();
        long bit = 1L << (req.code & 63);
        if ((loggedUngated & bit) == 0) {
            loggedUngated |= bit;
            log.debug("{}: tolerated (as DPDK's vhost library and libvhost-user do): {} without {} negotiated", name, req, feature);
        }
    }
}
