package io.jvhost.rpc;

import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.ServerSocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

import static io.jvhost.rpc.RpcFixture.json;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** The JSON-RPC 2.0 transport over a real Unix socket: framing, errors, batches, concurrency, socket lifecycle. */
@org.junit.jupiter.api.Timeout(120)
class JsonRpcServerTest {
    @TempDir
    Path dir;
    RpcFixture f;

    @BeforeEach
    void start() throws Exception {
        f = new RpcFixture(dir);
    }

    @AfterEach
    void stop() throws Exception {
        if (f != null) f.close();
    }

    static byte[] bytes(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    static String req(Object id, String method, String params) {
        return "{\"jsonrpc\":\"2.0\"" + (id == null ? "" : ",\"id\":" + id) + ",\"method\":\"" + method + "\""
                + (params == null ? "" : ",\"params\":" + params) + "}";
    }

    static void assertError(JsonNode resp, JsonNode id, int code) {
        assertThat(resp.path("jsonrpc").asText()).isEqualTo("2.0");
        assertThat(resp.get("id")).as(resp.toString()).isEqualTo(id);
        assertThat(resp.path("error").path("code").asInt()).as(resp.toString()).isEqualTo(code);
        assertThat(resp.path("error").path("message").asText()).isNotBlank();
        assertThat(resp.has("result")).isFalse();
    }

    @Test
    void pipelinedRequestsWithoutFramingAreAnsweredInOrder() throws Exception {
        RpcClient c = f.client();
        // SPDK's rpc.py writes objects back to back without newlines; here three in one write.
        c.send(bytes(req(1, "bdev_malloc_create", "{\"name\":\"M0\",\"num_blocks\":64}")
                + req("\"two\"", "bdev_get_bdevs", "{\"name\":\"M0\"}") + "\n\t " + req(3, "spdk_get_version", null)));
        JsonNode r1 = c.read(), r2 = c.read(), r3 = c.read();
        assertThat(r1.get("id").asInt()).isEqualTo(1);
        assertThat(r1.get("result").asText()).isEqualTo("M0");
        assertThat(r2.get("id").asText()).isEqualTo("two");
        assertThat(r2.get("result").get(0).get("name").asText()).isEqualTo("M0");
        assertThat(r3.get("id").asInt()).isEqualTo(3);
        assertThat(r3.at("/result/version").asText()).startsWith("jvhost v");
        // A request split over several writes is fine too.
        String split = req(4, "rpc_get_methods", null);
        c.send(bytes(split.substring(0, 10)));
        Thread.sleep(50);
        c.send(bytes(split.substring(10)));
        assertThat(c.read().get("id").asInt()).isEqualTo(4);
    }

    @Test
    void parseErrorsAreAnsweredAndTheConnectionStaysUsable() throws Exception {
        RpcClient c = f.client();
        c.send(bytes("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":rpc_get_methods}"));
        assertError(c.read(), json("null"), RpcException.PARSE_ERROR);
        c.send(bytes("hello "));
        assertError(c.read(), json("null"), RpcException.PARSE_ERROR);
        c.send(bytes("{\"a\":1,\"a\":2}"));
        JsonNode dup = c.read();
        assertError(dup, json("null"), RpcException.PARSE_ERROR);
        assertThat(dup.at("/error/message").asText()).contains("Duplicate field 'a'");
        assertThat(c.call("spdk_get_version", null).get("version").asText()).startsWith("jvhost");
    }

    @Test
    void invalidRequestsAreAnsweredWithTheirIdWhenItCanBeRead() throws Exception {
        RpcClient c = f.client();
        c.send(bytes("\"just a string\""));
        assertError(c.read(), json("null"), RpcException.INVALID_REQUEST);
        c.send(bytes("42 "));
        assertError(c.read(), json("null"), RpcException.INVALID_REQUEST);
        c.send(bytes("{\"id\":7,\"method\":\"rpc_get_methods\"}"));
        JsonNode noVersion = c.read();
        assertError(noVersion, json("7"), RpcException.INVALID_REQUEST);
        assertThat(noVersion.at("/error/message").asText()).contains("jsonrpc");
        c.send(bytes("{\"jsonrpc\":\"2.0\",\"id\":8,\"method\":5}"));
        assertError(c.read(), json("8"), RpcException.INVALID_REQUEST);
        c.send(bytes("{\"jsonrpc\":\"2.0\",\"id\":{\"x\":1},\"method\":\"rpc_get_methods\"}"));
        assertError(c.read(), json("null"), RpcException.INVALID_REQUEST);
        // Without an id it is still answered: an invalid request is not a notification.
        c.send(bytes("{\"jsonrpc\":\"1.0\",\"method\":\"rpc_get_methods\"}"));
        assertError(c.read(), json("null"), RpcException.INVALID_REQUEST);
        c.send(bytes(req(9, "no_such_method", null)));
        JsonNode nf = c.read();
        assertError(nf, json("9"), RpcException.METHOD_NOT_FOUND);
        assertThat(nf.at("/error/message").asText()).contains("no_such_method");
        c.send(bytes(req(10, "bdev_get_bdevs", "[\"M0\"]")));
        assertError(c.read(), json("10"), RpcException.INVALID_PARAMS);
        c.send(bytes(req(11, "bdev_get_bdevs", "null")));
        assertThat(c.read().get("result").isArray()).isTrue();
    }

    @Test
    void notificationsRunButAreNeverAnswered() throws Exception {
        RpcClient c = f.client();
        c.send(bytes(req(null, "bdev_malloc_create", "{\"name\":\"N0\",\"num_blocks\":64}")
                + req(null, "no_such_method", null) + req(null, "bdev_malloc_create", "{\"bad\":1}")
                + req(5, "bdev_get_bdevs", null)));
        JsonNode r = c.read();
        assertThat(r.get("id").asInt()).isEqualTo(5);
        assertThat(r.get("result")).extracting(n -> n.get("name").asText()).containsExactly("N0");
    }

    @Test
    void batchesAnswerEveryNonNotificationInOrder() throws Exception {
        RpcClient c = f.client();
        c.send(bytes("[" + req(1, "bdev_null_create", "{\"name\":\"B0\",\"num_blocks\":8}") + ","
                + req(null, "bdev_null_create", "{\"name\":\"B1\",\"num_blocks\":8}") + ","
                + req(2, "nope", null) + ",\"x\"," + req(3, "bdev_get_bdevs", null) + "]"));
        JsonNode r = c.read();
        assertThat(r.isArray()).isTrue();
        assertThat(r).hasSize(4);
        assertThat(r.get(0).get("result").asText()).isEqualTo("B0");
        assertError(r.get(1), json("2"), RpcException.METHOD_NOT_FOUND);
        assertError(r.get(2), json("null"), RpcException.INVALID_REQUEST);
        assertThat(r.get(3).get("result")).extracting(n -> n.get("name").asText()).containsExactly("B0", "B1");

        c.send(bytes("[]"));
        assertError(c.read(), json("null"), RpcException.INVALID_REQUEST);
        // A batch of notifications only: no response at all; the next answer is for id 4.
        c.send(bytes("[" + req(null, "framework_start_init", null) + "]" + req(4, "framework_wait_init", null)));
        assertThat(c.read().get("id").asInt()).isEqualTo(4);
    }

    @Test
    void endOfStreamInsideARequestIsAParseError() throws Exception {
        RpcClient c = f.client();
        c.send(bytes(req(1, "framework_start_init", null) + "{\"jsonrpc\":\"2.0\",\"id\":2,"));
        c.shutdownOutput();
        assertThat(c.read().get("result").asBoolean()).isTrue();
        assertError(c.read(), json("null"), RpcException.PARSE_ERROR);
        assertThatThrownBy(c::read).hasMessageContaining("closed");
    }

    @Test
    void anOversizedRequestIsRefusedAndTheConnectionClosed() throws Exception {
        f.close();
        f = new RpcFixture(dir, 1024);
        RpcClient c = f.client();
        c.send(bytes(req(1, "bdev_get_bdevs", "{\"name\":\"" + "x".repeat(2000) + "\"}")));
        JsonNode r = c.read();
        assertError(r, json("null"), RpcException.PARSE_ERROR);
        assertThat(r.at("/error/message").asText()).contains("longer than 1024");
        assertThatThrownBy(c::read).hasMessageContaining("closed");
        // Other clients are unaffected.
        assertThat(f.client().call("framework_wait_init", null).asBoolean()).isTrue();
    }

    @Test
    void concurrentClientsEachGetTheirOwnAnswers() throws Exception {
        int threads = 8, calls = 200;
        ExecutorService pool = Executors.newFixedThreadPool(threads);
        try {
            List<Future<Integer>> results = new ArrayList<>();
            for (int t = 0; t < threads; t++) {
                int tid = t;
                results.add(pool.submit(() -> {
                    try (RpcClient c = RpcClient.connect(f.socket(), java.time.Duration.ofSeconds(60))) {
                        int ok = 0;
                        for (int i = 0; i < calls; i++) {
                            String name = "T" + tid + "_" + i;
                            switch (i % 4) {
                                case 0 -> assertThat(c.call("bdev_null_create", json("{\"name\":\"" + name + "\",\"num_blocks\":8}")).asText()).isEqualTo(name);
                                case 1 -> assertThat(c.call("bdev_get_bdevs", json("{\"name\":\"T" + tid + "_" + (i - 1) + "\"}")).get(0).get("name").asText())
                                        .isEqualTo("T" + tid + "_" + (i - 1));
                                case 2 -> assertThat(c.call("bdev_null_delete", json("{\"name\":\"T" + tid + "_" + (i - 2) + "\"}")).asBoolean()).isTrue();
                                default -> assertThat(c.call("bdev_malloc_create", json("{\"num_blocks\":8}")).asText()).startsWith("Malloc");
                            }
                            ok++;
                        }
                        return ok;
                    }
                }));
            }
            for (Future<Integer> r : results) assertThat(r.get()).isEqualTo(calls);
        } finally {
            pool.shutdownNow();
        }
        RpcClient c = f.client();
        JsonNode bdevs = c.call("bdev_get_bdevs", null);
        // Every null bdev was deleted again; each thread made calls/4 unnamed malloc bdevs, all with distinct names.
        assertThat(bdevs).allMatch(b -> b.get("name").asText().startsWith("Malloc")).hasSize(threads * calls / 4);
    }

    @Test
    void theSocketFileIsReplacedWhenStaleRefusedWhenLiveAndRemovedOnClose() throws Exception {
        Path sock = f.socket();
        assertThat(sock).exists();
        // A second server on a live socket is refused.
        assertThatThrownBy(() -> JsonRpcServer.start(sock, f.methods)).isInstanceOf(JsonRpcServer.StartException.class)
                .hasMessageContaining(sock.toString()).hasMessageContaining("another process");
        f.close();
        assertThat(sock).doesNotExist();

        // A stale socket file (bound, never served, listener gone) is replaced.
        Path stale = dir.resolve("stale.sock");
        try (ServerSocketChannel s = ServerSocketChannel.open(StandardProtocolFamily.UNIX)) {
            s.bind(UnixDomainSocketAddress.of(stale));
        }
        assertThat(stale).exists();
        RpcFixture g = new RpcFixture(dir);
        try (JsonRpcServer s2 = JsonRpcServer.start(stale, g.methods); RpcClient c = RpcClient.connect(stale, java.time.Duration.ofSeconds(10))) {
            assertThat(c.call("framework_wait_init", null).asBoolean()).isTrue();
            assertThat(s2.path()).isEqualTo(stale);
        } finally {
            g.close();
            f = null;
        }

        Path plain = Files.writeString(dir.resolve("plain"), "x");
        assertThatThrownBy(() -> JsonRpcServer.start(plain, null)).hasMessageContaining("not a socket");
        assertThatThrownBy(() -> JsonRpcServer.start(dir.resolve("no/such/dir/x.sock"), null))
                .hasMessageContaining("does not exist").hasMessageContaining("no/such/dir");
        assertThatThrownBy(() -> RpcClient.connect(dir.resolve("missing.sock"), java.time.Duration.ofSeconds(1)))
                .hasMessageContaining("does not exist");
    }
}
