package io.jvhost.vhost;

import io.jvhost.bdev.BdevException;
import io.jvhost.bdev.BdevRegistry;
import io.jvhost.bdev.BlockDevice;
import io.jvhost.runtime.IdleStrategy;
import io.jvhost.runtime.Reactor;
import io.jvhost.sys.SocketAccess;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The whole target: block devices, reactors and controllers. Control-path operations are
 * synchronized; the data path runs on the reactors.
 */
public final class VhostTarget implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(VhostTarget.class);

    private final BdevRegistry bdevs = new BdevRegistry();
    private final Reactor[] reactors;
    private final Path socketDir;
    private final Map<String, Controller> controllers = new LinkedHashMap<>();

    private final int[] cores; // core of each reactor, or null when unpinned

    public VhostTarget(Path socketDir, int reactorCount, IdleStrategy idle) {
        if (reactorCount < 1) throw new IllegalArgumentException("need at least one reactor");
        this.socketDir = socketDir;
        this.cores = null;
        reactors = new Reactor[reactorCount];
        for (int i = 0; i < reactorCount; i++) reactors[i] = new Reactor(i, idle);
    }

    /** One reactor per core in {@code coreMask} (SPDK's -m), each pinned to its core. */
    public VhostTarget(Path socketDir, long coreMask, IdleStrategy idle) {
        if (coreMask == 0) throw new IllegalArgumentException("the core mask selects no core");
        this.socketDir = socketDir;
        cores = new int[Long.bitCount(coreMask)];
        reactors = new Reactor[cores.length];
        long m = coreMask;
        for (int i = 0; i < cores.length; i++) {
            cores[i] = Long.numberOfTrailingZeros(m);
            m &= m - 1;
            reactors[i] = new Reactor(i, idle, cores[i]);
        }
    }

    private volatile SocketAccess socketAccess = SocketAccess.DEFAULT;

    public BdevRegistry bdevs() { return bdevs; }

    /** Mode and group given to controller sockets created from now on (default 0600, owner only). */
    public void socketAccess(SocketAccess access) { this.socketAccess = java.util.Objects.requireNonNull(access); }
    public SocketAccess socketAccess() { return socketAccess; }
    public Path socketDir() { return socketDir; }
    public Reactor[] reactors() { return reactors.clone(); }

    /**
     * The reactors an SPDK-style cpumask ("0x3", "3", "[0-1]") selects, in reactor order; null or
     * empty: all of them. A core that runs no reactor is an error (with a pinned target: a core
     * outside its core mask; unpinned: a number not below the reactor count).
     */
    public Reactor[] reactorsOf(String cpumask) {
        if (cpumask == null || cpumask.isBlank()) return reactors.clone();
        long mask = Cpumask.parse(cpumask);
        List<Reactor> l = new ArrayList<>();
        for (long m = mask; m != 0; m &= m - 1) {
            int core = Long.numberOfTrailingZeros(m);
            Reactor r = null;
            if (cores != null) {
                for (int i = 0; i < cores.length; i++) if (cores[i] == core) r = reactors[i];
                if (r == null) {
                    throw new IllegalArgumentException("cpumask " + cpumask + " selects core " + core + ", which runs no reactor (the target's core mask has "
                            + java.util.Arrays.toString(cores) + ")");
                }
            } else {
                if (core >= reactors.length) {
                    throw new IllegalArgumentException("cpumask " + cpumask + " selects core " + core + " but only "
                            + reactors.length + " reactor(s) run (start with more --reactors or a --cpumask)");
                }
                r = reactors[core];
            }
            l.add(r);
        }
        l.sort(java.util.Comparator.comparingInt(Reactor::id));
        return l.toArray(new Reactor[0]);
    }

    /**
     * The load of each reactor (by index): how many queues of the configured controllers it
     * runs. A controller counts all its queues (configured, connected or not), so placement
     * does not change when front-ends come and go. Caller holds the lock.
     */
    private int[] load() {
        int[] load = new int[reactors.length];
        for (Controller c : controllers.values()) {
            VhostUserDevice d = c.device();
            QueuePlacement p = d.placement();
            for (int q = 0; q < d.maxQueues(); q++) load[indexOf(p.reactorOf(q))]++;
        }
        return load;
    }

    private int indexOf(Reactor r) {
        for (int i = 0; i < reactors.length; i++) if (reactors[i] == r) return i;
        throw new IllegalStateException("reactor " + r + " is not this target's");
    }

    /**
     * Least-loaded placement, as SPDK's vhost did for sessions (spdk_vhost_get_poll_group: the
     * poll group of the cpumask with the fewest sessions): the cpumask's reactors ordered by
     * load ({@link #load()}: queues owned), ties by reactor order. One-reactor placement takes
     * the first; spread deals the queues from {@code firstSpread} on over all of them, starting
     * at the least loaded. Caller holds the lock.
     */
    private QueuePlacement place(String cpumask, QueuePlacement.Mode mode, int firstSpread) {
        Reactor[] candidates = reactorsOf(cpumask);
        int[] load = load();
        Reactor[] byLoad = candidates.clone();
        java.util.Arrays.sort(byLoad, java.util.Comparator.comparingInt((Reactor r) -> load[indexOf(r)]).thenComparingInt(this::indexOf));
        return mode == QueuePlacement.Mode.SPREAD ? QueuePlacement.spread(byLoad, firstSpread) : QueuePlacement.oneReactor(byLoad[0]);
    }

    /** The reactor a new one-reactor controller with this cpumask would get now: the least loaded of the mask. */
    public synchronized Reactor reactorFor(String cpumask) {
        return place(cpumask, QueuePlacement.Mode.ONE_REACTOR, 0).home();
    }

    /** SPDK vhost_create_blk_controller, all queues on one reactor. */
    public Controller createBlkController(String ctrlr, String devName, boolean readOnly, int numQueues, String cpumask) {
        return createBlkController(ctrlr, devName, readOnly, numQueues, cpumask, QueuePlacement.Mode.ONE_REACTOR);
    }

    /** SPDK vhost_create_blk_controller with jvhost's queue_placement (split rings only). */
    public Controller createBlkController(String ctrlr, String devName, boolean readOnly, int numQueues, String cpumask,
                                          QueuePlacement.Mode placement) {
        return createBlkController(ctrlr, devName, readOnly, numQueues, cpumask, placement, false);
    }

    /** SPDK vhost_create_blk_controller; {@code packedRing}: VIRTIO_F_RING_PACKED is offered (SPDK's packed_ring). */
    public synchronized Controller createBlkController(String ctrlr, String devName, boolean readOnly, int numQueues, String cpumask,
                                                       QueuePlacement.Mode placement, boolean packedRing) {
        checkNewControllerName(ctrlr);
        QueuePlacement p = place(cpumask, placement, 0);
        BlockDevice bdev = bdevs.claim(devName, "vhost controller " + ctrlr);
        try {
            BlkDevice dev = new BlkDevice(ctrlr, bdev, readOnly, numQueues, p);
            dev.offerPackedRing(packedRing);
            Controller c = new Controller(ctrlr, socketDir.resolve(ctrlr).toString(), dev, socketAccess);
            controllers.put(ctrlr, c);
            log.info("{}: queues placed {}", ctrlr, p);
            return c;
        } catch (RuntimeException e) {
            bdevs.release(devName, "vhost controller " + ctrlr);
            throw e;
        }
    }

    /** SPDK vhost_create_scsi_controller (no targets yet), all queues on one reactor. */
    public Controller createScsiController(String ctrlr, int requestQueues, String cpumask) {
        return createScsiController(ctrlr, requestQueues, cpumask, QueuePlacement.Mode.ONE_REACTOR);
    }

    /**
     * SPDK vhost_create_scsi_controller with jvhost's queue_placement: spread deals the request
     * queues over the cpumask's reactors; the control and event queues stay on the first.
     */
    public Controller createScsiController(String ctrlr, int requestQueues, String cpumask, QueuePlacement.Mode placement) {
        return createScsiController(ctrlr, requestQueues, cpumask, placement, false);
    }

    /** As above; {@code packedRing}: VIRTIO_F_RING_PACKED is offered (jvhost's extension: SPDK's vhost-scsi has none). */
    public synchronized Controller createScsiController(String ctrlr, int requestQueues, String cpumask, QueuePlacement.Mode placement,
                                                        boolean packedRing) {
        checkNewControllerName(ctrlr);
        QueuePlacement p = place(cpumask, placement, io.jvhost.virtio.ScsiLayout.FIRST_REQUEST_QUEUE);
        VirtioScsiDevice dev = new VirtioScsiDevice(ctrlr, requestQueues, p);
        dev.offerPackedRing(packedRing);
        Controller c = new Controller(ctrlr, socketDir.resolve(ctrlr).toString(), dev, socketAccess);
        controllers.put(ctrlr, c);
        log.info("{}: queues placed {}", ctrlr, p);
        return c;
    }

    private VirtioScsiDevice scsiDevice(String ctrlr) {
        Controller c = controller(ctrlr);
        if (deleting.contains(ctrlr)) throw beingDeleted(ctrlr);
        if (!(c.device() instanceof VirtioScsiDevice d)) {
            throw new IllegalArgumentException("controller '" + ctrlr + "' is not a vhost-scsi controller");
        }
        return d;
    }

    /**
     * SPDK vhost_scsi_controller_add_target: bdev {@code bdevName} becomes LUN 0 of target
     * {@code num} (-1: first free); a running guest is told to rescan. Returns the target number.
     */
    public synchronized int addScsiTarget(String ctrlr, int num, String bdevName) {
        VirtioScsiDevice d = scsiDevice(ctrlr);
        String owner = "vhost controller " + ctrlr;
        BlockDevice bdev = bdevs.claim(bdevName, owner);
        try {
            return d.attach(num, bdev);
        } catch (RuntimeException e) {
            bdevs.release(bdevName, owner);
            throw e;
        }
    }

    /**
     * SPDK vhost_scsi_controller_remove_target: the guest is told the target is gone, commands in
     * flight complete, then the bdev is released. Returns once removal has started.
     */
    public synchronized void removeScsiTarget(String ctrlr, int num) {
        VirtioScsiDevice d = scsiDevice(ctrlr);
        String owner = "vhost controller " + ctrlr;
        d.detach(num, bdev -> bdevs.release(bdev.name(), owner));
    }

    /**
     * Controller names become socket file names (and appear in logs and configs), so they are
     * limited to what SPDK's docs and scripts use: letters, digits, '.', '_', '-' and ':', not
     * starting with '.' or '-', at most 255 bytes. SPDK itself checks only the path length;
     * a name with a '/', "..", a newline, '*' or a space is refused here instead of becoming a
     * strange file.
     */
    public static void checkControllerName(String ctrlr) {
        if (ctrlr == null || ctrlr.isEmpty()) throw new IllegalArgumentException("ctrlr must not be empty");
        if (ctrlr.length() > 255 || !CONTROLLER_NAME.matcher(ctrlr).matches()) {
            throw new IllegalArgumentException("ctrlr '" + printable(ctrlr) + "' is not a valid controller name: it names the socket file, so it must be a plain file name"
                    + " of letters, digits, '.', '_', '-' and ':' (not starting with '.' or '-'), at most 255 characters");
        }
    }

    private static final java.util.regex.Pattern CONTROLLER_NAME = java.util.regex.Pattern.compile("[A-Za-z0-9_:][A-Za-z0-9._:-]*");

    /** The name with control characters escaped, safe for one log line. */
    static String printable(String s) {
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < s.length() && i < 80; i++) {
            char c = s.charAt(i);
            if (c < 0x20 || c == 0x7f) b.append(String.format("\\x%02x", (int) c));
            else b.append(c);
        }
        if (s.length() > 80) b.append("...");
        return b.toString();
    }

    private void checkNewControllerName(String ctrlr) {
        checkControllerName(ctrlr);
        if (controllers.containsKey(ctrlr)) throw new BdevException(BdevException.Kind.EXISTS, "controller '" + ctrlr + "' already exists");
    }

    public synchronized Controller controller(String name) {
        Controller c = controllers.get(name);
        if (c == null) throw new BdevException(BdevException.Kind.NOT_FOUND, "controller '" + name + "' does not exist");
        return c;
    }

    public synchronized List<Controller> controllers() {
        return new ArrayList<>(controllers.values());
    }

    /**
     * SPDK vhost_delete_controller: refused with {@link ControllerBusyException} while a
     * front-end is connected (as SPDK does); otherwise stops listening, removes the socket,
     * closes its block channels on its reactors and releases the bdevs. The target's lock is held
     * only to mark the controller as being deleted and, at the end, to remove it: the waits in
     * between (the accept thread, each reactor's answer) do not stall other RPCs. Meanwhile the
     * controller is still listed, its name stays taken and changes to it are refused.
     */
    public void deleteController(String name) {
        Controller c;
        synchronized (this) {
            c = controller(name);
            if (!deleting.add(name)) throw beingDeleted(name);
        }
        boolean closed = false;
        try {
            String live = c.closeIfIdle();
            if (live != null) throw new ControllerBusyException(name, live);
            closed = true; // no longer listening: whatever follows, the controller goes
            releaseDevice(c);
        } finally {
            synchronized (this) {
                deleting.remove(name);
                if (closed) controllers.remove(name);
            }
        }
    }

    /** Controllers whose deletion has started and not finished (guarded by this). */
    private final java.util.Set<String> deleting = new java.util.HashSet<>();

    private static BdevException beingDeleted(String name) {
        return new BdevException(BdevException.Kind.IN_USE, "controller '" + name + "' is being deleted");
    }

    /** After a controller is closed: its bdevs go back to the registry, its SCSI channels close. */
    private void releaseDevice(Controller c) {
        String owner = "vhost controller " + c.name();
        if (c.device() instanceof BlkDevice b) bdevs.release(b.bdev().name(), owner);
        if (c.device() instanceof VirtioScsiDevice d) {
            for (var t : d.scsi().targets()) {
                d.scsi().removeTarget(t.id(), null);
                bdevs.release(t.lun(0).bdev().name(), owner);
            }
            d.closeChannels();
        }
    }

    /**
     * Shutdown: ends every session (waiting for each, outside the target's lock so RPCs are not
     * stalled meanwhile), then stops the reactors and closes the bdevs.
     */
    @Override
    public void close() {
        List<Controller> all;
        synchronized (this) {
            all = new ArrayList<>(controllers.values());
            controllers.clear();
        }
        for (Controller c : all) {
            try {
                c.close();
                releaseDevice(c);
            } catch (RuntimeException e) {
                log.warn("closing controller {}: {}", c.name(), e.getMessage());
            }
        }
        for (Reactor r : reactors) r.close();
        bdevs.closeAll();
    }
}
