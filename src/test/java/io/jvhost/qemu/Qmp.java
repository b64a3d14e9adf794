package io.jvhost.qemu;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.Channels;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Predicate;

/**
 * A minimal QMP client over a Unix socket (QEMU started with {@code -qmp unix:PATH,server=on,wait=off}):
 * capabilities negotiation, commands with their return value, events kept for {@link #awaitEvent}.
 * Not thread-safe; one per test.
 */
public final class Qmp implements AutoCloseable {
    private static final ObjectMapper JSON = new ObjectMapper();
    private final SocketChannel ch;
    private final BufferedReader in;
    private final OutputStream out;
    private final List<JsonNode> events = new ArrayList<>();

    private Qmp(SocketChannel ch) throws IOException {
        this.ch = ch;
        this.in = new BufferedReader(new InputStreamReader(Channels.newInputStream(ch), StandardCharsets.UTF_8));
        this.out = Channels.newOutputStream(ch);
        JsonNode greeting = read();
        if (!greeting.has("QMP")) throw new IOException("not a QMP greeting: " + greeting);
        execute("qmp_capabilities", (ObjectNode) null);
    }

    /** Connects to {@code socket}, waiting up to {@code timeout} for QEMU to create it. */
    public static Qmp connect(Path socket, Duration timeout) throws IOException, InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (true) {
            if (Files.exists(socket)) {
                SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX);
                try {
                    ch.connect(UnixDomainSocketAddress.of(socket));
                    return new Qmp(ch);
                } catch (IOException e) {
                    ch.close();
                    if (System.nanoTime() > deadline) throw e;
                }
            } else if (System.nanoTime() > deadline) {
                throw new IOException("QMP socket " + socket + " did not appear within " + timeout);
            }
            Thread.sleep(50); // polling for a file another process creates: there is no signal to wait on
        }
    }

    private JsonNode read() throws IOException {
        String line = in.readLine();
        if (line == null) throw new IOException("QMP connection closed");
        return JSON.readTree(line);
    }

    /** Runs {@code command} with {@code args} (may be null); returns its "return" or throws with QEMU's error. */
    public JsonNode execute(String command, ObjectNode args) throws IOException {
        ObjectNode req = JSON.createObjectNode().put("execute", command);
        if (args != null) req.set("arguments", args);
        out.write((req + "\n").getBytes(StandardCharsets.UTF_8));
        out.flush();
        while (true) {
            JsonNode r = read();
            if (r.has("event")) {
                events.add(r);
                continue;
            }
            if (r.has("error")) throw new IOException("QMP " + command + " failed: " + r.get("error"));
            return r.get("return");
        }
    }

    /** Convenience: arguments as alternating names and values (strings, numbers, booleans). */
    public JsonNode call(String command, Object... kv) throws IOException {
        ObjectNode a = JSON.createObjectNode();
        for (int i = 0; i < kv.length; i += 2) a.set((String) kv[i], JSON.valueToTree(kv[i + 1]));
        return execute(command, a);
    }

    /** Waits for an event named {@code name} matching {@code match} (received before or after this call). */
    public JsonNode awaitEvent(String name, Predicate<JsonNode> match, Duration timeout) throws IOException {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (true) {
            for (JsonNode e : events) {
                if (name.equals(e.path("event").asText()) && match.test(e)) {
                    events.remove(e);
                    return e;
                }
            }
            long left = deadline - System.nanoTime();
            if (left <= 0) throw new IOException("no QMP event " + name + " within " + timeout);
            // A blocking read: QEMU sends events as they happen; a test's own timeout bounds a stuck QEMU.
            JsonNode r = read();
            if (r.has("event")) events.add(r);
        }
    }

    /** Polls {@code query-migrate} until its status is completed (or failed: throws). */
    public JsonNode awaitMigration(Duration timeout) throws IOException, InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (true) {
            JsonNode r = execute("query-migrate", (ObjectNode) null);
            String st = r.path("status").asText();
            if (st.equals("completed")) return r;
            if (st.equals("failed") || st.equals("cancelled")) throw new IOException("migration " + st + ": " + r);
            if (System.nanoTime() > deadline) throw new IOException("migration not completed within " + timeout + ": " + r);
            Thread.sleep(200); // QEMU offers no completion signal on this channel but events; polling is its documented way
        }
    }

    @Override
    public void close() throws IOException {
        ch.close();
    }
}
