package io.jvhost.runtime;

import org.junit.jupiter.api.Test;

import java.util.concurrent.atomic.AtomicBoolean;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** The counter registry's contract: one owner writes, anyone reads, nothing torn or lost. */
class CounterSetTest {
    static final CounterLayout LAYOUT;
    static final int A, B, G;

    static {
        CounterLayout.Builder b = CounterLayout.builder("test");
        A = b.counter("a", "test_a", "a");
        B = b.counter("b", "test_b", "b");
        G = b.gauge("g", "test_g", "g");
        LAYOUT = b.build();
    }

    /**
     * A writer thread bumps two counters with owner stores while a reader thread reads them
     * concurrently: every value the reader sees is at least the one before (monotonic, so no
     * torn or out-of-thin-air value), and once the writer is done the reader sees the exact
     * final counts, although the writer used no atomic instruction. The writer goes on until
     * the reader has read 100,000 times, so the two really overlap.
     */
    @Test
    void aReaderSeesMonotonicValuesAndTheExactFinalCountOfAnOwnerWriter() throws Exception {
        CounterSet set = new CounterSet(LAYOUT);
        AtomicBoolean stop = new AtomicBoolean();
        AtomicBoolean done = new AtomicBoolean();
        long[] written = new long[1];
        Thread writer = Thread.ofPlatform().name("owner").start(() -> {
            long i = 0;
            while (!stop.get()) {
                set.incrementOwned(A);
                set.addOwned(B, 3);
                set.setOwned(G, i);
                i++;
            }
            written[0] = i;
            done.set(true); // publishes written[0]
        });
        long lastA = 0, lastB = 0, reads = 0;
        while (true) {
            boolean finished = done.get(); // read before the counters: then they are final
            long a = set.get(A);
            long b = set.get(B);
            assertThat(a).isGreaterThanOrEqualTo(lastA);
            assertThat(b).isGreaterThanOrEqualTo(lastB);
            assertThat(b % 3).isZero();
            lastA = a;
            lastB = b;
            if (++reads == 100_000) stop.set(true);
            if (finished) break;
        }
        writer.join();
        long n = written[0];
        assertThat(n).isPositive();
        assertThat(lastA).isEqualTo(n);
        assertThat(lastB).isEqualTo(3 * n);
        assertThat(set.get(G)).isEqualTo(n - 1);
    }

    /** The atomic (control-path) add loses nothing with several writers. */
    @Test
    void atomicIncrementsFromSeveralThreadsAreExact() throws Exception {
        CounterSet set = new CounterSet(LAYOUT);
        Counter c = set.counter(A);
        Thread[] ts = new Thread[4];
        for (int i = 0; i < ts.length; i++) {
            ts[i] = Thread.ofPlatform().start(() -> {
                for (int k = 0; k < 100_000; k++) c.incrementAndGet();
            });
        }
        for (Thread t : ts) t.join();
        assertThat(c.get()).isEqualTo(400_000);
        assertThat(set.get(A)).isEqualTo(400_000);
        assertThat(set.get(B)).isZero();
    }

    @Test
    void theRegistryListsWhatIsPublishedUntilItIsWithdrawn() {
        CounterRegistry r = new CounterRegistry();
        CounterSet s1 = new CounterSet(LAYOUT);
        CounterSet s2 = new CounterSet(LAYOUT);
        CounterRegistry.Entry e1 = r.publish(s1, "owner", "one");
        CounterRegistry.Entry e2 = r.publish(s2, "owner", "two", "queue", "0");
        assertThat(r.entries()).containsExactly(e1, e2);
        assertThat(e2.labelNames()).containsExactly("owner", "queue");
        assertThat(e2.labelValues()).containsExactly("two", "0");
        r.withdraw(e1);
        r.withdraw(e1);
        r.withdraw(null);
        assertThat(r.entries()).containsExactly(e2);
        assertThatThrownBy(() -> r.publish(s1, "odd")).isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void aHistogramNeedsAnInfiniteLastBucketAndReservesBucketsAndSum() {
        CounterLayout.Builder b = CounterLayout.builder("h");
        assertThatThrownBy(() -> b.histogram("x", "h_x", "x", null, null, new double[] {1, 2}, 1))
                .isInstanceOf(IllegalArgumentException.class);
        int first = b.histogram("x", "h_x", "x", "op", "read", new double[] {1, 2, Double.POSITIVE_INFINITY}, 1e-9);
        int after = b.counter("y", "h_y", "y");
        CounterLayout l = b.build();
        assertThat(first).isZero();
        assertThat(after).isEqualTo(4); // three buckets and the sum
        assertThat(l.histograms().get(0).sumSlot()).isEqualTo(3);
        assertThat(l.slots().get(3).type()).isEqualTo(CounterLayout.Type.HIDDEN);
    }
}
