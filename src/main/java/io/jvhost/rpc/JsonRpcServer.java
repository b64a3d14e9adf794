package io.jvhost.rpc;

import com.fasterxml.jackson.databind.node.NullNode;
import io.jvhost.sys.SocketAccess;
import io.jvhost.sys.SocketPathException;
import io.jvhost.sys.UnixSocket;
import jdk.net.ExtendedSocketOptions;
import jdk.net.UnixDomainPrincipal;
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
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.GroupPrincipal;
import java.nio.file.attribute.UserPrincipal;
import java.time.Duration;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
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
 * <p>Nobody can lock the operator out: a client that completes no request for
 * {@link Options#idleTimeout} is disconnected, and so is one whose request has stayed
 * incomplete for {@link #STALLED_REQUEST_TIMEOUT} (it is told so first, {@code -32700}: such a
 * stream, e.g. {@code [1,2}, cannot be resynchronised). When {@link Options#maxClients} are connected a newcomer takes the
 * place of the longest-idle client that is not in a call; it is refused only when every client
 * is in the middle of a call.
 *
 * <p>The socket file is created at start with {@link Options#access} (default {@code 0600}),
 * set before anyone can connect; a stale socket left by a crashed process is replaced, anything
 * else at the path is an error ({@link UnixSocket#claimSocketPath}). It is removed by
 * {@link #close()}. With {@link Options#peerCheck} a client whose peer credentials
 * ({@code SO_PEERCRED}) are neither root, nor the socket's owner, nor (with a socket group) that
 * group is refused even if the file's permissions let it connect.
 */
public final class JsonRpcServer implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(JsonRpcServer.class);
    public static final String DEFAULT_SOCKET = "/var/tmp/jvhost.sock";
    /** Default for {@link Options#maxClients}. */
    public static final int MAX_CLIENTS = 64;
    /** Default for {@link Options#idleTimeout}. */
    public static final Duration DEFAULT_IDLE_TIMEOUT = Duration.ofSeconds(60);
    /**
     * A request that stays incomplete this long (no byte arrives) is answered with -32700 and the
     * connection closed; capped by the idle timeout, off when that is off. Clients write a request
     * in one go: a stall of seconds means a broken or hostile client.
     */
    public static final Duration STALLED_REQUEST_TIMEOUT = Duration.ofSeconds(5);

    /**
     * @param maxRequest  largest single request in bytes
     * @param idleTimeout a client completing no request for this long is disconnected; zero = never
     * @param maxClients  connected clients before a newcomer replaces the longest-idle one
     * @param access      mode and group of the socket file
     * @param peerCheck   refuse peers that are not root, the owner or the socket group (SO_PEERCRED)
     */
    public record Options(int maxRequest, Duration idleTimeout, int maxClients, SocketAccess access, boolean peerCheck) {
        public Options {
            if (maxRequest < 64) throw new IllegalArgumentException("maxRequest too small: " + maxRequest);
            if (idleTimeout.isNegative()) throw new IllegalArgumentException("idle timeout must not be negative");
            if (maxClients < 1) throw new IllegalArgumentException("maxClients must be at least 1");
            java.util.Objects.requireNonNull(access);
        }

        public static Options defaults() {
            return new Options(JsonStreamSplitter.DEFAULT_MAX_REQUEST, DEFAULT_IDLE_TIMEOUT, MAX_CLIENTS, SocketAccess.DEFAULT, true);
        }

        public Options withMaxRequest(int v) { return new Options(v, idleTimeout, maxClients, access, peerCheck); }
        public Options withIdleTimeout(Duration v) { return new Options(maxRequest, v, maxClients, access, peerCheck); }
        public Options withMaxClients(int v) { return new Options(maxRequest, idleTimeout, v, access, peerCheck); }
        public Options withAccess(SocketAccess v) { return new Options(maxRequest, idleTimeout, maxClients, v, peerCheck); }
        public Options withPeerCheck(boolean v) { return new Options(maxRequest, idleTimeout, maxClients, access, v); }
    }

    /** The socket could not be created; the message says which path and why. */
    public static final class StartException extends Exception {
        public StartException(String message) {
            super(message);
        }
    }

    /** One connection: its channel and when it last completed a request. */
    private static final class Client {
        final int id;
        final SocketChannel channel;
        volatile long lastActive = System.nanoTime();
        volatile long lastByte = System.nanoTime();
        volatile boolean partial; // part of a request is buffered
        volatile boolean inCall;
        volatile boolean timedOut;
        volatile String timeoutReason;
        volatile boolean evicted;

        Client(int id, SocketChannel channel) {
            this.id = id;
            this.channel = channel;
        }
    }

    private final Path path;
    private final JsonRpcHandler handler;
    private final ServerSocketChannel server;
    private final Options options;
    private final Set<Client> clients = ConcurrentHashMap.newKeySet();
    private final AtomicInteger clientIds = new AtomicInteger();
    private final Thread acceptThread;
    private final ScheduledExecutorService reaper;
    private final UserPrincipal owner;
    private volatile boolean closed;

    private JsonRpcServer(Path path, Methods methods, ServerSocketChannel server, Options options) {
        this.path = path;
        this.handler = new JsonRpcHandler(methods);
        this.server = server;
        this.options = options;
        UserPrincipal o = null;
        try {
            o = Files.getOwner(path, LinkOption.NOFOLLOW_LINKS);
        } catch (IOException | UnsupportedOperationException e) {
            log.warn("RPC: cannot read the owner of {} ({}); the peer check allows root only", path, e.getMessage());
        }
        this.owner = o;
        this.acceptThread = Thread.ofPlatform().name("rpc-accept").daemon(true).start(this::acceptLoop);
        if (!options.idleTimeout().isZero()) {
            reaper = Executors.newSingleThreadScheduledExecutor(r -> Thread.ofPlatform().name("rpc-idle").daemon(true).unstarted(r));
            long period = Math.max(50, Math.min(1000, options.idleTimeout().toMillis() / 4));
            reaper.scheduleWithFixedDelay(this::reapIdle, period, period, TimeUnit.MILLISECONDS);
        } else {
            reaper = null;
        }
        log.info("JSON-RPC server listening on {} (mode {}, idle timeout {}, peer check {})", path, options.access(),
                options.idleTimeout().isZero() ? "off" : options.idleTimeout().toSeconds() + " s", options.peerCheck() ? "on" : "off");
    }

    public static JsonRpcServer start(Path path, Methods methods) throws StartException {
        return start(path, methods, Options.defaults());
    }

    public static JsonRpcServer start(Path path, Methods methods, int maxRequest) throws StartException {
        return start(path, methods, Options.defaults().withMaxRequest(maxRequest));
    }

    public static JsonRpcServer start(Path path, Methods methods, Options options) throws StartException {
        Path p = path.toAbsolutePath();
        if (p.toString().getBytes().length > 107) {
            throw new StartException("cannot create the RPC socket " + p + ": the path is longer than a Unix socket allows (107 bytes)");
        }
        Path dir = p.getParent();
        if (dir != null && !Files.isDirectory(dir)) throw new StartException("cannot create the RPC socket " + p + ": directory " + dir + " does not exist");
        try {
            UnixSocket.claimSocketPath(p.toString());
        } catch (SocketPathException e) {
            throw new StartException(e.getMessage().replace("choose another path)", "choose another path with -r)"));
        }
        ServerSocketChannel s = null;
        try {
            s = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
            bindWithAccess(s, p, options.access());
            return new JsonRpcServer(p, methods, s, options);
        } catch (IOException | RuntimeException e) {
            closeQuietly(s);
            throw new StartException("cannot create the RPC socket " + p + ": " + why(p, e));
        }
    }

    /**
     * Java's bind also listens, so the socket is bound inside a fresh private (0700) directory
     * next to its final path, given its mode and group there, and only then hard-linked into
     * place: nobody can connect before the permissions are right. (link(2) also refuses to
     * replace anything that appeared at the path meanwhile.) When the private path would be too
     * long for a socket address, it binds in place and sets the permissions right after.
     */
    private static void bindWithAccess(ServerSocketChannel s, Path p, SocketAccess access) throws IOException {
        Path dir = p.getParent() != null ? p.getParent() : Path.of(".");
        Path tmpDir = Files.createTempDirectory(dir, ".jv");
        Path tmp = tmpDir.resolve("s");
        try {
            if (tmp.toString().getBytes().length > 107) {
                log.debug("RPC: {} is too long for a socket address; binding {} directly", tmp, p);
                s.bind(UnixDomainSocketAddress.of(p));
                access.apply(p);
                return;
            }
            s.bind(UnixDomainSocketAddress.of(tmp));
            access.apply(tmp);
            Files.createLink(p, tmp);
        } finally {
            Files.deleteIfExists(tmp);
            Files.deleteIfExists(tmpDir);
        }
    }

    private static String why(Path p, Exception e) {
        Path dir = p.getParent();
        if (dir != null && !Files.isDirectory(dir)) return "directory " + dir + " does not exist";
        if (dir != null && !Files.isWritable(dir)) return "directory " + dir + " is not writable";
        if (e instanceof FileAlreadyExistsException) return "something else was created at the path meanwhile";
        if (e instanceof AccessDeniedException) return "permission denied";
        String m = e.getMessage();
        return m == null ? e.toString() : m;
    }

    public Path path() {
        return path;
    }

    public Options options() {
        return options;
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
            int id = clientIds.incrementAndGet();
            if (options.peerCheck() && !peerAllowed(c, id)) {
                closeQuietly(c);
                continue;
            }
            if (clients.size() >= options.maxClients() && !evictIdlest()) {
                log.warn("RPC: refusing client {}: {} clients are connected and all are in a call", id, clients.size());
                closeQuietly(c);
                continue;
            }
            Client client = new Client(id, c);
            clients.add(client);
            Thread.ofVirtual().name("rpc-client-" + id).start(() -> serve(client));
        }
    }

    /** SO_PEERCRED: root, the socket's owner, or (with a socket group) a member of that group. */
    private boolean peerAllowed(SocketChannel c, int id) {
        UnixDomainPrincipal peer;
        try {
            peer = c.getOption(ExtendedSocketOptions.SO_PEERCRED);
        } catch (IOException | UnsupportedOperationException e) {
            log.warn("RPC: refusing client {}: cannot read its credentials ({})", id, e.getMessage());
            return false;
        }
        if (peer.user().getName().equals("root") || peer.user().equals(owner)) return true;
        GroupPrincipal g = options.access().group();
        if (g != null && peer.group().equals(g)) return true;
        // SO_PEERCRED carries the primary group only. When the socket is not writable by others,
        // connect(2) itself proved that this peer is in the socket's group (primary or supplementary).
        if (g != null && (options.access().mode() & 0002) == 0) return true;
        log.warn("RPC: refusing client {}: user {} (group {}) is not root, the owner of {}{} (see --rpc-peer-check)", id,
                peer.user().getName(), peer.group().getName(), path, g != null ? " or in group " + g.getName() : "");
        return false;
    }

    /** Makes room: disconnects the client idle the longest that is not in a call. False if there is none. */
    private boolean evictIdlest() {
        Client idlest = null;
        for (Client c : clients) {
            if (c.inCall || c.evicted) continue;
            if (idlest == null || c.lastActive < idlest.lastActive) idlest = c;
        }
        if (idlest == null) return false;
        log.warn("RPC: {} clients connected; disconnecting client {} (idle {} ms) to make room for a new one",
                clients.size(), idlest.id, (System.nanoTime() - idlest.lastActive) / 1_000_000);
        idlest.evicted = true;
        endInput(idlest);
        return true;
    }

    /** Periodic: clients idle past the timeout get end-of-input (their thread answers and closes); a second strike closes the channel. */
    private void reapIdle() {
        long now = System.nanoTime();
        long limit = options.idleTimeout().toNanos();
        long stall = Math.min(limit, STALLED_REQUEST_TIMEOUT.toNanos());
        for (Client c : clients) {
            if (c.inCall) continue;
            boolean idle = now - c.lastActive >= limit;
            boolean stalled = c.partial && now - c.lastByte >= stall;
            if (!idle && !stalled) continue;
            if (!c.timedOut) {
                c.timeoutReason = idle ? "no complete request within " + options.idleTimeout().toSeconds() + " s"
                        : "the request stayed incomplete for " + stall / 1_000_000_000L + " s";
                c.timedOut = true;
                log.info("RPC client {}: {}, disconnecting", c.id, c.timeoutReason);
                endInput(c);
            } else if (now - Math.max(c.lastActive, c.lastByte) >= limit + stall) {
                // Still here a whole timeout later: stuck writing to a client that does not read.
                closeQuietly(c.channel);
            }
        }
    }

    /** Ends the client's input: its blocked read returns end of stream and its thread finishes up. */
    private static void endInput(Client c) {
        try {
            c.channel.shutdownInput();
        } catch (IOException e) {
            closeQuietly(c.channel);
        }
    }

    private void serve(Client client) {
        SocketChannel c = client.channel;
        int id = client.id;
        log.debug("RPC client {} connected", id);
        JsonStreamSplitter splitter = new JsonStreamSplitter(options.maxRequest());
        ByteBuffer in = ByteBuffer.allocate(65536);
        java.util.function.Consumer<byte[]> onRequest = text -> {
            client.inCall = true;
            byte[] reply;
            try {
                reply = handler.handle(text);
            } finally {
                client.inCall = false;
            }
            respond(c, reply);
            client.lastActive = System.nanoTime();
        };
        try {
            while (!closed) {
                in.clear();
                int n = c.read(in);
                if (n < 0) {
                    byte[] rest = splitter.finish(onRequest);
                    if (rest != null) {
                String why = client.timedOut ? client.timeoutReason + "; closing the connection"
                                : client.evicted ? "connection closed to make room for another client"
                                : "the stream ended inside a request";
                        respond(c, JsonRpcHandler.write(JsonRpcHandler.error(NullNode.getInstance(),
                                RpcException.PARSE_ERROR, "Parse error: incomplete JSON text (" + rest.length + " bytes): " + why)));
                    }
                    break;
                }
                client.lastByte = System.nanoTime();
                in.flip();
                boolean ok = splitter.feed(in, onRequest);
                client.partial = splitter.pending();
                if (!ok) {
                    respond(c, JsonRpcHandler.write(JsonRpcHandler.error(NullNode.getInstance(),
                            RpcException.PARSE_ERROR, "Parse error: request longer than " + options.maxRequest() + " bytes; closing the connection")));
                    break;
                }
            }
        } catch (ClosedChannelException e) {
            // server closing or client gone
        } catch (IOException | UncheckedIOExceptionWrapper e) {
            log.debug("RPC client {}: {}", id, e.getMessage());
        } finally {
            clients.remove(client);
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

    /** Number of connected clients (tests, stats). */
    public int clientCount() {
        return clients.size();
    }

    /** Stops accepting, disconnects clients (a call in progress finishes first) and removes the socket file. */
    @Override
    public void close() {
        if (closed) return;
        closed = true;
        if (reaper != null) reaper.shutdownNow();
        closeQuietly(server);
        for (Client c : clients) closeQuietly(c.channel);
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
