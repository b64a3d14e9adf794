package io.jvhost.cli;

import com.fasterxml.jackson.databind.JsonNode;
import io.jvhost.initiator.BlkInitiator;
import io.jvhost.rpc.Json;
import io.jvhost.rpc.JsonRpcServer;
import io.jvhost.rpc.Methods;
import io.jvhost.runtime.IdleStrategy;
import io.jvhost.vhost.VhostTarget;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;

import static io.jvhost.virtio.BlkLayout.S_OK;
import static org.assertj.core.api.Assertions.assertThat;

/** {@code jvhost top --once} against a real in-process target while a front-end does I/O. */
class TopCommandTest {
    @TempDir
    Path dir;

    @Test
    void onceShowsTheIoThatRunsBetweenItsTwoSamples() throws Exception {
        try (VhostTarget target = new VhostTarget(dir, 1, IdleStrategy.BACKOFF)) {
            Methods methods = new Methods(target);
            Path sock = dir.resolve("rpc.sock");
            JsonRpcServer server = JsonRpcServer.start(sock, methods);
            try {
                methods.call("bdev_malloc_create", Json.MAPPER.readTree("{\"name\":\"Malloc0\",\"num_blocks\":32768,\"block_size\":512}"));
                methods.call("vhost_create_blk_controller", Json.MAPPER.readTree("{\"ctrlr\":\"vhost.0\",\"dev_name\":\"Malloc0\"}"));
                AtomicBoolean stop = new AtomicBoolean();
                AtomicLong done = new AtomicLong();
                CountDownLatch connected = new CountDownLatch(1);
                Thread io = Thread.ofPlatform().name("top-test-io").start(() -> {
                    try (BlkInitiator ini = BlkInitiator.connect(dir.resolve("vhost.0").toString(), 1, 64, 1 << 20)) {
                        connected.countDown();
                        long lba = 0;
                        while (!stop.get()) {
                            if (ini.write(0, lba, 4096) != S_OK) throw new AssertionError("write failed");
                            lba = (lba + 8) % 32768;
                            done.incrementAndGet();
                        }
                    } catch (Exception e) {
                        throw new RuntimeException(e);
                    }
                });
                connected.await();
                RpcCommandTest.Run json, text;
                try {
                    json = RpcCommandTest.raw("top", "-s", sock.toString(), "--once", "--json", "-d", "0.5");
                    text = RpcCommandTest.raw("top", "-s", sock.toString(), "--once", "-d", "0.3");
                } finally {
                    stop.set(true);
                    io.join();
                }
                assertThat(json.exit()).as(json.err()).isZero();
                assertThat(done.get()).isPositive();
                JsonNode j = json.json();
                JsonNode ctrl = j.at("/controllers/0");
                assertThat(ctrl.path("controller").asText()).isEqualTo("vhost.0");
                assertThat(ctrl.path("session").asText()).startsWith("vhost.0#");
                assertThat(ctrl.path("iops").asDouble()).isPositive();
                assertThat(ctrl.path("mib_per_s").asDouble()).isPositive();
                assertThat(ctrl.path("queues")).hasSize(1);
                assertThat(ctrl.at("/queues/0/iops").asDouble()).isEqualTo(ctrl.path("iops").asDouble());
                JsonNode bdev = j.at("/bdevs/0");
                assertThat(bdev.path("bdev").asText()).isEqualTo("Malloc0");
                assertThat(bdev.path("write_per_s").asDouble()).isPositive();
                assertThat(bdev.path("read_per_s").asDouble()).isZero();
                assertThat(bdev.path("wr_lat_us").asDouble()).isPositive();
                assertThat(j.at("/reactors/0/controllers").asText()).isEqualTo("vhost.0");
                assertThat(j.at("/reactors/0/busy_pct").asDouble()).isBetween(0.0, 100.0);

                assertThat(text.exit()).as(text.err()).isZero();
                assertThat(text.out()).contains("jvhost top - " + sock).contains("Reactors:").contains("Controllers:").contains("Bdevs:")
                        .containsPattern("(?m)^reactor_0 +[0-9.]+ .* vhost\\.0$").containsPattern("(?m)^vhost\\.0 +0x1 +vhost\\.0#\\d+ +[1-9]")
                        .containsPattern("(?m)^  q0 +[1-9]").containsPattern("(?m)^Malloc0 +[1-9]").doesNotContain("\033");
            } finally {
                server.close();
            }
        }
    }

    @Test
    void withoutAServerTopSaysWhereItLookedAndWhatToStart() {
        RpcCommandTest.Run r = RpcCommandTest.raw("top", "-s", dir.resolve("no.sock").toString(), "--once");
        assertThat(r.exit()).isEqualTo(1);
        assertThat(r.err().strip()).isEqualTo("jvhost top: RPC socket " + dir.resolve("no.sock")
                + " does not exist (is 'jvhost serve' running? choose the socket with -s)");
        assertThat(RpcCommandTest.raw("top", "--json").err()).contains("--json goes with --once");
        assertThat(RpcCommandTest.raw("top", "-d", "0").exit()).isEqualTo(2);
    }
}
