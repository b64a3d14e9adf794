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
 * socket. Like SPDK's target (lib/vhost/rte_vhost_user.c keeps a list of sessions per device),
 * several front-ends may be connected at once, each with its own {@link Session}: the source
 * and destination QEMU of a live migration on one host, or a QEMU reconnecting while its old
 * connection is still being torn down. Up to {@link #MAX_SESSIONS}; a connection beyond that
 * is refused (closed) with a log line.
 *
 * <p>What protects the data: only one session at a time may process rings (the ring lease,
 * {@link #claimRings}). A session that wants to start a ring while another session's rings run
 * waits up to {@link #RING_LEASE_WAIT_MS} for them to stop (a migration's source stops its
 * rings with GET_VRING_BASE before the destination starts; a reconnecting QEMU's old session
 * drains first) and is refused after that, so two front-ends never drive the same device's
 * queues and bdev at once.
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
        private static final int CONNECTIONS, REFUSED, PROTOCOL_ERRORS, FAILED, UNSUPPORTED, TOLERATED, LEASE_REFUSALS;

        static {
            CounterLayout.Builder b = CounterLayout.builder("controller");
            CONNECTIONS = b.counter("connections", "jvhost_controller_connections", "Front-end connections accepted");
            REFUSED = b.counter("refused_connections", "jvhost_controller_refused_connections", "Front-end connections refused (too many front-ends at once, or the controller is closing)");
            String errors = "jvhost_controller_vhost_user_errors";
            String help = "vhost-user requests that failed, by kind: protocol (malformed, the session ended), failed (answered with an error), unsupported";
            PROTOCOL_ERRORS = b.counter("protocol_errors", errors, help, "kind", "protocol");
            FAILED = b.counter("failed_requests", errors, help, "kind", "failed");
            UNSUPPORTED = b.counter("unsupported_requests", errors, help, "kind", "unsupported");
            TOLERATED = b.counter("tolerated_deviations", "jvhost_controller_tolerated_deviations",
                    "Requests deviating from vhost-user.rst in ways the ecosystem's back-ends accept");
            LEASE_REFUSALS = b.counter("ring_lease_refusals", "jvhost_controller_ring_lease_refusals",
                    "Ring starts refused because another session of the controller was processing rings");
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
        /** Ring starts refused because another session of the controller was processing rings. */
        public final Counter ringLeaseRefusals = set.counter(LEASE_REFUSALS);
    }

    private final String name;
    private final String socketPath;
    private final VhostUserDevice device;
    private final UnixSocket.Listener listener;
    private final Thread acceptThread;
    private final AtomicInteger sessionIds = new AtomicInteger();
    public final Stats stats = new Stats();
    /** Live sessions, oldest first, with their threads (guarded by this). */
    private final java.util.LinkedHashMap<Session, Thread> sessions = new java.util.LinkedHashMap<>();
    /** The session whose rings run, or null (guarded by this). */
    private Session ringOwner;

    private final CounterRegistry.Entry published;
    private volatile boolean closed;
    private volatile int coalescingDelayBaseUs;
    private volatile long coalescingIopsThreshold = DEFAULT_IOPS_THRESHOLD;
    private volatile long withheldProtocolFeatures;

    /** SPDK's default coalescing threshold (SPDK_VHOST_VQ_IOPS_COALESCING_THRESHOLD); delay 0 = off. */
    public static final int DEFAULT_IOPS_THRESHOLD = 60_000;
    /** Front-ends connected at once, at most (a migration needs 2, a reconnect overlapping its old connection 3). */
    public static final int MAX_SESSIONS = 4;
    /** How long a session waits for another session's rings to stop before its own ring start is refused. */
    static final long RING_LEASE_WAIT_MS = 10_000;
    private volatile long ringLeaseWaitMs = RING_LEASE_WAIT_MS;

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
    /** The session whose rings run, else the newest live session, else null. */
    public synchronized Session session() {
        if (ringOwner != null) return ringOwner;
        Session last = null;
        for (Session x : sessions.keySet()) last = x;
        return last;
    }

    /** Live sessions, oldest first. */
    public synchronized java.util.List<Session> sessions() {
        return java.util.List.copyOf(sessions.keySet());
    }

    /**
     * Protocol feature bits (VhostUserProtocol.PF_*) not offered to front-ends that connect from
     * now on, e.g. {@code 1L << PF_CONFIGURE_MEM_SLOTS} so QEMU sends whole SET_MEM_TABLEs for
     * memory hotplug instead of ADD_MEM_REG/REM_MEM_REG (tests of both paths).
     */
    public void withholdProtocolFeatures(long mask) { this.withheldProtocolFeatures = mask; }
    public long withheldProtocolFeatures() { return withheldProtocolFeatures; }

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
        for (Session s : sessions()) s.applyCoalescing(delayBaseUs, iopsThreshold);
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
            synchronized (this) {
                if (closed) {
                    s.close();
                    return;
                }
                if (sessions.size() >= MAX_SESSIONS) {
                    stats.refusedConnections.incrementAndGet();
                    log.warn("{}: refusing a front-end connection: {} are live already ({})", name, sessions.size(),
                            sessions.keySet().stream().map(Session::name).toList());
                    s.close();
                    continue;
                }
                stats.connections.incrementAndGet();
                Session sess = new Session(this, device, new VhostUserConnection(s, true), sessionIds.incrementAndGet());
                if (!sessions.isEmpty()) {
                    log.info("{}: {} connects while {} live; rings run for one session at a time", name, sess.name(),
                            sessions.keySet().stream().map(Session::name).toList());
                }
                sessions.put(sess, Thread.ofPlatform().name("vhost-session-" + sess.name()).daemon(true).unstarted(sess));
                sessions.get(sess).start();
            }
        }
    }

    /** {@code s} ended; returns true when it was the last live session (the device forgets guest state then). */
    synchronized boolean sessionEnded(Session s) {
        sessions.remove(s);
        if (ringOwner == s) {
            ringOwner = null;
            notifyAll();
        }
        return sessions.isEmpty();
    }

    /**
     * The ring lease: returns true when {@code s} may process rings (no other session does, or
     * it stopped within {@link #RING_LEASE_WAIT_MS}); false (counted, logged) otherwise. Called
     * on {@code s}'s control thread before it starts a ring.
     */
    boolean claimRings(Session s) {
        long deadline = System.nanoTime() + java.util.concurrent.TimeUnit.MILLISECONDS.toNanos(ringLeaseWaitMs);
        synchronized (this) {
            if (ringOwner != null && ringOwner != s) {
                log.info("{}: {} waits for {} to stop its rings", name, s.name(), ringOwner.name());
            }
            while (ringOwner != null && ringOwner != s) {
                long left = deadline - System.nanoTime();
                if (left <= 0 || closed) {
                    stats.ringLeaseRefusals.incrementAndGet();
                    log.warn("{}: {} may not start rings: {} is still processing this controller's rings", name, s.name(), ringOwner.name());
                    return false;
                }
                try {
                    java.util.concurrent.TimeUnit.NANOSECONDS.timedWait(this, left);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    return false;
                }
            }
            ringOwner = s;
            return true;
        }
    }

    /** For tests: how long {@link #claimRings} waits. */
    void ringLeaseWaitMs(long ms) { ringLeaseWaitMs = ms; }

    /** {@code s} has no running ring any more: another session may start its rings. */
    synchronized void releaseRings(Session s) {
        if (ringOwner == s) {
            ringOwner = null;
            notifyAll();
        }
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
            if (!sessions.isEmpty()) return sessions.keySet().iterator().next().name();
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
        java.util.Map<Session, Thread> live;
        synchronized (this) {
            closed = true;
            live = new java.util.LinkedHashMap<>(sessions);
            notifyAll(); // a session waiting for the ring lease gives up
        }
        listener.close();
        for (Session s : live.keySet()) s.close();
        long deadline = System.nanoTime() + java.util.concurrent.TimeUnit.SECONDS.toNanos(35);
        try {
            for (Thread t : live.values()) {
                long left = java.util.concurrent.TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime());
                if (left > 0) t.join(left);
            }
            for (var e : live.entrySet()) {
                if (!e.getValue().isAlive()) continue;
                // Stuck sending to a front-end that does not read (or a ring that would not stop).
                log.warn("{}: a session did not end within 35 s; shutting its connection down", name);
                e.getKey().abort();
                e.getValue().join(5_000);
            }
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
