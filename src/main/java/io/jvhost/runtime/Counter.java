package io.jvhost.runtime;

/**
 * One slot of a {@link CounterSet}, handed to code that bumps a single control-path counter
 * from any thread (the vhost-user dispatcher's failed requests). The method names are
 * {@code AtomicLong}'s, whose role this takes. Not for the data path: {@link #incrementAndGet}
 * is an atomic add.
 */
public final class Counter {
    private final CounterSet set;
    private final int slot;

    Counter(CounterSet set, int slot) {
        this.set = set;
        this.slot = slot;
    }

    /** A counter of its own, published nowhere (tests, stand-alone use). */
    public static Counter standalone() {
        return new CounterSet(STANDALONE).counter(0);
    }

    private static final CounterLayout STANDALONE;

    static {
        CounterLayout.Builder b = CounterLayout.builder("standalone");
        b.hidden("value");
        STANDALONE = b.build();
    }

    /** Any thread: adds one atomically; returns the new value. */
    public long incrementAndGet() {
        return set.increment(slot);
    }

    /** Any thread: the current value. */
    public long get() {
        return set.get(slot);
    }
}
