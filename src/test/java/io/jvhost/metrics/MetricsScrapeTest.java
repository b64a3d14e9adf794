package io.jvhost.metrics;

import io.jvhost.bdev.MallocBlockDevice;
import io.jvhost.initiator.BlkInitiator;
import io.jvhost.runtime.CounterLayout;
import io.jvhost.runtime.CounterRegistry;
import io.jvhost.runtime.CounterSet;
import io.jvhost.runtime.IdleStrategy;
import io.jvhost.vhost.VhostTarget;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;

import static io.jvhost.virtio.BlkLayout.S_OK;
import static io.jvhost.virtio.BlkLayout.T_GET_ID;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * The Prometheus endpoint served over real HTTP from an in-process target: a blk controller on
 * a malloc bdev driven by our own initiator, scraped before and after a known amount of I/O.
 */
class MetricsScrapeTest {
    private static final String CTRLR = "scrape.0", BDEV = "ScrapeMalloc0";

    @TempDir
    Path dir;
    VhostTarget target;
    MetricsServer metrics;
    final HttpClient http = HttpClient.newHttpClient();

    @BeforeEach
    void setUp() {
        target = new VhostTarget(dir, 1, IdleStrategy.BACKOFF);
        target.bdevs().register(new MallocBlockDevice(BDEV, 64 * 2048, 512, null));
        target.createBlkController(CTRLR, BDEV, false, 2, null);
        metrics = MetricsServer.start(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), CounterRegistry.global());
    }

    @AfterEach
    void tearDown() {
        metrics.close();
        target.close();
    }

    private String scrapeText() throws Exception {
        HttpResponse<String> r = http.send(HttpRequest.newBuilder(URI.create(metrics.url())).timeout(Duration.ofSeconds(30)).build(),
                HttpResponse.BodyHandlers.ofString());
        assertThat(r.statusCode()).isEqualTo(200);
        assertThat(r.headers().firstValue("content-type").orElse("")).startsWith("text/plain");
        return r.body();
    }

    private Exposition scrape() throws Exception {
        return Exposition.parse(scrapeText());
    }

    /** A series not there yet (its owner has not started) has counted nothing. */
    private static double valueOr0(Exposition e, String name, String... labels) {
        return e.has(name, labels) ? e.value(name, labels) : 0;
    }

    @Test
    void queueAndBdevCountersMoveByExactlyTheIoDone() throws Exception {
        try (BlkInitiator ini = BlkInitiator.connect(dir.resolve(CTRLR).toString(), 1, 128, 1 << 20)) {
            Exposition before = scrape();
            String[] q0 = {"ctrlr", CTRLR, "queue", "0"};
            int writes = 11, reads = 7;
            for (int i = 0; i < writes; i++) assertThat(ini.write(0, 8L * i, 4096)).isEqualTo(S_OK);
            for (int i = 0; i < reads; i++) assertThat(ini.read(0, 16L * i, 8192)).isEqualTo(S_OK);
            // One request that fails (beyond the end of the disk): a request error, no bytes.
            assertThat(ini.read(0, 64 * 2048, 512)).isNotEqualTo(S_OK);
            // GET_ID moves data to the guest but is not a read of the disk: no bytes counted.
            assertThat(ini.request(0, T_GET_ID, 0, 20, 20, Duration.ofSeconds(10)).status()).isEqualTo(S_OK);
            Exposition after = scrape();

            assertThat(after.value("jvhost_queue_requests_total", q0) - valueOr0(before, "jvhost_queue_requests_total", q0))
                    .isEqualTo(writes + reads + 2);
            assertThat(after.value("jvhost_queue_written_bytes_total", q0) - valueOr0(before, "jvhost_queue_written_bytes_total", q0))
                    .isEqualTo(writes * 4096.0);
            assertThat(after.value("jvhost_queue_read_bytes_total", q0) - valueOr0(before, "jvhost_queue_read_bytes_total", q0))
                    .isEqualTo(reads * 8192.0);
            String[] reqErr = {"ctrlr", CTRLR, "queue", "0", "kind", "request"};
            assertThat(after.value("jvhost_queue_errors_total", reqErr) - valueOr0(before, "jvhost_queue_errors_total", reqErr)).isEqualTo(1);
            assertThat(after.value("jvhost_queue_errors_total", "ctrlr", CTRLR, "queue", "0", "kind", "chain")).isZero();
            assertThat(after.value("jvhost_queue_in_flight", q0)).isZero();

            String[] rd = {"bdev", BDEV, "op", "read"};
            String[] wr = {"bdev", BDEV, "op", "write"};
            assertThat(after.value("jvhost_bdev_ops_total", rd) - valueOr0(before, "jvhost_bdev_ops_total", rd)).isEqualTo(reads);
            assertThat(after.value("jvhost_bdev_ops_total", wr) - valueOr0(before, "jvhost_bdev_ops_total", wr)).isEqualTo(writes);
            assertThat(after.value("jvhost_bdev_bytes_total", rd) - valueOr0(before, "jvhost_bdev_bytes_total", rd)).isEqualTo(reads * 8192.0);
            assertThat(after.value("jvhost_bdev_bytes_total", wr) - valueOr0(before, "jvhost_bdev_bytes_total", wr)).isEqualTo(writes * 4096.0);
            // The histogram counts every successful read once; its +Inf bucket is the count; the
            // buckets are cumulative; the latency sum grew.
            assertThat(after.value("jvhost_bdev_latency_seconds_count", rd) - valueOr0(before, "jvhost_bdev_latency_seconds_count", rd))
                    .isEqualTo(reads);
            assertThat(after.value("jvhost_bdev_latency_seconds_bucket", "bdev", BDEV, "op", "read", "le", "+Inf"))
                    .isEqualTo(after.value("jvhost_bdev_latency_seconds_count", rd));
            double prev = 0;
            for (Exposition.Sample s : after.samples) {
                if (!s.name().equals("jvhost_bdev_latency_seconds_bucket") || !BDEV.equals(s.labels().get("bdev")) || !"read".equals(s.labels().get("op"))) continue;
                assertThat(s.value()).isGreaterThanOrEqualTo(prev);
                prev = s.value();
            }
            assertThat(after.value("jvhost_bdev_latency_seconds_sum", rd)).isGreaterThan(valueOr0(before, "jvhost_bdev_latency_seconds_sum", rd));
            // Two series with a bdev label and op="read" exist in one family only once (sets of several threads are summed).
            assertThat(after.value("jvhost_bdev_io_errors_total", "bdev", BDEV)).isZero(); // the out-of-range read never reached the bdev

            assertThat(after.value("jvhost_controller_connections_total", "ctrlr", CTRLR)).isEqualTo(1);
            String[] busy = {"reactor", "0", "state", "busy"};
            assertThat(after.value("jvhost_reactor_loops_total", busy)).isGreaterThan(valueOr0(before, "jvhost_reactor_loops_total", busy));
            assertThat(after.value("jvhost_reactor_busy_seconds_total", "reactor", "0")).isPositive();
            assertThat(after.value("jvhost_reactor_pollables", "reactor", "0")).isGreaterThanOrEqualTo(1);

            // Process and JVM metrics come with it.
            assertThat(after.value("process_resident_memory_bytes")).isPositive();
            assertThat(after.value("jvm_threads_current")).isPositive();
            assertThat(after.families).containsKey("jvm_gc_collection_seconds");
        }
        // Once the front-end has gone, its queues' series go too (the session stopped them).
        org.awaitility.Awaitility.await().atMost(Duration.ofSeconds(30))
                .until(() -> !scrape().has("jvhost_queue_requests_total", "ctrlr", CTRLR, "queue", "0"));
    }

    @Test
    void everySampleBelongsToADeclaredFamilyAndLabelValuesAreEscaped() throws Exception {
        CounterLayout.Builder b = CounterLayout.builder("test");
        int slot = b.counter("odd", "jvhost_test_odd_labels", "A counter with an awkward label value");
        CounterSet set = new CounterSet(b.build());
        set.add(slot, 42);
        String awkward = "back\\slash \"quoted\"\nnew line";
        CounterRegistry.Entry e = CounterRegistry.global().publish(set, "name", awkward);
        try {
            String text = scrapeText();
            // The strict parser checks the whole text: HELP and TYPE before every family's
            // contiguous samples, valid names, only the three escapes, numeric values.
            Exposition x = Exposition.parse(text);
            assertThat(text).contains("name=\"back\\\\slash \\\"quoted\\\"\\nnew line\"");
            assertThat(x.value("jvhost_test_odd_labels_total", "name", awkward)).isEqualTo(42);
            for (Exposition.Family f : x.families.values()) {
                assertThat(f.help()).as("HELP of " + f.name()).isNotBlank();
                if (f.name().startsWith("jvhost_") && f.type().equals("counter")) assertThat(f.name()).endsWith("_total");
                if (f.name().contains("seconds")) assertThat(f.name()).matches(".*_seconds(_total)?");
            }
            assertThat(x.families.get("jvhost_bdev_latency_seconds") == null || x.families.get("jvhost_bdev_latency_seconds").type().equals("histogram")).isTrue();
        } finally {
            CounterRegistry.global().withdraw(e);
        }
        assertThat(scrape().has("jvhost_test_odd_labels_total", "name", awkward)).isFalse();
    }

    @Test
    void theStrictParserRejectsWhatItShould() {
        assertThatThrownBy(() -> Exposition.parse("orphan 1\n")).hasMessageContaining("no declared family");
        assertThatThrownBy(() -> Exposition.parse("# HELP a x\n# TYPE a counter\na{l=\"bad\\q\"} 1\n")).hasMessageContaining("bad escape");
        assertThatThrownBy(() -> Exposition.parse("# HELP a x\n# TYPE a gauge\na_bucket{le=\"1\"} 1\n")).hasMessageContaining("no declared family");
        assertThatThrownBy(() -> Exposition.parse("# HELP a x\n# TYPE a gauge\na one\n")).hasMessageContaining("not a number");
        assertThatThrownBy(() -> Exposition.parse("# HELP a x\n# TYPE a gauge\n# HELP b x\n# TYPE b gauge\nb 1\na 1\n"))
                .hasMessageContaining("not with the rest");
    }

    @Test
    void theAddressDefaultsToLoopback() {
        assertThat(MetricsServer.parse("9100")).isEqualTo(new InetSocketAddress(InetAddress.getLoopbackAddress(), 9100));
        assertThat(MetricsServer.parse("0.0.0.0:9100").getAddress().isAnyLocalAddress()).isTrue();
        assertThat(MetricsServer.parse("[::1]:9100").getAddress().isLoopbackAddress()).isTrue();
        assertThatThrownBy(() -> MetricsServer.parse("x")).isInstanceOf(IllegalArgumentException.class).hasMessageContaining("not a port");
        assertThatThrownBy(() -> MetricsServer.parse(":9100")).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> MetricsServer.parse("70000")).isInstanceOf(IllegalArgumentException.class);
    }
}
