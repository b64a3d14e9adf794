package io.jvhost.runtime;

import java.util.ArrayList;
import java.util.List;

/**
 * What the slots of a {@link CounterSet} mean, for readers that do not know the owner's code
 * (the metrics endpoint): each slot's metric family, help text, type, an optional extra label
 * (so "errors by kind" is one family with a {@code kind} label) and the factor from the raw
 * value to the family's unit (nanoseconds to seconds). Histograms span several slots: one per
 * bucket (not cumulative) and one for the sum. Immutable once built; shared by every set of a
 * kind (all queues share one layout).
 *
 * <p>Family names follow Prometheus conventions without the {@code _total} suffix a counter
 * gets when exposed: {@code jvhost_queue_requests} becomes {@code jvhost_queue_requests_total}.
 */
public final class CounterLayout {
    /** How a slot's value behaves: only grows (counter) or goes up and down (gauge). */
    public enum Type { COUNTER, GAUGE, HIDDEN }

    /**
     * One slot. {@code labelName}/{@code labelValue} may be null (no extra label);
     * {@code scale} multiplies the raw value (1 for counts and bytes, 1e-9 for nanoseconds in a
     * {@code _seconds} family). {@link Type#HIDDEN} slots are internal (not exported).
     */
    public record Slot(int index, String name, String family, String help, Type type, String labelName, String labelValue, double scale) {}

    /**
     * A histogram over {@code bucketCount} consecutive slots from {@code firstBucket}: slot
     * {@code firstBucket + i} counts observations at most {@code upperBounds[i]} (in the family's
     * unit) and above the previous bound; the last bound is {@code +Inf}. The observation count
     * is the sum of the buckets; {@code sumSlot} holds the raw sum, times {@code sumScale}.
     */
    public record Histogram(String family, String help, String labelName, String labelValue, int firstBucket, double[] upperBounds,
                            int sumSlot, double sumScale) {
        public int bucketCount() { return upperBounds.length; }
    }

    private final String kind;
    private final List<Slot> slots;
    private final List<Histogram> histograms;

    private CounterLayout(String kind, List<Slot> slots, List<Histogram> histograms) {
        this.kind = kind;
        this.slots = List.copyOf(slots);
        this.histograms = List.copyOf(histograms);
    }

    /** What the sets of this layout count, e.g. "queue" (diagnostics). */
    public String kind() { return kind; }
    public List<Slot> slots() { return slots; }
    public List<Histogram> histograms() { return histograms; }
    /** Slots a set of this layout holds (histogram buckets included). */
    public int size() { return slots.size(); }

    public static Builder builder(String kind) {
        return new Builder(kind);
    }

    /** Declares slots in order; each call returns the new slot's index (use it as a {@code static final int}). */
    public static final class Builder {
        private final String kind;
        private final List<Slot> slots = new ArrayList<>();
        private final List<Histogram> histograms = new ArrayList<>();

        private Builder(String kind) {
            this.kind = kind;
        }

        public int counter(String name, String family, String help) {
            return add(name, family, help, Type.COUNTER, null, null, 1);
        }

        public int counter(String name, String family, String help, String labelName, String labelValue) {
            return add(name, family, help, Type.COUNTER, labelName, labelValue, 1);
        }

        public int scaledCounter(String name, String family, String help, double scale) {
            return add(name, family, help, Type.COUNTER, null, null, scale);
        }

        public int gauge(String name, String family, String help) {
            return add(name, family, help, Type.GAUGE, null, null, 1);
        }

        public int gauge(String name, String family, String help, String labelName, String labelValue, double scale) {
            return add(name, family, help, Type.GAUGE, labelName, labelValue, scale);
        }

        /** A slot the owner keeps for itself (e.g. the reset epoch it last saw); never exported. */
        public int hidden(String name) {
            return add(name, null, null, Type.HIDDEN, null, null, 1);
        }

        /**
         * Declares a histogram with {@code upperBounds.length} bucket slots (the last bound must be
         * {@code +Inf}) and a sum slot; returns the first bucket's slot (the sum slot follows the
         * buckets).
         */
        public int histogram(String name, String family, String help, String labelName, String labelValue, double[] upperBounds, double sumScale) {
            if (upperBounds.length == 0 || upperBounds[upperBounds.length - 1] != Double.POSITIVE_INFINITY) {
                throw new IllegalArgumentException("the last bucket of " + family + " must be +Inf");
            }
            int first = slots.size();
            for (int i = 0; i < upperBounds.length; i++) add(name + "_bucket" + i, null, null, Type.HIDDEN, null, null, 1);
            int sum = add(name + "_sum", null, null, Type.HIDDEN, null, null, 1);
            histograms.add(new Histogram(family, help, labelName, labelValue, first, upperBounds.clone(), sum, sumScale));
            return first;
        }

        private int add(String name, String family, String help, Type type, String labelName, String labelValue, double scale) {
            if ((labelName == null) != (labelValue == null)) throw new IllegalArgumentException("label name and value go together: " + name);
            int i = slots.size();
            slots.add(new Slot(i, name, family, help, type, labelName, labelValue, scale));
            return i;
        }

        public CounterLayout build() {
            return new CounterLayout(kind, slots, histograms);
        }
    }
}
