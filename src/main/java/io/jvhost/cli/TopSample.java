package io.jvhost.cli;

import com.fasterxml.jackson.databind.JsonNode;
import io.jvhost.rpc.RpcClient;

import java.io.IOException;

/**
 * One snapshot of a running target for {@code jvhost top}: the answers of four read-only RPC
 * methods and when they were taken. Rates come from the difference of two snapshots
 * ({@link TopFrame}); the counters themselves are the ones every RPC client sees.
 *
 * @param nanos       client-side {@link System#nanoTime()} when the snapshot was taken
 * @param reactors    {@code framework_get_reactors}: busy/idle ticks, loops, sleeps per reactor
 * @param controllers {@code vhost_get_controllers}: cpumask and the bdev(s) behind each controller
 * @param vhostStats  {@code vhost_get_stats}: per controller, the live session's queues
 * @param iostat      {@code bdev_get_iostat}: per bdev ops, bytes and latency ticks
 */
record TopSample(long nanos, JsonNode reactors, JsonNode controllers, JsonNode vhostStats, JsonNode iostat) {

    static TopSample take(RpcClient c) throws IOException {
        JsonNode reactors = c.call("framework_get_reactors", null);
        JsonNode controllers = c.call("vhost_get_controllers", null);
        JsonNode vhost = c.call("vhost_get_stats", null);
        JsonNode iostat = c.call("bdev_get_iostat", null);
        return new TopSample(System.nanoTime(), reactors, controllers, vhost, iostat);
    }
}
