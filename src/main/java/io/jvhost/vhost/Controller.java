package io.jvhost.vhost;

import io.jvhost.runtime.Counter;
import io.jvhost.runtime.CounterLayout;
import io.jvhost.runtime.CounterRegistry;
import io.jvhost.runtime.CounterSet;
import io.jvhost.sys.SocketAccess;
import io.jvhost.sys.UnixSocket;
import io.jvhost.vhostuser.VhostUserConnection;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.EOFException;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A configured vhost-user controller (SPDK: vhost device): a device behind a listening Unix
 * socket. One front-end at a time; after it disconnects the controller accepts the next one.
 * A connection that arrives while a session is live is refused (closed) with a log line.
 */
public final class Controller implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(Controller.class);

    /**
     * Control-path counters (vhost-user messages, connections), in one {@link CounterSet}
     * published with the controller's name while it listens. Several threads bump them (the
     * accept thread, each session's thread), so each is an atomic {@link Counter}; none is
     * touched per I/O request.
     */
    public static final class Stats {
        public static final CounterLayout LAYOUT;
        private static final int CONNECTIONS, REFUSED, PROTOCOL_ERRORS, FAILED, UNSUPPORTED, TOLERATED;

        static {
            CounterLayout.Builder b = CounterLayout.builder("controller");
            CONNECTIONS = b.counter("connections", "jvhost_controller_connections", "Front-end connections accepted");
            REFUSED = b.counter("refused_connections", "jvhost_controller_refused_connections", "Front-end connections refused (a session was live)");
            String errors = "jvhost_controller_vhost_user_errors";
            String help = "vhost-user requests that failed, by kind: protocol (malformed, the session ended), failed (answered with an error), unsupported";
            PROTOCOL_ERRORS = b.counter("protocol_errors", errors, help, "kind", "protocol");
            FAILED = b.counter("failed_requests", errors, help, "kind", "failed");
            UNSUPPORTED = b.counter("unsupported_requests", errors, help, "kind", "unsupported");
            TOLERATED = b.counter("tolerated_deviations", "jvhost_controller_tolerated_deviations",
                    "Requests deviating from vhost-user.rst in ways the ecosystem's back-ends accept");
            LAYOUT = b.build();
        }

        final CounterSet set = new CounterSet(LAYOUT);
        public final Counter connections = set.counter(CONNECTIONS);
        public final Counter refusedConnections = set.counter(REFUSED);
        public final Counter protocolErrors = set.counter(PROTOCOL_ERRORS);
        public final Counter failedRequests = set.counter(FAILED);
        public final Counter unsupportedRequests = set.counter(UNSUPPORTED);
        /** Requests that deviate from vhost-user.rst in ways the ecosystem's back-ends accept (Session). */
        public final Counter toleratedDeviations = set.counter(TOLERATED);
    }

    private final String name;
    private final String socketPath;
    private final VhostUserDevice device;
    private final UnixSocket.Listener listener;
    private final Thread acceptThread;
    private final AtomicInteger sessionIds = new AtomicInteger();
    public final Stats stats = new Stats();
    private final CounterRegistry.Entry published;
    private volatile Session session;
    private volatile Thread sessionThread;
    private volatile boolean closed;
    private volatile int coalescingDelayBaseUs;
    private volatile long coalescingIopsThreshold = DEFAULT_IOPS_THRESHOLD;

    /** SPDK's default coalescing threshold (SPDK_VHOST_VQ_IOPS_COALESCING_THRESHOLD); delay 0 = off. */
    public static final int DEFAULT_IOPS_THRESHOLD = 60_000;

    public Controller(String name, String socketPath, VhostUserDevice device) {
        this(name, socketPath, device, SocketAccess.DEFAULT);
    }

    /**
     * Listens on {@code socketPath} with {@code access} (mode and group of the socket file).
     * Only a stale socket at the path is replaced; anything else there fails with
     * {@link io.jvhost.sys.SocketPathException} and is left untouched.
     */
    public Controller(String name, String socketPath, VhostUserDevice device, SocketAccess access) {
        this.name = name;
        this.socketPath = socketPath;
        this.device = device;
        this.listener = UnixSocket.Listener.bind(socketPath, access);
        this.published = CounterRegistry.global().publish(stats.set, "ctrlr", name);
        this.acceptThread = Thread.ofPlatform().name("vhost-accept-" + name).daemon(true).start(this::acceptLoop);
        log.info("{}: listening on {}", name, socketPath);
    }

    public String name() { return name; }
    public String socketPath() { return socketPath; }
    public VhostUserDevice device() { return device; }
    public Session session() { return session; }

    public int coalescingDelayBaseUs() { return coalescingDelayBaseUs; }
    public long coalescingIopsThreshold() { return coalescingIopsThreshold; }

    /**
     * SPDK vhost_controller_set_coalescing: stores the interrupt-coalescing settings with SPDK's
     * checks (the delay must fit 32-bit ticks, the threshold must be at least 100 IOPS, i.e. one
     * request per 10 ms check interval), and applies them to the running queues on their reactor.
     */
    public void setCoalescing(long delayBaseUs, long iopsThreshold) {
        long maxDelayUs = (0xffff_ffffL - 1) / 1000; // SPDK: delay in ticks must stay below UINT32_MAX
        if (delayBaseUs < 0 || delayBaseUs > maxDelayUs) {
            throw new IllegalArgumentException("delay_base_us " + delayBaseUs + " is out of range (0.." + maxDelayUs + ")");
        }
        if (iopsThreshold < 100 || iopsThreshold > 0xffff_ffffL) {
            throw new IllegalArgumentException("iops_threshold " + iopsThreshold + " is out of range (100..4294967295)");
        }
        coalescingDelayBaseUs = (int) delayBaseUs;
        coalescingIopsThreshold = iopsThreshold;
        Session s = session;
        if (s != null) s.applyCoalescing(delayBaseUs, iopsThreshold);
    }

    private void acceptLoop() {
        while (!closed) {
            UnixSocket s;
            try {
                s = listener.accept();
            } catch (EOFException e) {
                return;
            } catch (RuntimeException e) {
                if (!closed) log.error("{}: accept failed: {}", name, e.getMessage());
                return;
            }
            // A front-end that reconnects right after leaving may beat our teardown of its old
            // session: give a finishing session a moment before treating this as a second client.
            Thread prev = sessionThread;
            if (session != null && prev != null) {
                try {
                    prev.join(2000);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    return;
                }
            }
            synchronized (this) {
                if (closed) {
                    s.close();
                    return;
                }
                if (session != null) {
                    stats.refusedConnections.incrementAndGet();
                    log.warn("{}: refusing a second front-end connection while {} is live", name, session.name());
                    s.close();
                    continue;
                }
                stats.connections.incrementAndGet();
                Session sess = new Session(this, device, new VhostUserConnection(s, true), sessionIds.incrementAndGet());
                session = sess;
                sessionThread = Thread.ofPlatform().name("vhost-session-" + sess.name()).daemon(true).start(sess);
            }
        }
    }

    synchronized void sessionEnded(Session s) {
        if (session == s) session = null;
    }

    /**
     * SPDK's {@code vhost_delete_controller} (lib/vhost/rte_vhost_user.c
     * {@code vhost_user_dev_unregister}): refuses while a front-end is connected, since cutting
     * a live session leaves the guest's driver waiting forever. If a session is live, nothing
     * changes and its name is returned; otherwise the controller stops listening, its socket
     * file is removed and null is returned. Never waits for a session.
     */
    public String closeIfIdle() {
        synchronized (this) {
            if (closed) return null;
            Session s = session;
            if (s != null) return s.name();
            // Under the same lock as the accept loop's check: a front-end that connects from
            // now on is closed at once instead of starting a session.
            closed = true;
        }
        stopListening();
        return null;
    }

    /**
     * Stops listening, ends the live session (stopping its queues; waits for it up to 35 s)
     * and removes the socket file: for shutdown. Deleting a controller uses {@link #closeIfIdle}.
     */
    @Override
    public void close() {
        Session s;
        Thread t;
        synchronized (this) {
            closed = true;
            s = session;
            t = sessionThread;
        }
        listener.close();
        if (s != null) s.close();
        try {
            if (t != null) t.join(35_000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        stopListening();
    }

    private void stopListening() {
        CounterRegistry.global().withdraw(published);
        listener.close();
        try {
            acceptThread.join(5_000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        log.info("{}: closed", name);
    }
}
