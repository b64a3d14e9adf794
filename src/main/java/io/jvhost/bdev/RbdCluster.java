package io.jvhost.bdev;

import io.jvhost.sys.Errno;
import io.jvhost.sys.NativeException;
import io.jvhost.sys.Rbd;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Consumer;

/**
 * One connection to a Ceph cluster ({@code rados_t}), shared by every RBD bdev that names it
 * (SPDK: {@code bdev_rbd_register_cluster}); a bdev created without a cluster name gets a
 * private one.
 *
 * <p><b>Nothing that can wait on the cluster runs on the caller's thread.</b> Connecting,
 * opening, resizing and closing images go to this cluster's own control thread, and the caller
 * waits a bounded time ({@link #call}); if the cluster is unreachable the caller gets a clear
 * {@code -ETIMEDOUT} error and the operation finishes (or keeps waiting) in the background.
 * So an RPC never hangs the RPC server, even while the monitors or OSDs are down.
 *
 * <p><b>Timeouts</b> (set unless the config file or {@code config_param} sets them):
 * {@code client_mount_timeout = 10} s (connecting fails after 10 s instead of Ceph's 300 s),
 * {@code rados_mon_op_timeout = 30} s (monitor requests such as pool lookups fail instead of
 * waiting forever). {@code rados_osd_op_timeout} stays at Ceph's 0 (no timeout): while an OSD
 * is away, guest I/O <em>stalls</em> and resumes when it is back, as with QEMU's and SPDK's rbd
 * drivers; a watchdog logs stalled requests ({@link RbdBlockDevice}). Set
 * {@code rados_osd_op_timeout} in {@code config_param} to fail them with {@code -ETIMEDOUT}
 * instead.
 */
public final class RbdCluster {
    private static final Logger log = LoggerFactory.getLogger(RbdCluster.class);

    /** Options jvhost sets when neither the config file nor the caller did (name → value, Ceph's own default). */
    static final Map<String, String[]> DEFAULT_TIMEOUTS = Map.of(
            "client_mount_timeout", new String[] {"10", "300"},
            "rados_mon_op_timeout", new String[] {"30", "0"});

    /** How long an RPC waits for a control operation before answering -ETIMEDOUT (seconds). */
    public static final long CONTROL_WAIT_SECONDS = Long.getLong("jvhost.rbd.controlWaitSeconds", 15);

    private final String name;
    private final String userId;
    private final Map<String, String> configParam;
    private final String configFile;
    private final String keyFile;
    private final ExecutorService control;
    private volatile long handle;
    /** Bdevs using the connection plus control operations still running in the background. */
    private final AtomicInteger users = new AtomicInteger();

    private RbdCluster(String name, String userId, Map<String, String> configParam, String configFile, String keyFile) {
        this.name = name;
        this.userId = userId;
        this.configParam = configParam == null ? null : Collections.unmodifiableMap(new LinkedHashMap<>(configParam));
        this.configFile = configFile;
        this.keyFile = keyFile;
        String thread = "rbd-ctl-" + (name != null ? name : "private");
        this.control = Executors.newSingleThreadExecutor(r -> {
            Thread t = new Thread(r, thread);
            t.setDaemon(true);
            return t;
        });
    }

    /**
     * Connects (SPDK's order: create, read the config file, apply {@code config_param}, the key
     * file as {@code keyring}, connect). {@code name} null: a private connection of one bdev.
     */
    public static RbdCluster connect(String name, String userId, Map<String, String> configParam, String configFile, String keyFile) {
        if (!Rbd.available()) throw new NativeException(Rbd.unavailableReason(), Errno.ENOENT);
        RbdCluster c = new RbdCluster(name, userId, configParam, configFile, keyFile);
        try {
            c.call("connect to Ceph" + (name != null ? " cluster " + name : ""), () -> {
                c.doConnect();
                return null;
            }, v -> c.shutdownNow());
        } catch (RuntimeException e) {
            c.control.shutdown();
            throw e;
        }
        return c;
    }

    private void doConnect() {
        long h = Rbd.radosCreate("client." + (userId != null ? userId : "admin"));
        try {
            int rc = Rbd.confReadFile(h, configFile);
            if (rc < 0 && configFile != null) throw new NativeException("cannot read Ceph config file " + configFile, -rc);
            if (configParam != null) for (var e : configParam.entrySet()) Rbd.confSet(h, e.getKey(), e.getValue());
            if (keyFile != null) Rbd.confSet(h, "keyring", keyFile);
            for (var e : DEFAULT_TIMEOUTS.entrySet()) {
                if (configParam != null && configParam.containsKey(e.getKey())) continue;
                String cur = Rbd.confGet(h, e.getKey());
                if (cur != null && parsesTo(cur, e.getValue()[1])) Rbd.confSet(h, e.getKey(), e.getValue()[0]);
            }
            rc = Rbd.connect(h);
            if (rc < 0) throw new NativeException("cannot connect to the Ceph cluster (mon_host " + Rbd.confGet(h, "mon_host") + ")", -rc);
        } catch (RuntimeException e) {
            Rbd.shutdown(h);
            throw e;
        }
        handle = h;
    }

    private static boolean parsesTo(String value, String dflt) {
        try {
            return Double.parseDouble(value) == Double.parseDouble(dflt);
        } catch (NumberFormatException e) {
            return false;
        }
    }

    /**
     * Runs {@code op} on the control thread and waits at most {@link #CONTROL_WAIT_SECONDS}.
     * On timeout throws {@code -ETIMEDOUT}; {@code late}, if given, gets the result on the
     * control thread if the abandoned operation succeeds after all (to undo what it did).
     */
    public <T> T call(String what, Callable<T> op, Consumer<? super T> late) {
        return call(what, op, late, CONTROL_WAIT_SECONDS);
    }

    <T> T call(String what, Callable<T> op, Consumer<? super T> late, long waitSeconds) {
        CompletableFuture<T> f = new CompletableFuture<>();
        AtomicInteger state = new AtomicInteger(); // 0 running, 1 answered, 2 abandoned by the caller
        users.incrementAndGet();
        control.execute(() -> {
            T result = null;
            Throwable failure = null;
            try {
                result = op.call();
            } catch (Throwable t) {
                failure = t;
            }
            if (!state.compareAndSet(0, 1)) { // abandoned by the caller: undo a late success
                try {
                    if (failure == null && late != null) late.accept(result);
                    log.info("{}: finished late{}", what, failure == null ? "" : " with " + failure);
                } catch (RuntimeException e) {
                    log.warn("{}: undoing a late result failed", what, e);
                }
            }
            // Before answering: whoever gets the answer sees the connection no longer in use.
            users.decrementAndGet();
            if (failure == null) f.complete(result);
            else f.completeExceptionally(failure);
        });
        try {
            try {
                return f.get(waitSeconds, TimeUnit.SECONDS);
            } catch (TimeoutException e) {
                if (!state.compareAndSet(0, 2)) return f.get(); // finished just now
                log.warn("{}: no answer from Ceph within {} s (monitors or OSDs unreachable?); it goes on in the background", what, waitSeconds);
                throw new NativeException(what + ": no answer from Ceph within " + waitSeconds + " s (is the cluster reachable?)", ETIMEDOUT);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new NativeException(what + ": interrupted", Errno.EINTR);
        } catch (ExecutionException e) {
            Throwable c = e.getCause();
            if (c instanceof RuntimeException r) throw r;
            if (c instanceof Error err) throw err;
            throw new IllegalStateException(c);
        }
    }

    static final int ETIMEDOUT = 110;

    /** The {@code rados_t} (valid while connected). */
    long handle() {
        return handle;
    }

    /** Registered name, or null for a bdev's private connection. */
    public String name() { return name; }
    public String userId() { return userId; }
    /** {@code config_param} as given (null when none). */
    public Map<String, String> configParam() { return configParam; }
    public String configFile() { return configFile; }
    public String keyFile() { return keyFile; }

    /** Bdevs (and background control operations) still using the connection. */
    public int users() {
        return users.get();
    }

    void retain() {
        users.incrementAndGet();
    }

    void release() {
        users.decrementAndGet();
    }

    /**
     * Disconnects (SPDK: {@code bdev_rbd_unregister_cluster}); refused while bdevs use the
     * connection or an image close is still waiting for the cluster.
     */
    public void shutdown() {
        if (users.get() > 0) {
            throw new BdevException(BdevException.Kind.IN_USE, "Ceph cluster " + (name != null ? "'" + name + "'" : "connection")
                    + " is still used by " + users.get() + " bdev(s) or pending image close(s)");
        }
        try {
            call("disconnect from Ceph cluster " + name, () -> {
                shutdownNow();
                return null;
            }, null);
        } finally {
            control.shutdown();
        }
    }

    private void shutdownNow() {
        long h = handle;
        handle = 0;
        if (h != 0) Rbd.shutdown(h);
    }
}
