package io.jvhost.rpc;

import com.fasterxml.jackson.databind.JsonNode;
import io.jvhost.runtime.IdleStrategy;
import io.jvhost.sys.SocketAccess;
import io.jvhost.vhost.VhostTarget;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static io.jvhost.rpc.RpcFixture.json;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

/**
 * Issue 15 items 4, 6 and 7e on the RPC socket: idle clients cannot lock the operator out, the
 * socket is owner-only, peers are checked, and junk gets an answer.
 */
@org.junit.jupiter.api.Timeout(180)
class RpcServerHardeningTest {
    @TempDir
    Path dir;
    VhostTarget target;
    Methods methods;
    JsonRpcServer server;
    final List<RpcClient> clients = new ArrayList<>();

    @BeforeEach
    void setUp() {
        target = new VhostTarget(dir, 1, IdleStrategy.BACKOFF);
        methods = new Methods(target);
    }

    @AfterEach
    void tearDown() throws Exception {
        for (RpcClient c : clients) c.close();
        if (server != null) server.close();
        target.close();
    }

    RpcClient connect() throws Exception {
        RpcClient c = RpcClient.connect(server.path(), Duration.ofSeconds(30));
        clients.add(c);
        return c;
    }

    static byte[] bytes(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    @Test
    void sixtyFourIdleConnectionsDoNotLockTheOperatorOut() throws Exception {
        server = JsonRpcServer.start(dir.resolve("rpc.sock"), methods); // defaults: 64 clients, 60 s idle timeout
        List<RpcClient> idle = new ArrayList<>();
        for (int i = 0; i < JsonRpcServer.MAX_CLIENTS; i++) idle.add(connect());
        await().atMost(Duration.ofSeconds(30)).until(() -> server.clientCount() == JsonRpcServer.MAX_CLIENTS);
        // The operator comes in (it was closed at once before) and is served; the longest-idle
        // connection made room.
        RpcClient operator = connect();
        assertThat(operator.call("spdk_get_version", null).get("version").asText()).startsWith("jvhost");
        assertThatThrownBy(idle.get(0)::read).hasMessageContaining("closed");
        // A client that is working is not the one evicted: the operator again, plus more newcomers.
        for (int i = 0; i < 5; i++) {
            assertThat(connect().call("framework_wait_init", null).asBoolean()).isTrue();
            assertThat(operator.call("framework_wait_init", null).asBoolean()).isTrue();
        }
    }

    @Test
    void idleClientsAreDisconnectedAndHalfARequestIsAnsweredFirst() throws Exception {
        server = JsonRpcServer.start(dir.resolve("rpc.sock"), methods, JsonRpcServer.Options.defaults().withIdleTimeout(Duration.ofSeconds(1)));
        RpcClient busy = connect();
        // A client that keeps completing requests stays (each call resets its timer).
        var keepBusy = java.util.concurrent.CompletableFuture.runAsync(() -> {
            long until = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(3000);
            try {
                while (System.nanoTime() < until) assertThat(busy.call("framework_wait_init", null).asBoolean()).isTrue();
            } catch (java.io.IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
        });
        RpcClient quiet = connect();
        RpcClient partial = connect();
        partial.send(bytes("[1,2")); // can never be resynchronised: answered when the client is timed out
        JsonNode r = partial.read();
        assertThat(r.at("/error/code").asInt()).isEqualTo(RpcException.PARSE_ERROR);
        assertThat(r.at("/error/message").asText()).contains("incomplete").contains("no complete request within 1 s");
        assertThatThrownBy(partial::read).hasMessageContaining("closed");
        assertThatThrownBy(quiet::read).hasMessageContaining("closed");
        // Our client comes back by itself: the request it could not write goes out on a new connection.
        assertThat(quiet.call("framework_wait_init", null).asBoolean()).isTrue();
        keepBusy.get(60, TimeUnit.SECONDS);
        assertThat(busy.call("framework_wait_init", null).asBoolean()).isTrue();
        await().atMost(Duration.ofSeconds(30)).until(() -> server.clientCount() <= 1);
    }

    @Test
    void anIdleTimeoutOfZeroNeverDisconnects() throws Exception {
        server = JsonRpcServer.start(dir.resolve("rpc.sock"), methods, JsonRpcServer.Options.defaults().withIdleTimeout(Duration.ZERO).withMaxClients(2));
        RpcClient a = connect();
        RpcClient b = connect();
        await().until(() -> server.clientCount() == 2);
        // Still: a third client evicts the longest-idle one instead of being refused.
        assertThat(connect().call("framework_wait_init", null).asBoolean()).isTrue();
        assertThatThrownBy(a::read).hasMessageContaining("closed");
        assertThat(b.call("framework_wait_init", null).asBoolean()).isTrue();
    }

    @Test
    void bareScalarsAndStrayBracketsAreAnsweredAtOnceAndTheConnectionGoesOn() throws Exception {
        server = JsonRpcServer.start(dir.resolve("rpc.sock"), methods);
        RpcClient c = connect();
        // Regression: each of these got no reply at all (the splitter waited for a delimiter).
        c.send(bytes("}}}"));
        assertThat(c.read().at("/error/code").asInt()).isEqualTo(RpcException.PARSE_ERROR);
        c.send(bytes("null"));
        JsonNode n = c.read();
        assertThat(n.at("/error/code").asInt()).isEqualTo(RpcException.INVALID_REQUEST);
        assertThat(n.get("id").isNull()).isTrue();
        c.send(bytes("123"));
        assertThat(c.read().at("/error/code").asInt()).isEqualTo(RpcException.INVALID_REQUEST);
        assertThat(c.call("spdk_get_version", null).get("version").asText()).startsWith("jvhost");
        // 100k nested arrays: one parse error (Jackson's nesting limit), no stack overflow, connection usable.
        c.send(bytes("[".repeat(100_000) + "]".repeat(100_000)));
        JsonNode deep = c.read();
        assertThat(deep.at("/error/code").asInt()).isEqualTo(RpcException.PARSE_ERROR);
        assertThat(deep.at("/error/message").asText()).containsIgnoringCase("nesting");
        assertThat(c.call("spdk_get_version", null).get("version").asText()).startsWith("jvhost");
        // "[1,2" cannot be resynchronised: with the default options it is answered once it has
        // stalled for a few seconds (not after the whole 60 s idle timeout), then closed.
        RpcClient d = connect();
        d.send(bytes("[1,2"));
        JsonNode r = d.read();
        assertThat(r.at("/error/code").asInt()).isEqualTo(RpcException.PARSE_ERROR);
        assertThat(r.at("/error/message").asText()).contains("stayed incomplete for " + JsonRpcServer.STALLED_REQUEST_TIMEOUT.toSeconds() + " s");
        assertThatThrownBy(d::read).hasMessageContaining("closed");
        assertThat(c.call("spdk_get_version", null).get("version").asText()).startsWith("jvhost");
    }

    @Test
    void theRpcSocketIsOwnerOnlyByDefaultAndTakesTheConfiguredModeAndGroup() throws Exception {
        server = JsonRpcServer.start(dir.resolve("rpc.sock"), methods);
        Path p = server.path();
        assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(p, LinkOption.NOFOLLOW_LINKS))).isEqualTo("rw-------");
        assertThat(connect().call("framework_wait_init", null).asBoolean()).isTrue();
        server.close();
        assertThat(p).doesNotExist();
        server = JsonRpcServer.start(dir.resolve("rpc.sock"), methods, JsonRpcServer.Options.defaults().withAccess(SocketAccess.parse("0660", "daemon")));
        assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(p, LinkOption.NOFOLLOW_LINKS))).isEqualTo("rw-rw----");
        assertThat((Integer) Files.getAttribute(p, "unix:gid", LinkOption.NOFOLLOW_LINKS)).isEqualTo(1);
        assertThat(connect().call("framework_wait_init", null).asBoolean()).isTrue();
        // No private binding directory is left behind.
        try (var files = Files.list(dir)) {
            assertThat(files.map(f -> f.getFileName().toString())).containsExactly("rpc.sock");
        }
    }

    /** Connects as user nobody (needs root and setpriv) and returns what the server said, or "EOF". */
    static String callAsNobody(Path socket) throws Exception {
        return callAsNobody(socket, "--clear-groups");
    }

    static String callAsNobody(Path socket, String groupsArg) throws Exception {
        String py = "import socket,sys\n"
                + "s=socket.socket(socket.AF_UNIX)\n"
                + "try:\n s.connect(sys.argv[1])\nexcept OSError as e:\n print('CONNECT', e.errno); sys.exit(0)\n"
                + "s.settimeout(20)\n"
                + "try:\n s.sendall(b'{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"framework_wait_init\"}')\n d=s.recv(4096)\nexcept OSError as e:\n d=b''\n"
                + "print(d.decode() if d else 'EOF')\n";
        Process p = new ProcessBuilder("setpriv", "--reuid=65534", "--regid=65534", groupsArg, "/usr/bin/python3", "-c", py, socket.toString())
                .redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
        assertThat(p.waitFor(60, TimeUnit.SECONDS)).isTrue();
        return out;
    }

    @Test
    void peerCredentialsAreCheckedUnlessTurnedOff() throws Exception {
        org.junit.jupiter.api.Assumptions.assumeTrue("root".equals(System.getProperty("user.name")) && Files.isExecutable(Path.of("/usr/bin/setpriv"))
                && Files.isExecutable(Path.of("/usr/bin/python3")), "needs root, setpriv and python3");
        Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxr-xr-x"));
        // Default mode 0600: the file permissions already keep user nobody out.
        server = JsonRpcServer.start(dir.resolve("rpc.sock"), methods);
        assertThat(callAsNobody(server.path())).isEqualTo("CONNECT 13"); // EACCES
        server.close();
        // World-writable by mistake: the peer check still refuses nobody.
        server = JsonRpcServer.start(dir.resolve("rpc.sock"), methods, JsonRpcServer.Options.defaults().withAccess(SocketAccess.parse("0666", null)));
        assertThat(callAsNobody(server.path())).isEqualTo("EOF");
        server.close();
        // A member of the socket group by a supplementary group (SO_PEERCRED shows only the primary
        // one) is let in: with no write access for others, connect(2) proved the membership.
        server = JsonRpcServer.start(dir.resolve("rpc.sock"), methods, JsonRpcServer.Options.defaults().withAccess(SocketAccess.parse("0660", "daemon")));
        assertThat(callAsNobody(server.path(), "--groups=1")).contains("\"result\":true");
        assertThat(callAsNobody(server.path())).isEqualTo("CONNECT 13");
        server.close();
        // Turned off: the file permissions alone decide.
        server = JsonRpcServer.start(dir.resolve("rpc.sock"), methods,
                JsonRpcServer.Options.defaults().withAccess(SocketAccess.parse("0666", null)).withPeerCheck(false));
        assertThat(callAsNobody(server.path())).contains("\"result\":true");
        // Root is always let in.
        assertThat(connect().call("framework_wait_init", null).asBoolean()).isTrue();
    }
}
