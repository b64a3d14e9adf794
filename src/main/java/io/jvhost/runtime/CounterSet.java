package io.jvhost.runtime;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;

/**
 * The counters of one owner (a queue, a reactor, a bdev's channels on one thread, a
 * controller), laid out by a {@link CounterLayout}: one {@code long} per slot in an array of
 * its own, padded on both sides so no other set's values share its cache lines (Aeron pads its
 * counters the same way). Readers on any thread ({@link #get}) see each value with an opaque
 * load, never torn, possibly a little stale; nothing is locked and nothing runs on the owner.
 *
 * <p>Two ways to write, as Aeron's {@code Counter.increment()} and {@code incrementOrdered()}:
 * <ul>
 * <li>{@code *Owned}: the data path. Only the set's owner thread may call them (say so in the
 *     owner's Javadoc): a plain read of its own value and an opaque store, no atomic
 *     instruction, no fence, no allocation. Two writers would lose updates.</li>
 * <li>{@link #increment}/{@link #add}: atomic read-modify-write, for control-path counters that
 *     several threads bump (connection counts). Never per request.</li>
 * </ul>
 */
public final class CounterSet {
    /** 128 bytes of padding (two cache lines: the adjacent-line prefetcher pairs them) each side. */
    private static final int PAD = 16;
    private static final VarHandle LONGS = MethodHandles.arrayElementVarHandle(long[].class);

    private final CounterLayout layout;
    private final long[] values;

    public CounterSet(CounterLayout layout) {
        this.layout = layout;
        this.values = new long[PAD + layout.size() + PAD];
    }

    public CounterLayout layout() {
        return layout;
    }

    /** The value of {@code slot} as of now (any thread). */
    public long get(int slot) {
        return (long) LONGS.getOpaque(values, PAD + slot);
    }

    /** Owner thread only: adds one. */
    public void incrementOwned(int slot) {
        int i = PAD + slot;
        LONGS.setOpaque(values, i, values[i] + 1);
    }

    /** Owner thread only: adds {@code delta}. */
    public void addOwned(int slot, long delta) {
        int i = PAD + slot;
        LONGS.setOpaque(values, i, values[i] + delta);
    }

    /** Owner thread only: stores {@code value} (gauges, maxima). */
    public void setOwned(int slot, long value) {
        LONGS.setOpaque(values, PAD + slot, value);
    }

    /** Any thread (atomic; control path only): adds one and returns the new value. */
    public long increment(int slot) {
        return (long) LONGS.getAndAdd(values, PAD + slot, 1L) + 1;
    }

    /** Any thread (atomic; control path only): adds {@code delta} and returns the new value. */
    public long add(int slot, long delta) {
        return (long) LONGS.getAndAdd(values, PAD + slot, delta) + delta;
    }

    /** A handle on one slot, for code that is handed a single counter. */
    public Counter counter(int slot) {
        if (slot < 0 || slot >= layout.size()) throw new IndexOutOfBoundsException(slot);
        return new Counter(this, slot);
    }
}
