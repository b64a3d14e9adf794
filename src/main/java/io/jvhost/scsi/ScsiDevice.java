package io.jvhost.scsi;

import io.jvhost.bdev.BlockDevice;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicReferenceArray;

/**
 * The targets behind one SCSI transport endpoint (a virtio-scsi controller): up to eight, looked
 * up by id without locking from the reactor, added and removed from control threads.
 * A removed target's slot is freed when its removal finishes (see {@link ScsiTarget#remove}).
 */
public final class ScsiDevice {
    public static final int MAX_TARGETS = ScsiTarget.MAX_ID + 1;

    private final String name;
    private final AtomicReferenceArray<ScsiTarget> targets = new AtomicReferenceArray<>(MAX_TARGETS);
    private final int lanes;

    public ScsiDevice(String name) {
        this(name, 1);
    }

    /** A device whose targets take tasks on {@code lanes} reactors (see {@link ScsiTask#lane(int)}). */
    public ScsiDevice(String name, int lanes) {
        this.name = name;
        this.lanes = lanes;
    }

    public int lanes() {
        return lanes;
    }

    public String name() {
        return name;
    }

    /** Adds target {@code id} with LUN 0 on {@code bdev}; throws if the id is bad or in use. */
    public ScsiTarget addTarget(int id, String targetName, BlockDevice bdev) {
        ScsiTarget t = new ScsiTarget(id, targetName, bdev, lanes);
        if (!targets.compareAndSet(id, null, t)) {
            throw new IllegalStateException("SCSI target " + id + " of " + name + " is in use");
        }
        return t;
    }

    /** The target with this id (any state), or null; any int is accepted. */
    public ScsiTarget target(int id) {
        return id >= 0 && id < MAX_TARGETS ? targets.get(id) : null;
    }

    /** The LUN, or null when the target or LUN does not exist or the target is not ACTIVE. */
    public ScsiLun lun(int targetId, int lun) {
        ScsiTarget t = target(targetId);
        if (t == null || t.state() != ScsiTarget.State.ACTIVE) return null;
        return t.lun(lun);
    }

    /**
     * Starts removing target {@code id}; {@code onRemoved} (may be null) runs once it is REMOVED
     * and its slot is free. Returns false when there is no such ACTIVE target.
     */
    public boolean removeTarget(int id, Runnable onRemoved) {
        ScsiTarget t = target(id);
        if (t == null) return false;
        return t.remove(() -> {
            targets.compareAndSet(id, t, null);
            if (onRemoved != null) onRemoved.run();
        });
    }

    /** Snapshot of the present targets. */
    public List<ScsiTarget> targets() {
        List<ScsiTarget> l = new ArrayList<>();
        for (int i = 0; i < MAX_TARGETS; i++) {
            ScsiTarget t = targets.get(i);
            if (t != null) l.add(t);
        }
        return l;
    }
}
