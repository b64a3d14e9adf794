package io.jvhost.metrics;

import io.jvhost.runtime.CounterRegistry;
import io.prometheus.metrics.exporter.httpserver.HTTPServer;
import io.prometheus.metrics.instrumentation.jvm.JvmGarbageCollectorMetrics;
import io.prometheus.metrics.instrumentation.jvm.JvmMemoryMetrics;
import io.prometheus.metrics.instrumentation.jvm.JvmThreadsMetrics;
import io.prometheus.metrics.instrumentation.jvm.ProcessMetrics;
import io.prometheus.metrics.model.registry.PrometheusRegistry;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.UnknownHostException;

/**
 * {@code serve --metrics [ADDR:]PORT}: HTTP {@code GET /metrics} in the Prometheus text
 * exposition format, with the Prometheus Java client's HTTP server and text writer. jvhost's
 * own metrics come from the {@link CounterRegistry} (per controller, queue, bdev, reactor),
 * read at scrape time only; the process and JVM metrics (resident memory, CPU, open fds, GC,
 * threads, heap) are the client's standard collectors. Nothing of the client is on the data
 * path: no client-side counter is bumped per request.
 */
public final class MetricsServer implements AutoCloseable {
    private final HTTPServer server;
    private final InetSocketAddress address;

    private MetricsServer(HTTPServer server, InetSocketAddress address) {
        this.server = server;
        this.address = address;
    }

    /**
     * Parses {@code [ADDR:]PORT}: a bare port binds the loopback address 127.0.0.1; ADDR may be
     * a name, an IPv4 address or a bracketed IPv6 address ({@code [::1]:9100}).
     */
    public static InetSocketAddress parse(String spec) {
        String s = spec.strip();
        String host = "127.0.0.1";
        String port = s;
        int colon = s.lastIndexOf(':');
        if (colon >= 0) {
            host = s.substring(0, colon);
            port = s.substring(colon + 1);
            if (host.startsWith("[") && host.endsWith("]")) host = host.substring(1, host.length() - 1);
            if (host.isEmpty()) throw new IllegalArgumentException("--metrics " + spec + ": the address before ':' is empty (give ADDR:PORT or just PORT)");
        }
        int p;
        try {
            p = Integer.parseInt(port);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("--metrics " + spec + ": '" + port + "' is not a port number (give ADDR:PORT or just PORT, e.g. 9100)");
        }
        if (p < 0 || p > 65535) throw new IllegalArgumentException("--metrics " + spec + ": port " + p + " is out of range (0..65535)");
        try {
            return new InetSocketAddress(InetAddress.getByName(host), p);
        } catch (UnknownHostException e) {
            throw new IllegalArgumentException("--metrics " + spec + ": unknown address '" + host + "'");
        }
    }

    /** Starts serving {@code registry} (plus process and JVM metrics) on {@code address}; port 0 picks a free one. */
    public static MetricsServer start(InetSocketAddress address, CounterRegistry registry) {
        PrometheusRegistry prom = new PrometheusRegistry();
        prom.register(new RegistryCollector(registry));
        ProcessMetrics.builder().register(prom);
        JvmGarbageCollectorMetrics.builder().register(prom);
        JvmThreadsMetrics.builder().register(prom);
        JvmMemoryMetrics.builder().register(prom);
        try {
            HTTPServer s = HTTPServer.builder().inetAddress(address.getAddress()).port(address.getPort()).registry(prom).buildAndStart();
            return new MetricsServer(s, new InetSocketAddress(address.getAddress(), s.getPort()));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot serve metrics on " + address + ": " + e.getMessage(), e);
        }
    }

    /** Where it listens (the real port when 0 was asked for). */
    public InetSocketAddress address() {
        return address;
    }

    /** The scrape URL, e.g. {@code http://127.0.0.1:9100/metrics}. */
    public String url() {
        String h = address.getAddress().getHostAddress();
        if (h.contains(":")) h = "[" + h + "]";
        return "http://" + h + ":" + address.getPort() + "/metrics";
    }

    @Override
    public void close() {
        server.close();
    }
}
