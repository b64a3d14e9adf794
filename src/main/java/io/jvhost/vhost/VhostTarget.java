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
     * Picks the reactor for a controller from an SPDK-style cpumask ("0x2", "2", "[1]"): the lowest
     * set core, modulo the reactor count. Null or empty: reactor 0.
     */
    public Reactor reactorFor(String cpumask) {
        if (cpumask == null || cpumask.isBlank()) return reactors[0];
        long mask = Cpumask.parse(cpumask);
        int core = Long.numberOfTrailingZeros(mask);
        if (cores != null) {
            for (int i = 0; i < cores.length; i++) if (cores[i] == core) return reactors[i];
            throw new IllegalArgumentException("cpumask " + cpumask + " selects core " + core + ", which runs no reactor (the target's core mask has "
                    + java.util.Arrays.toString(cores) + ")");
        }
        if (core >= reactors.length) {
            throw new IllegalArgumentException("cpumask " + cpumask + " selects core " + core + " but only "
                    + reactors.length + " reactor(s) run (start with more --reactors or a --cpumask)");
        }
        return reactors[core];
    }

    /** SPDK vhost_create_blk_controller. */
    public synchronized Controller createBlkController(String ctrlr, String devName, boolean readOnly, int numQueues, String cpumask) {
        checkNewControllerName(ctrlr);
        Reactor r = reactorFor(cpumask);
        BlockDevice bdev = bdevs.claim(devName, "vhost controller " + ctrlr);
        try {
            BlkDevice dev = new BlkDevice(ctrlr, bdev, readOnly, numQueues, r);
            Controller c = new Controller(ctrlr, socketDir.resolve(ctrlr).toString(), dev, socketAccess);
            controllers.put(ctrlr, c);
            return c;
        } catch (RuntimeException e) {
            bdevs.release(devName, "vhost controller " + ctrlr);
            throw e;
        }
    }

    /** SPDK vhost_create_scsi_controller (no targets yet). */
    public synchronized Controller createScsiController(String ctrlr, int requestQueues, String cpumask) {
        checkNewControllerName(ctrlr);
        Reactor r = reactorFor(cpumask);
        VirtioScsiDevice dev = new VirtioScsiDevice(ctrlr, requestQueues, r);
        Controller c = new Controller(ctrlr, socketDir.resolve(ctrlr).toString(), dev, socketAccess);
        controllers.put(ctrlr, c);
        return c;
    }

    private VirtioScsiDevice scsiDevice(String ctrlr) {
        Controller c = controller(ctrlr);
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
     * front-end is connected (as SPDK does); otherwise stops listening, removes the socket and
     * releases the bdevs. Never waits for a session, so the target's lock is held only briefly.
     */
    public synchronized void deleteController(String name) {
        Controller c = controller(name);
        String live = c.closeIfIdle();
        if (live != null) throw new ControllerBusyException(name, live);
        controllers.remove(name);
        releaseDevice(c);
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
