package io.jvhost.rpc;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.Channels;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;

/**
 * A JSON-RPC 2.0 client for a Unix socket, speaking to jvhost (or SPDK) the way SPDK's
 * {@code rpc.py} does: requests written back to back with no framing, responses read as a
 * stream of JSON values. One caller at a time.
 */
public final class RpcClient implements AutoCloseable {
    private static final ObjectMapper STREAM = new ObjectMapper();

    private final Path socket;
    private SocketChannel channel;
    private JsonParser responses;
    private final Duration timeout;
    private int nextId = 1;
    private volatile boolean timedOut;

    private RpcClient(Path socket, SocketChannel channel, Duration timeout) throws IOException {
        this.socket = socket;
        this.timeout = timeout;
        attach(channel);
    }

    private void attach(SocketChannel ch) throws IOException {
        this.channel = ch;
        // A Reader, not the InputStream: Jackson's byte bootstrap reads ahead to sniff the
        // encoding, which would block here until the server says something.
        this.responses = STREAM.getFactory().createParser(
                new java.io.InputStreamReader(Channels.newInputStream(ch), java.nio.charset.StandardCharsets.UTF_8));
    }

    /** Connects; the message of a failure names the socket and the likely cause. */
    public static RpcClient connect(Path socket, Duration timeout) throws IOException {
        return new RpcClient(socket, open(socket), timeout);
    }

    private static SocketChannel open(Path socket) throws IOException {
        if (!Files.exists(socket)) {
            throw new IOException("RPC socket " + socket + " does not exist (is 'jvhost serve' running? choose the socket with -s)");
        }
        SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX);
        try {
            ch.connect(UnixDomainSocketAddress.of(socket));
        } catch (IOException e) {
            ch.close();
            throw new IOException("cannot connect to RPC socket " + socket + ": " + e.getMessage() + " (is 'jvhost serve' running?)");
        }
        return ch;
    }

    /** Calls {@code method}; returns its result or throws the server's error as an {@link RpcException}. */
    public JsonNode call(String method, JsonNode params) throws IOException {
        ObjectNode req = Json.obj();
        req.put("jsonrpc", "2.0");
        req.put("method", method);
        int id = nextId++;
        req.put("id", id);
        if (params != null && !params.isNull() && !(params.isObject() && params.isEmpty())) req.set("params", params);
        byte[] bytes = Json.MAPPER.writeValueAsBytes(req);
        try {
            send(bytes);
        } catch (IOException e) {
            // The server closes idle clients (serve --rpc-idle-timeout): a write to a closed Unix
            // socket fails at once (EPIPE), so the request never arrived and is safe to resend
            // on a new connection.
            reconnect();
            send(bytes);
        }
        JsonNode resp = read();
        if (resp.path("id").asInt(-1) != id) throw new IOException("response id " + resp.path("id") + " does not match request id " + id);
        JsonNode err = resp.get("error");
        if (err != null) throw new RpcException(err.path("code").asInt(RpcException.INTERNAL_ERROR), err.path("message").asText("(no message)"));
        if (!resp.has("result")) throw new IOException("response without result or error: " + resp);
        return resp.get("result");
    }

    /** Writes raw bytes (tests: pipelining, malformed input). */
    public void send(byte[] bytes) throws IOException {
        ByteBuffer b = ByteBuffer.wrap(bytes);
        while (b.hasRemaining()) channel.write(b);
    }

    /** Reads the next JSON value the server sent; fails after the timeout or at end of stream. */
    public JsonNode read() throws IOException {
        Thread watchdog = Thread.ofVirtual().start(() -> {
            try {
                Thread.sleep(timeout);
                timedOut = true;
                channel.close();
            } catch (InterruptedException | IOException e) {
                // answered in time
            }
        });
        try {
            if (responses.nextToken() == null) throw new IOException("the server closed the connection");
            return STREAM.readTree(responses);
        } catch (IOException e) {
            if (timedOut) throw new IOException("no response within " + timeout.toSeconds() + " s");
            throw e;
        } finally {
            watchdog.interrupt();
        }
    }

    private void reconnect() throws IOException {
        try {
            responses.close();
            channel.close();
        } catch (IOException ignored) {
            // the old connection is gone anyway
        }
        attach(open(socket));
    }

    /** Half-closes: the server sees end of stream but may still answer. */
    public void shutdownOutput() throws IOException {
        channel.shutdownOutput();
    }

    @Override
    public void close() throws IOException {
        responses.close();
        channel.close();
    }
}
