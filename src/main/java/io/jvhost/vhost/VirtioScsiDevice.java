package io.jvhost.vhost;

import io.jvhost.bdev.BlockChannel;
import io.jvhost.bdev.BlockDevice;
import io.jvhost.runtime.Reactor;
import io.jvhost.scsi.ScsiDevice;
import io.jvhost.scsi.ScsiTarget;
import io.jvhost.virtio.LittleEndian;
import io.jvhost.virtio.VirtQueue;
import io.jvhost.virtio.VirtioFeatures;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayDeque;
import java.util.function.Consumer;

import static io.jvhost.virtio.ScsiLayout.*;

/**
 * virtio-scsi over vhost-user (VIRTIO 1.2, 5.6): a SCSI host whose targets 0-7 each have LUN 0
 * on a bdev, with a control queue (task management, async-notification queries), an event queue
 * (hot-attach/detach as TRANSPORT_RESET RESCAN/REMOVED) and request queues.
 *
 * <p>Threading: the queues run on the reactors {@link QueuePlacement} gives them: all on one
 * (the default) or the request queues spread over several, each reactor being a <em>lane</em>
 * with its own block channels to the targets and its own share of each LUN's task state. The
 * control and event queues and the pending-event queue live on the home reactor (lane 0); task
 * management is sent from there to every lane (see {@link ScsiControlProcessor}). Targets are
 * attached and detached from control threads through {@link ScsiDevice} (lock-free) and
 * reactor commands.
 */
public final class VirtioScsiDevice implements VhostUserDevice {
    private static final Logger log = LoggerFactory.getLogger(VirtioScsiDevice.class);
    /** Events kept while the guest has no event buffer posted; beyond that they are "missed". */
    static final int MAX_PENDING_EVENTS = 64;

    private final String name;
    private final ScsiDevice scsi;
    private final int requestQueues;
    private final Reactor reactor;
    private final QueuePlacement placement;
    private volatile int senseSize = DEFAULT_SENSE_SIZE;
    private volatile int cdbSize = DEFAULT_CDB_SIZE;
    /** VIRTIO_F_RING_PACKED is offered (jvhost's packed_ring); set before the controller listens. */
    private volatile boolean packedRing;

    // Reactor-thread state: channels per lane, each array touched by its lane's reactor only.
    private final BlockChannel[][] channels;
    private final ScsiTarget[][] channelOwners;
    private final ArrayDeque<int[]> pendingEvents = new ArrayDeque<>();
    private boolean eventsMissed;
    private ScsiEventProcessor eventProcessor;
    /** A guest driver has run the event queue in the current session: hotplug events matter. */
    private boolean guestAttached;

    public VirtioScsiDevice(String name, int requestQueues, Reactor reactor) {
        this(name, requestQueues, QueuePlacement.oneReactor(reactor));
    }

    public VirtioScsiDevice(String name, int requestQueues, QueuePlacement placement) {
        if (requestQueues < 1 || requestQueues > 62) throw new IllegalArgumentException("num_queues must be 1..62, got " + requestQueues);
        this.name = name;
        this.placement = placement;
        this.scsi = new ScsiDevice(name, placement.lanes());
        this.requestQueues = requestQueues;
        this.reactor = placement.home();
        channels = new BlockChannel[placement.lanes()][ScsiDevice.MAX_TARGETS];
        channelOwners = new ScsiTarget[placement.lanes()][ScsiDevice.MAX_TARGETS];
    }

    public String name() { return name; }
    public ScsiDevice scsi() { return scsi; }
    public int requestQueues() { return requestQueues; }
    /** Is VIRTIO_F_RING_PACKED offered? */
    public boolean packedRing() { return packedRing; }
    /** Offers VIRTIO_F_RING_PACKED (or not) to front-ends that connect from now on. */
    public void offerPackedRing(boolean on) { packedRing = on; }
    int senseSize() { return senseSize; }
    int cdbSize() { return cdbSize; }

    @Override public int virtioDeviceId() { return 8; }
    @Override public int maxQueues() { return FIRST_REQUEST_QUEUE + requestQueues; }
    @Override public Reactor reactor() { return reactor; }
    @Override public QueuePlacement placement() { return placement; }

    /** Lanes (reactors) of this device; 1 unless its queues are spread. */
    int lanes() { return placement.lanes(); }
    int laneOf(int queueIndex) { return placement.laneOf(queueIndex); }
    Reactor laneReactor(int lane) { return placement.reactor(lane); }

    /**
     * Largest number of data segments per command we announce (seg_max, 5.6.4) to front-ends
     * that read our config (QEMU's vhost-user-scsi does not: it shows the guest its own).
     * Chains this long are accepted even on smaller queues; longer ones are not refused.
     */
    public static final int SEG_MAX = 126;
    /**
     * Largest transfer per command in 512-byte sectors we announce (max_sectors, 5.6.4): the
     * SCSI layer's maximum transfer length (4 MiB), which it enforces per CDB.
     */
    public static final int MAX_SECTORS = 8192;

    @Override
    public long features() {
        return (packedRing ? VirtioFeatures.bit(VirtioFeatures.RING_PACKED) : 0)
                | VirtioFeatures.bit(VirtioFeatures.VERSION_1)
                | VirtioFeatures.bit(VirtioFeatures.RING_INDIRECT_DESC)
                | VirtioFeatures.bit(VirtioFeatures.RING_EVENT_IDX)
                | VirtioFeatures.bit(F_HOTPLUG)
                // Parameter-change events: we send none, but the driver may take them (SPDK offers it too).
                | VirtioFeatures.bit(F_CHANGE);
    }

    @Override
    public void readConfig(MemorySegment c) {
        c.set(LittleEndian.U32, C_NUM_QUEUES, requestQueues);
        c.set(LittleEndian.U32, C_SEG_MAX, SEG_MAX);
        c.set(LittleEndian.U32, C_MAX_SECTORS, MAX_SECTORS);
        c.set(LittleEndian.U32, C_CMD_PER_LUN, 128);
        c.set(LittleEndian.U32, C_EVENT_INFO_SIZE, EVENT_SIZE);
        c.set(LittleEndian.U32, C_SENSE_SIZE, senseSize);
        c.set(LittleEndian.U32, C_CDB_SIZE, cdbSize);
        c.set(LittleEndian.U16, C_MAX_CHANNEL, (short) 0);
        c.set(LittleEndian.U16, C_MAX_TARGET, (short) ScsiTarget.MAX_ID);
        c.set(LittleEndian.U32, C_MAX_LUN, 0);
    }

    /** The driver may set sense_size and cdb_size (5.6.4); values are bounded to what we handle. */
    @Override
    public boolean writeConfig(int offset, MemorySegment src, int len) {
        if (len != 4 || (offset != C_SENSE_SIZE && offset != C_CDB_SIZE)) return false;
        int v = src.get(LittleEndian.U32, 0);
        if (offset == C_SENSE_SIZE) {
            if (v < 0 || v > 252) return false;
            senseSize = v;
        } else {
            if (v < 6 || v > 32) return false;
            cdbSize = v;
        }
        return true;
    }

    @Override
    public QueueProcessor newQueueProcessor(VirtQueue queue, int kickFd) {
        Reactor r = placement.reactorOf(queue.index());
        return switch (queue.index()) {
            case CONTROL_QUEUE -> new ScsiControlProcessor(this, queue, r, kickFd);
            case EVENT_QUEUE -> new ScsiEventProcessor(this, queue, r, kickFd);
            default -> new ScsiRequestProcessor(this, queue, r, kickFd);
        };
    }

    // ---- reactor-thread helpers ----

    /** The block channel of {@code t}'s LUN 0 on lane {@code lane} (its reactor thread), opened on first use. */
    BlockChannel channelFor(int lane, ScsiTarget t) {
        int id = t.id();
        BlockChannel[] channels = this.channels[lane];
        ScsiTarget[] channelOwners = this.channelOwners[lane];
        if (channelOwners[id] != t) {
            if (channels[id] != null) closeChannel(lane, channelOwners[id]); // previous target in this slot is REMOVED
            // The device's own channel (not shared through ReactorChannels: tasks abandoned at a
            // forced stop must never be completed by another device's poll).
            BlockChannel c = t.lun(0).bdev().openChannel();
            // A channel completing elsewhere wakes the reactor through its eventfd, so it may sleep with I/O in flight.
            if (c.wakeFd() >= 0) placement.reactor(lane).addWakeFd(c.wakeFd());
            channels[id] = c;
            channelOwners[id] = t;
        }
        return channels[id];
    }

    /** Polls lane {@code lane}'s channels (its reactor thread). */
    int pollChannels(int lane) {
        BlockChannel[] channels = this.channels[lane];
        ScsiTarget[] channelOwners = this.channelOwners[lane];
        int n = 0;
        for (int i = 0; i < channels.length; i++) {
            BlockChannel c = channels[i];
            if (c == null) continue;
            n += c.poll();
            ScsiTarget t = channelOwners[i];
            if (t.tasksWaitingForRoom(lane)) n += t.resubmitWaiting(lane);
        }
        return n;
    }

    /**
     * True when the reactor may sleep with this device's I/O in flight: no task waits for room
     * and every channel with requests in flight signals a registered wake fd.
     */
    boolean ioWakesReactor(int lane) {
        BlockChannel[] channels = this.channels[lane];
        for (int i = 0; i < channels.length; i++) {
            BlockChannel c = channels[i];
            if (c == null) continue;
            if (c.inFlight() > 0 && c.wakeFd() < 0) return false;
            if (channelOwners[lane][i].tasksWaitingForRoom(lane)) return false;
        }
        return true;
    }

    /**
     * The reactor's hybrid wait: the shortest expected wait among this lane's channels with
     * requests in flight (ns), 0 when none has an estimate.
     */
    long ioWaitNanos(int lane) {
        BlockChannel[] channels = this.channels[lane];
        long shortest = 0;
        for (BlockChannel c : channels) {
            if (c == null || c.inFlight() == 0) continue;
            long w = c.expectedWaitNanos();
            if (w > 0 && (shortest == 0 || w < shortest)) shortest = w;
        }
        return shortest;
    }

    /** Lane {@code lane}'s reactor thread: closes its channel to {@code t}. */
    private void closeChannel(int lane, ScsiTarget t) {
        int id = t.id();
        BlockChannel[] channels = this.channels[lane];
        ScsiTarget[] channelOwners = this.channelOwners[lane];
        if (channelOwners[id] == t) {
            if (channels[id].wakeFd() >= 0) placement.reactor(lane).removeWakeFd(channels[id].wakeFd());
            channels[id].close();
            channels[id] = null;
            channelOwners[id] = null;
        }
    }

    void eventProcessor(ScsiEventProcessor p) {
        eventProcessor = p;
        if (p != null) guestAttached = true;
    }

    @Override
    public void sessionEnded() {
        onReactor("forgetting pending events", () -> {
            guestAttached = false;
            pendingEvents.clear();
            eventsMissed = false;
        });
    }

    /** Runs a control-path step on the reactor and waits; a failure is logged, not thrown. */
    private void onReactor(String what, Runnable r) {
        try {
            reactor.runAndWait(r, 10);
        } catch (Exception e) {
            log.warn("{}: {}: {}", name, what, e.toString());
        }
    }

    /** Next pending event as {event, target, reason}, or null; sets the missed flag on the event. */
    int[] nextEvent() {
        int[] e = pendingEvents.poll();
        if (e != null && eventsMissed) {
            e[0] |= T_EVENTS_MISSED;
            eventsMissed = false;
        }
        return e;
    }

    boolean hasPendingEvents() {
        return !pendingEvents.isEmpty();
    }

    private void queueEvent(int event, int target, int reason) {
        // Without a guest driver there is nobody to tell: a new guest scans all targets anyway.
        if (!guestAttached) return;
        if (pendingEvents.size() >= MAX_PENDING_EVENTS) {
            pendingEvents.poll();
            eventsMissed = true;
        }
        pendingEvents.add(new int[] {event, target, reason});
        if (eventProcessor != null) eventProcessor.deliver();
    }

    // ---- control path (any thread) ----

    /**
     * Attaches {@code bdev} as target {@code num} (-1: the first free id) and announces it to a
     * running guest (RESCAN). Returns the target id.
     */
    public int attach(int num, BlockDevice bdev) {
        int id = num;
        if (id == -1) {
            for (int i = 0; i < ScsiDevice.MAX_TARGETS && id == -1; i++) if (scsi.target(i) == null) id = i;
            if (id == -1) throw new IllegalStateException("all " + ScsiDevice.MAX_TARGETS + " SCSI targets of " + name + " are in use");
        }
        if (id < 0 || id > ScsiTarget.MAX_ID) throw new IllegalArgumentException("scsi_target_num must be -1 or 0.." + ScsiTarget.MAX_ID + ", got " + num);
        scsi.addTarget(id, "Target " + id, bdev);
        postEvent(T_TRANSPORT_RESET, id, EVT_RESET_RESCAN);
        log.info("{}: SCSI target {} attached (bdev {})", name, id, bdev.name());
        return id;
    }

    /**
     * Detaches target {@code id}: the guest is told (REMOVED), new commands get BAD_TARGET, commands
     * in flight complete; then {@code onRemoved} gets the bdev (to release its claim).
     */
    public void detach(int id, Consumer<BlockDevice> onRemoved) {
        ScsiTarget t = scsi.target(id);
        if (t == null || t.state() != ScsiTarget.State.ACTIVE) {
            throw new IllegalArgumentException("SCSI target " + id + " of " + name + " does not exist");
        }
        BlockDevice bdev = t.lun(0).bdev();
        postEvent(T_TRANSPORT_RESET, id, EVT_RESET_REMOVED);
        scsi.removeTarget(id, () -> {
            for (int lane = 0; lane < placement.lanes(); lane++) {
                int l = lane;
                placement.reactor(lane).call(() -> {
                    closeChannel(l, t);
                    return null;
                });
            }
            log.info("{}: SCSI target {} removed (bdev {})", name, id, bdev.name());
            onRemoved.accept(bdev);
        });
    }

    private void postEvent(int event, int target, int reason) {
        onReactor("queueing an event for target " + target, () -> queueEvent(event, target, reason));
    }

    /** Closes every channel (reactor stopped or controller deleted). */
    void closeChannels() {
        for (int lane = 0; lane < placement.lanes(); lane++) {
            int l = lane;
            try {
                placement.reactor(lane).runAndWait(() -> {
                    for (ScsiTarget t : channelOwners[l]) if (t != null) closeChannel(l, t);
                }, 10);
            } catch (Exception e) {
                log.warn("{}: closing channels of lane {}: {}", name, lane, e.toString());
            }
        }
    }
}
