package io.jvhost.rpc;

import com.fasterxml.jackson.databind.node.NullNode;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.AccessDeniedException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The JSON-RPC 2.0 server on a Unix stream socket, speaking SPDK's methods (SPDK: {@code -r},
 * default {@code /var/tmp/spdk.sock}; jvhost: {@code /var/tmp/jvhost.sock}).
 *
 * <p>One platform thread accepts; each client is served by its own virtual thread, so several
 * clients are served at once (method calls themselves run one at a time, see {@link Methods}).
 * A connection carries any number of requests, pipelined and unframed (JSON texts one after
 * another, whitespace optional); responses come back in request order, each followed by a
 * newline. Control path only: nothing here touches a reactor except through the methods.
 *
 * <p>The socket file is created at start (a stale one left by a crashed process is replaced; one
 * with a live server behind it is an error) and removed by {@link #close()}.
 */
public final class JsonRpcServer implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(JsonRpcServer.class);
    public static final String DEFAULT_SOCKET = "/var/tmp/jvhost.sock";
    /** More simultaneous clients than this are refused (closed at once) with a log line. */
    public static final int MAX_CLIENTS = 64;

    /** The socket could not be created; the message says which path and why. */
    public static final class StartException extends Exception {
        public StartException(String message) {
            super(message);
        }
    }

    private final Path path;
    private final JsonRpcHandler handler;
    private final ServerSocketChannel server;
    private final Set<SocketChannel> clients = ConcurrentHashMap.newKeySet();
    private final AtomicInteger clientIds = new AtomicInteger();
    private final Thread acceptThread;
    private final int maxRequest;
    private volatile boolean closed;

    private JsonRpcServer(Path path, Methods methods, ServerSocketChannel server, int maxRequest) {
        this.path = path;
        this.handler = new JsonRpcHandler(methods);
        this.server = server;
        this.maxRequest = maxRequest;
        this.acceptThread = Thread.ofPlatform().name("rpc-accept").daemon(true).start(this::acceptLoop);
        log.info("JSON-RPC server listening on {}", path);
    }

    public static JsonRpcServer start(Path path, Methods methods) throws StartException {
        return start(path, methods, JsonStreamSplitter.DEFAULT_MAX_REQUEST);
    }

    public static JsonRpcServer start(Path path, Methods methods, int maxRequest) throws StartException {
        Path p = path.toAbsolutePath();
        removeStaleSocket(p);
        ServerSocketChannel s = null;
        try {
            s = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
            s.bind(UnixDomainSocketAddress.of(p));
            return new JsonRpcServer(p, methods, s, maxRequest);
        } catch (IOException | RuntimeException e) {
            closeQuietly(s);
            throw new StartException("cannot create the RPC socket " + p + ": " + why(p, e));
        }
    }

    private static String why(Path p, Exception e) {
        Path dir = p.getParent();
        if (dir != null && !Files.isDirectory(dir)) return "directory " + dir + " does not exist";
        if (dir != null && !Files.isWritable(dir)) return "directory " + dir + " is not writable";
        if (p.toString().getBytes().length > 107) return "the path is longer than a Unix socket allows (107 bytes)";
        if (e instanceof AccessDeniedException) return "permission denied";
        String m = e.getMessage();
        return m == null ? e.toString() : m;
    }

    /** A socket file nobody listens on is left over from a crash: remove it. Anything else is an error. */
    private static void removeStaleSocket(Path p) throws StartException {
        if (!Files.exists(p, LinkOption.NOFOLLOW_LINKS)) return;
        boolean socket;
        try {
            int mode = (Integer) Files.getAttribute(p, "unix:mode", LinkOption.NOFOLLOW_LINKS);
            socket = (mode & 0170000) == 0140000;
        } catch (IOException | UnsupportedOperationException | IllegalArgumentException e) {
            socket = false;
        }
        if (!socket) throw new StartException("cannot create the RPC socket " + p + ": the path exists and is not a socket (remove it or choose another path with -r)");
        boolean live = false;
        try (SocketChannel probe = SocketChannel.open(UnixDomainSocketAddress.of(p))) {
            live = true;
        } catch (IOException e) {
            // Connection refused: nobody listens, the file is stale.
        }
        if (live) throw new StartException("cannot create the RPC socket " + p + ": another process is serving on it (stop it, or choose another path with -r)");
        try {
            Files.deleteIfExists(p);
            log.info("removed stale RPC socket {}", p);
        } catch (IOException e) {
            throw new StartException("cannot remove the stale RPC socket " + p + ": " + e.getMessage());
        }
    }

    public Path path() {
        return path;
    }

    private void acceptLoop() {
        while (!closed) {
            SocketChannel c;
            try {
                c = server.accept();
            } catch (ClosedChannelException e) {
                return;
            } catch (IOException e) {
                if (!closed) log.error("RPC accept failed: {}", e.getMessage());
                return;
            }
            if (clients.size() >= MAX_CLIENTS) {
                log.warn("RPC: refusing a client, {} are connected already", MAX_CLIENTS);
                closeQuietly(c);
                continue;
            }
            clients.add(c);
            int id = clientIds.incrementAndGet();
            Thread.ofVirtual().name("rpc-client-" + id).start(() -> serve(c, id));
        }
    }

    private void serve(SocketChannel c, int id) {
        log.debug("RPC client {} connected", id);
        JsonStreamSplitter splitter = new JsonStreamSplitter(maxRequest);
        ByteBuffer in = ByteBuffer.allocate(65536);
        try {
            while (!closed) {
                in.clear();
                int n = c.read(in);
                if (n < 0) {
                    byte[] rest = splitter.finish(text -> respond(c, handler.handle(text)));
                    if (rest != null) {
                        respond(c, JsonRpcHandler.write(JsonRpcHandler.error(NullNode.getInstance(),
                                RpcException.PARSE_ERROR, "Parse error: the stream ended inside a request")));
                    }
                    break;
                }
                in.flip();
                if (!splitter.feed(in, text -> respond(c, handler.handle(text)))) {
                    respond(c, JsonRpcHandler.write(JsonRpcHandler.error(NullNode.getInstance(),
                            RpcException.PARSE_ERROR, "Parse error: request longer than " + maxRequest + " bytes; closing the connection")));
                    break;
                }
            }
        } catch (ClosedChannelException e) {
            // server closing or client gone
        } catch (IOException | UncheckedIOExceptionWrapper e) {
            log.debug("RPC client {}: {}", id, e.getMessage());
        } finally {
            clients.remove(c);
            closeQuietly(c);
            log.debug("RPC client {} disconnected", id);
        }
    }

    /** Thrown out of the splitter callback when a write fails. */
    private static final class UncheckedIOExceptionWrapper extends RuntimeException {
        UncheckedIOExceptionWrapper(IOException e) {
            super(e.getMessage(), e);
        }
    }

    private static void respond(SocketChannel c, byte[] body) {
        if (body == null) return;
        ByteBuffer b = ByteBuffer.allocate(body.length + 1);
        b.put(body).put((byte) '\n').flip();
        try {
            while (b.hasRemaining()) c.write(b);
        } catch (IOException e) {
            throw new UncheckedIOExceptionWrapper(e);
        }
    }

    /** Stops accepting, disconnects clients (a call in progress finishes first) and removes the socket file. */
    @Override
    public void close() {
        if (closed) return;
        closed = true;
        closeQuietly(server);
        for (SocketChannel c : clients) closeQuietly(c);
        try {
            acceptThread.join(5000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        try {
            Files.deleteIfExists(path);
        } catch (IOException e) {
            log.warn("cannot remove RPC socket {}: {}", path, e.getMessage());
        }
        log.info("JSON-RPC server on {} closed", path);
    }

    private static void closeQuietly(java.io.Closeable c) {
        if (c == null) return;
        try {
            c.close();
        } catch (IOException e) {
            // nothing to add
        }
    }
}
