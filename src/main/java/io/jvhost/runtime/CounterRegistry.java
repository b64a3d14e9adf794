package io.jvhost.runtime;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * The counters a process shows: every published {@link CounterSet} with the labels that name
 * its owner ({@code ctrlr="vhost.0", queue="0"}). One per process ({@link #global()}), as an
 * Aeron media driver has one counters file. Owners publish their set when they start serving
 * and withdraw it when they stop; readers (the metrics endpoint, RPC, {@code top}) take
 * {@link #entries()} and read the values directly, with no lock and no call to the owner.
 * Publishing and withdrawing are control-path operations (copy on write).
 *
 * <p>Two sets published with the same layout and labels are summed by readers (a bdev's
 * channels on several threads each have a set labelled with the bdev's name only).
 */
public final class CounterRegistry {
    private static final CounterRegistry GLOBAL = new CounterRegistry();

    /** A published set and its labels (names and values, in order). */
    public record Entry(CounterSet set, List<String> labelNames, List<String> labelValues) {}

    private final CopyOnWriteArrayList<Entry> entries = new CopyOnWriteArrayList<>();

    public static CounterRegistry global() {
        return GLOBAL;
    }

    /**
     * Publishes {@code set} with labels given as name, value, name, value, ...; returns the
     * entry to {@link #withdraw} later. Publishing the same set twice publishes it twice.
     */
    public Entry publish(CounterSet set, String... labels) {
        if (labels.length % 2 != 0) throw new IllegalArgumentException("labels come in name/value pairs");
        List<String> names = new ArrayList<>(labels.length / 2);
        List<String> values = new ArrayList<>(labels.length / 2);
        for (int i = 0; i < labels.length; i += 2) {
            names.add(labels[i]);
            values.add(labels[i + 1]);
        }
        Entry e = new Entry(set, List.copyOf(names), List.copyOf(values));
        entries.add(e);
        return e;
    }

    /** Withdraws an entry {@link #publish} returned (null: nothing); idempotent. */
    public void withdraw(Entry e) {
        if (e != null) entries.removeIf(x -> x == e);
    }

    /** The published entries as of now (a snapshot; any thread). */
    public List<Entry> entries() {
        return List.copyOf(entries);
    }
}
