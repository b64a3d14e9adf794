package io.jvhost.metrics;

import io.jvhost.runtime.CounterLayout;
import io.jvhost.runtime.CounterRegistry;
import io.jvhost.runtime.CounterSet;
import io.prometheus.metrics.model.registry.MultiCollector;
import io.prometheus.metrics.model.snapshots.ClassicHistogramBuckets;
import io.prometheus.metrics.model.snapshots.CounterSnapshot;
import io.prometheus.metrics.model.snapshots.GaugeSnapshot;
import io.prometheus.metrics.model.snapshots.HistogramSnapshot;
import io.prometheus.metrics.model.snapshots.Labels;
import io.prometheus.metrics.model.snapshots.MetricSnapshot;
import io.prometheus.metrics.model.snapshots.MetricSnapshots;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Turns jvhost's {@link CounterRegistry} into Prometheus metric families at scrape time: one
 * family per {@link CounterLayout.Slot#family()} (a counter, a gauge) or
 * {@link CounterLayout.Histogram}, one sample per published set's labels plus the slot's own
 * label. Sets published with equal labels are summed (a bdev's per-thread sets). Everything
 * here runs on the HTTP server's thread and only reads the counters (opaque loads); the data
 * path does not know it exists.
 */
final class RegistryCollector implements MultiCollector {
    private final CounterRegistry registry;

    RegistryCollector(CounterRegistry registry) {
        this.registry = registry;
    }

    /** One family being assembled: its samples by label set, in first-seen order. */
    private static final class Family {
        final String name;
        final String help;
        final CounterLayout.Type type;
        final double[] bounds; // histograms only
        final Map<Labels, double[]> samples = new LinkedHashMap<>();

        Family(String name, String help, CounterLayout.Type type, double[] bounds) {
            this.name = name;
            this.help = help;
            this.type = type;
            this.bounds = bounds;
        }

        /** The sample for {@code labels}: [value] for counters and gauges, [bucket counts..., sum] for histograms. */
        double[] sample(Labels labels) {
            return samples.computeIfAbsent(labels, l -> new double[bounds == null ? 1 : bounds.length + 1]);
        }
    }

    @Override
    public MetricSnapshots collect() {
        Map<String, Family> families = new LinkedHashMap<>();
        for (CounterRegistry.Entry e : registry.entries()) {
            CounterSet set = e.set();
            CounterLayout layout = set.layout();
            for (CounterLayout.Slot s : layout.slots()) {
                if (s.type() == CounterLayout.Type.HIDDEN) continue;
                Family f = families.computeIfAbsent(s.family(), n -> new Family(n, s.help(), s.type(), null));
                f.sample(labels(e, s.labelName(), s.labelValue()))[0] += set.get(s.index()) * s.scale();
            }
            for (CounterLayout.Histogram h : layout.histograms()) {
                Family f = families.computeIfAbsent(h.family(), n -> new Family(n, h.help(), null, h.upperBounds()));
                double[] v = f.sample(labels(e, h.labelName(), h.labelValue()));
                for (int i = 0; i < h.bucketCount(); i++) v[i] += set.get(h.firstBucket() + i);
                v[h.bucketCount()] += set.get(h.sumSlot()) * h.sumScale();
            }
        }
        List<MetricSnapshot> out = new ArrayList<>(families.size());
        for (Family f : families.values()) out.add(snapshot(f));
        return new MetricSnapshots(out);
    }

    private static Labels labels(CounterRegistry.Entry e, String extraName, String extraValue) {
        int n = e.labelNames().size();
        String[] names = new String[n + (extraName != null ? 1 : 0)];
        String[] values = new String[names.length];
        for (int i = 0; i < n; i++) {
            names[i] = e.labelNames().get(i);
            values[i] = e.labelValues().get(i);
        }
        if (extraName != null) {
            names[n] = extraName;
            values[n] = extraValue;
        }
        return Labels.of(names, values);
    }

    private static MetricSnapshot snapshot(Family f) {
        if (f.bounds != null) {
            HistogramSnapshot.Builder b = HistogramSnapshot.builder().name(f.name).help(f.help);
            for (Map.Entry<Labels, double[]> s : f.samples.entrySet()) {
                double[] v = s.getValue();
                long[] counts = new long[f.bounds.length];
                for (int i = 0; i < counts.length; i++) counts[i] = (long) v[i];
                b.dataPoint(HistogramSnapshot.HistogramDataPointSnapshot.builder().labels(s.getKey())
                        .classicHistogramBuckets(ClassicHistogramBuckets.of(f.bounds, counts)).sum(v[f.bounds.length]).build());
            }
            return b.build();
        }
        if (f.type == CounterLayout.Type.GAUGE) {
            GaugeSnapshot.Builder b = GaugeSnapshot.builder().name(f.name).help(f.help);
            for (Map.Entry<Labels, double[]> s : f.samples.entrySet()) {
                b.dataPoint(GaugeSnapshot.GaugeDataPointSnapshot.builder().labels(s.getKey()).value(s.getValue()[0]).build());
            }
            return b.build();
        }
        CounterSnapshot.Builder b = CounterSnapshot.builder().name(f.name).help(f.help);
        for (Map.Entry<Labels, double[]> s : f.samples.entrySet()) {
            b.dataPoint(CounterSnapshot.CounterDataPointSnapshot.builder().labels(s.getKey()).value(s.getValue()[0]).build());
        }
        return b.build();
    }
}
