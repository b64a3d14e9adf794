package io.jvhost.target;

import io.jvhost.sys.UnixSocket;
import io.jvhost.vhostuser.VhostUserConnection;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.EOFException;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A configured vhost-user controller (SPDK: vhost device): a device behind a listening Unix
 * socket. One front-end at a time; after it disconnects the controller accepts the next one.
 * A connection that arrives while a session is live is refused (closed) with a log line.
 */
public final class Controller implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(Controller.class);

    /** Counters visible through statistics. */
    public static final class Stats {
        public final AtomicLong connections = new AtomicLong();
        public final AtomicLong refusedConnections = new AtomicLong();
        public final AtomicLong protocolErrors = new AtomicLong();
        public final AtomicLong failedRequests = new AtomicLong();
        public final AtomicLong unsupportedRequests = new AtomicLong();
    }

    private final String name;
    private final String socketPath;
    private final VhostUserDevice device;
    private final UnixSocket.Listener listener;
    private final Thread acceptThread;
    private final AtomicInteger sessionIds = new AtomicInteger();
    public final Stats stats = new Stats();
    private volatile Session session;
    private volatile Thread sessionThread;
    private volatile boolean closed;

    public Controller(String name, String socketPath, VhostUserDevice device) {
        this.name = name;
        this.socketPath = socketPath;
        this.device = device;
        this.listener = UnixSocket.Listener.bind(socketPath);
        this.acceptThread = Thread.ofPlatform().name("vhost-accept-" + name).daemon(true).start(this::acceptLoop);
        log.info("{}: listening on {}", name, socketPath);
    }

    public String name() { return name; }
    public String socketPath() { return socketPath; }
    public VhostUserDevice device() { return device; }
    public Session session() { return session; }

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

    /** Stops listening, ends the live session (stopping its queues) and removes the socket file. */
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
            acceptThread.join(5_000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        log.info("{}: closed", name);
    }
}
