package io.jvhost.rpc;

import com.fasterxml.jackson.databind.JsonNode;
import io.jvhost.runtime.IdleStrategy;
import io.jvhost.vhost.VhostTarget;

import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

/** A target with two reactors and its JSON-RPC server on {@code dir/rpc.sock}, plus clients. */
final class RpcFixture implements AutoCloseable {
    final Path dir;
    final VhostTarget target;
    final Methods methods;
    final JsonRpcServer server;
    private final List<RpcClient> clients = new ArrayList<>();

    RpcFixture(Path dir) throws Exception {
        this(dir, JsonStreamSplitter.DEFAULT_MAX_REQUEST);
    }

    RpcFixture(Path dir, int maxRequest) throws Exception {
        this.dir = dir;
        target = new VhostTarget(dir, 2, IdleStrategy.BACKOFF);
        methods = new Methods(target);
        server = JsonRpcServer.start(dir.resolve("rpc.sock"), methods, maxRequest);
    }

    Path socket() {
        return server.path();
    }

    RpcClient client() throws IOException {
        RpcClient c = RpcClient.connect(socket(), Duration.ofSeconds(30));
        clients.add(c);
        return c;
    }

    static JsonNode json(String s) {
        try {
            return Json.MAPPER.readTree(s);
        } catch (IOException e) {
            throw new IllegalArgumentException(s, e);
        }
    }

    /** Calls and expects an error with {@code code}; returns it for message checks. */
    static RpcException fails(RpcClient c, String method, String params, int code) {
        RpcException e = catchThrowableOfType(RpcException.class, () -> c.call(method, params == null ? null : json(params)));
        assertThat(e).as("%s %s should fail", method, params).isNotNull();
        assertThat(e.code()).as("%s %s: %s", method, params, e.getMessage()).isEqualTo(code);
        return e;
    }

    @Override
    public void close() throws Exception {
        for (RpcClient c : clients) {
            try {
                c.close();
            } catch (IOException e) {
                // already gone
            }
        }
        server.close();
        target.close();
    }
}
