package io.jvhost.vhost;

import io.jvhost.memory.GuestMemory;
import io.jvhost.memory.MemoryRegion;
import io.jvhost.sys.Fd;
import io.jvhost.virtio.SplitRing;
import io.jvhost.virtio.VirtQueue;
import io.jvhost.virtio.VirtioFeatures;
import io.jvhost.vhostuser.ConfigPayload;
import io.jvhost.vhostuser.InflightPayload;
import io.jvhost.vhostuser.LogPayload;
import io.jvhost.vhostuser.MemRegion;
import io.jvhost.vhostuser.MemTable;
import io.jvhost.vhostuser.ToleranceLog;
import io.jvhost.vhostuser.VhostUserBackendDispatcher;
import io.jvhost.vhostuser.VhostUserBackendHandler;
import io.jvhost.vhostuser.VhostUserConnection;
import io.jvhost.vhostuser.VhostUserMessage;
import io.jvhost.vhostuser.VhostUserProtocolException;
import io.jvhost.vhostuser.VhostUserRequest;
import io.jvhost.vhostuser.VringAddr;
import io.jvhost.vhostuser.VringFile;
import io.jvhost.vhostuser.VringState;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.EOFException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;

import static io.jvhost.vhostuser.VhostUserProtocol.*;

/**
 * One live vhost-user connection to a controller (SPDK: a vhost session). Runs on its own
 * control thread: reads front-end messages and keeps the negotiated state and the guest memory
 * table; each ring's configuration and lifecycle (building, starting, stopping and changing
 * queues on the device's reactor) is {@link Vrings}'.
 *
 * <p>A ring is processed while it is started (from SET_VRING_KICK until GET_VRING_BASE),
 * enabled (SET_VRING_ENABLE; rings start enabled when VHOST_USER_F_PROTOCOL_FEATURES was not
 * negotiated) and its addresses resolve in guest memory. A new call or error fd and added or
 * removed memory regions are swapped into running rings in place; other changes to a running
 * ring (size, addresses, base, kick fd, features, a whole new memory table) stop it (draining
 * in-flight requests), apply the change and start it again at the same available index. No
 * request is lost either way (see {@link Vrings}).
 *
 * <p>Liberal where the ecosystem is, strict where safety needs it: what DPDK's vhost library and
 * libvhost-user both accept (SET_VRING_ENABLE with the ring size, NEED_REPLY without REPLY_ACK,
 * a 32-bit SET_VRING_BASE, an empty memory table, ...) is accepted, logged once at debug and
 * counted in {@code toleratedDeviations}; bounds, sizes, fds, addresses, ring sizes and memory stay
 * checked. The decision for every check is the table in the README's Compatibility section.
 *
 * <p>The protocol side (decoding, feature gating, replies and REPLY_ACK) is
 * {@link VhostUserBackendDispatcher}'s; this class is the {@link VhostUserBackendHandler}: it
 * decides each request on typed payloads.
 */
public final class Session implements Runnable, VhostUserBackendHandler {
    private static final Logger log = LoggerFactory.getLogger(Session.class);
    static final long STOP_TIMEOUT_SECONDS = 30;
    /**
     * Largest ring we accept (SPDK's SPDK_VHOST_MAX_VQ_SIZE, QEMU's VIRTQUEUE_MAX_SIZE): per-slot
     * request state is preallocated, so this bounds what one front-end can make us allocate.
     */
    static final int MAX_QUEUE_SIZE = 1024;

    private final Controller controller;
    private final VhostUserDevice device;
    private final VhostUserConnection conn;
    private final String name;
    private final VhostUserMessage in = new VhostUserMessage();
    private final VhostUserMessage out = new VhostUserMessage();
    private final Vrings rings;

    private long features;
    private long protocolFeatures;
    private volatile GuestMemory memory = GuestMemory.EMPTY;
    private volatile boolean closing;
    /** The dirty log's mapping (SET_LOG_BASE); the rings hold its {@link io.jvhost.memory.DirtyLog}. */
    private io.jvhost.sys.Mmap logMapping;
    private final ToleranceLog tolerance;
    private final VhostUserBackendDispatcher dispatcher;
    private static final int QUIRK_ODD_ENABLE = 1 << 16;
    private static final int QUIRK_WIDE_VRING_BASE = 1 << 18;
    private static final int QUIRK_EMPTY_MEM_TABLE = 1 << 20;
    private static final int QUIRK_ZERO_RING_SIZE = 1 << 21;
    private static final int QUIRK_CONFIG_OFFSET_0X100 = 1 << 22;
    /** Where rust-vmm's vhost crate used to count config offsets from (its VHOST_USER_CONFIG_OFFSET). */
    static final int RUST_VMM_CONFIG_OFFSET = 0x100;

    Session(Controller controller, VhostUserDevice device, VhostUserConnection conn, int id) {
        this.controller = controller;
        this.device = device;
        this.conn = conn;
        this.name = controller.name() + "#" + id;
        rings = new Vrings(log, name, controller, this, device);
        tolerance = new ToleranceLog(log, name, controller.stats.toleratedDeviations);
        dispatcher = new VhostUserBackendDispatcher(name, this, conn, out, tolerance, controller.stats.failedRequests, controller.stats.unsupportedRequests);
        // The reader waits for the socket or this wake fd: close() ends the session without the
        // front-end seeing the connection end before the rings are drained.
        wakeFd = io.jvhost.sys.EventFd.create(true);
        waiter = new io.jvhost.sys.Epoll(2);
        waiter.add(conn.socket().fd(), io.jvhost.sys.Epoll.EPOLLIN, 0);
        waiter.add(wakeFd, io.jvhost.sys.Epoll.EPOLLIN, 1);
    }

    private final int wakeFd;
    private final io.jvhost.sys.Epoll waiter;

    /** Waits until a message (or the end) can be read; false once {@link #close} asked the session to end. */
    private boolean awaitMessage() {
        while (!closing) {
            int n = waiter.await(-1);
            for (int i = 0; i < n; i++) if (waiter.data(i) == 1) return false;
            if (n > 0) return !closing;
        }
        return false;
    }

    public String name() {
        return name;
    }

    long offeredFeatures() {
        return device.features() | VirtioFeatures.bit(VirtioFeatures.VHOST_USER_PROTOCOL_FEATURES) | VirtioFeatures.bit(VirtioFeatures.LOG_ALL);
    }

    static long offeredProtocolFeatures() {
        return (1L << PF_MQ) | (1L << PF_REPLY_ACK) | (1L << PF_CONFIG) | (1L << PF_CONFIGURE_MEM_SLOTS) | (1L << PF_RESET_DEVICE)
                | (1L << PF_LOG_SHMFD) | (1L << PF_INFLIGHT_SHMFD);
    }

    public long negotiatedFeatures() {
        return features;
    }

    /** Applies interrupt coalescing to the running queues (on their reactor); any thread. */
    void applyCoalescing(long delayBaseUs, long iopsThreshold) {
        rings.applyCoalescing(delayBaseUs, iopsThreshold);
    }

    /**
     * Ring {@code idx}'s addresses as SET_VRING_ADDR last set them (flags and log address
     * included), or null before that. The session's control thread; tests read it once quiet.
     */
    VringAddr vringAddr(int idx) {
        return rings.ring(idx).addr();
    }

    /** Guest memory regions mapped now (for tests and statistics); any thread. */
    public List<MemoryRegion> memoryRegions() {
        return memory.regions();
    }

    /** Ring stops handed to the reactor so far (tests order their steps after one). */
    long stopsRequested() {
        return rings.stopsRequested();
    }

    /** Queues currently being processed (for statistics); any thread. */
    public List<VirtQueue> runningQueues() {
        return rings.runningQueues();
    }

    /** Ring processors stopped so far (each drains the ring; in-place swaps do not count). */
    long ringStops() {
        return rings.stops();
    }

    /** Call fd, error fd and memory changes taken by running rings without stopping them. */
    long inPlaceSwaps() {
        return rings.inPlaceSwaps();
    }

    @Override
    public void run() {
        log.info("{}: front-end connected", name);
        String why = "front-end disconnected";
        try {
            while (awaitMessage()) {
                conn.receive(in);
                if (log.isDebugEnabled()) log.debug("{}: <- {}", name, in);
                dispatcher.dispatch(in);
                in.closeFds();
            }
            why = "controller shutting down"; // awaitMessage returns false only once close() was called
        } catch (EOFException e) {
            why = closing ? "controller shutting down" : "front-end disconnected";
        } catch (VhostUserProtocolException e) {
            controller.stats.protocolErrors.incrementAndGet();
            why = "protocol error: " + e.getMessage();
            log.warn("{}: closing connection: {}", name, e.getMessage());
        } catch (io.jvhost.sys.NativeException e) {
            if (hungUp(e)) {
                // The front-end left while a reply was owed (found by SessionFuzzTest): a disconnect.
                why = "front-end disconnected before its reply was sent (" + e.getMessage() + ")";
            } else {
                unexpected(e);
                why = "internal error: " + e;
            }
        } catch (Throwable t) {
            unexpected(t);
            why = "internal error: " + t;
        } finally {
            teardown();
            log.info("{}: session ended ({})", name, why);
        }
    }

    private static boolean hungUp(io.jvhost.sys.NativeException e) {
        return e.errno() == io.jvhost.sys.Errno.EPIPE || e.errno() == io.jvhost.sys.Errno.ECONNRESET;
    }

    private void unexpected(Throwable t) {
        controller.stats.protocolErrors.incrementAndGet();
        log.error("{}: closing connection after unexpected error", name, t);
    }

    boolean closing() {
        return closing;
    }

    /**
     * Asks the session to end: wakes the reader; {@link #run()} then tears down. The socket is
     * left alone here: the front-end sees the connection end only after the teardown drained the
     * rings. QEMU takes the guest's used index as the ring's base the moment it sees the end
     * (its GET_VRING_BASE fails); completions published after that moment would be taken again
     * by the next back-end. Any thread.
     */
    void close() {
        closing = true;
        synchronized (wakeLock) {
            if (!wakeClosed) io.jvhost.sys.EventFd.signal(wakeFd, wakeScratch);
        }
    }

    /** Guards {@link #wakeFd} (and its scratch) against a {@link #close} racing the teardown (the fd number could be reused). */
    private final Object wakeLock = new Object();
    private boolean wakeClosed;
    private final java.lang.foreign.MemorySegment wakeScratch = java.lang.foreign.Arena.ofAuto().allocate(8);

    /** Shuts both directions down: unblocks a session stuck sending to a front-end that does not read. Any thread. */
    void abort() {
        closing = true;
        conn.shutdown();
    }

    private void tolerate(int quirk, String what) {
        tolerance.tolerate(quirk, what);
    }

    // ---- VhostUserBackendHandler: negotiation ----

    @Override
    public long ackedFeatures() {
        return features;
    }

    @Override
    public long ackedProtocolFeatures() {
        return protocolFeatures;
    }

    @Override
    public long getFeatures() {
        return offeredFeatures();
    }

    @Override
    public long getProtocolFeatures() {
        return offeredProtocolFeatures() & ~controller.withheldProtocolFeatures();
    }

    @Override
    public long getQueueNum() {
        return device.maxQueues();
    }

    @Override
    public long getMaxMemSlots() {
        return MAX_MEM_SLOTS;
    }

    @Override
    public boolean setOwner() {
        return true; // one front-end per connection: ownership is implied
    }

    @Override
    public boolean resetOwner() {
        resetDeviceState();
        return true;
    }

    @Override
    public boolean resetDevice() {
        resetDeviceState();
        return true;
    }

    // ---- migration (dirty log) and reconnect (inflight area); the dispatcher refuses these unless negotiated ----

    /** Largest dirty log we map: 1 bit per 4 KiB page, so 64 MiB covers 2 TiB of guest address space. */
    static final long MAX_LOG_BYTES = 64L << 20;

    @Override
    public boolean setLogBase(LogPayload l) {
        io.jvhost.sys.Mmap m;
        io.jvhost.memory.DirtyLog next;
        try {
            if (l.mmapSize() <= 0 || l.mmapSize() > MAX_LOG_BYTES || l.mmapOffset() < 0 || (l.mmapOffset() & 7) != 0) {
                throw new IllegalArgumentException("log of " + l.mmapSize() + " bytes at offset " + l.mmapOffset());
            }
            Fd.Stat st = Fd.fstat(l.fd());
            if (!st.regularFile() || Long.compareUnsigned(l.mmapOffset() + l.mmapSize(), st.size()) > 0) {
                throw new IllegalArgumentException("log fd is not a file of at least " + (l.mmapOffset() + l.mmapSize()) + " bytes");
            }
            if (!Fd.trySealShrink(l.fd())) throw new IllegalArgumentException("log fd cannot be sealed against shrinking");
            m = io.jvhost.sys.Mmap.map(l.fd(), l.mmapOffset(), l.mmapSize(), true);
            next = new io.jvhost.memory.DirtyLog(m.segment());
        } catch (RuntimeException e) {
            log.warn("{}: SET_LOG_BASE rejected: {}", name, e.getMessage());
            return false;
        }
        // Rings pick the log up when they start: restart the running ones (draining them).
        rings.stopAll();
        rings.dirtyLog(next);
        io.jvhost.sys.Mmap old = logMapping;
        logMapping = m;
        rings.reconcileAll(features, memory);
        if (old != null) old.close();
        log.info("{}: dirty log set ({} bytes, covers {} MiB of guest memory)", name, l.mmapSize(), l.mmapSize() * 8 * 4096 >> 20);
        return true;
    }

    @Override
    public boolean setLogFd(int fd) {
        // QEMU does not wait on it; the log is read when the front-end syncs. Accepted, not kept.
        log.debug("{}: SET_LOG_FD accepted", name);
        return true;
    }

    @Override
    public InflightPayload getInflightFd(InflightPayload request) {
        try {
            InflightPayload p = InflightArea.create(request.numQueues(), request.queueSize(), rings.count());
            log.info("{}: inflight area created for {} queue(s) of {} ({} bytes)", name, p.numQueues(), p.queueSize(), p.mmapSize());
            return p;
        } catch (RuntimeException e) {
            log.warn("{}: GET_INFLIGHT_FD for {} queues of {}: {}; answered with no area", name, request.numQueues(), request.queueSize(), e.getMessage());
            controller.stats.failedRequests.incrementAndGet();
            return InflightPayload.NONE;
        }
    }

    @Override
    public boolean setInflightFd(InflightPayload p) {
        InflightArea area;
        try {
            area = InflightArea.map(p, rings.count());
        } catch (RuntimeException e) {
            log.warn("{}: SET_INFLIGHT_FD rejected: {}", name, e.getMessage());
            return false;
        }
        rings.stopAll();
        InflightArea old = rings.inflight(area);
        rings.reconcileAll(features, memory);
        if (old != null) old.close();
        log.info("{}: inflight area set: {}", name, area);
        return true;
    }

    private Vrings.Vring ring(int index, VhostUserRequest req) throws VhostUserProtocolException {
        if (index < 0 || index >= rings.count()) {
            throw new VhostUserProtocolException(req + " names ring " + Integer.toUnsignedString(index) + " but the device has "
                    + rings.count() + " queues");
        }
        return rings.ring(index);
    }

    @Override
    public boolean setFeatures(long v) {
        long offered = offeredFeatures();
        long unoffered = v & ~offered;
        // Ring and transport bits (24 and up) change how we read guest memory: an ack of one we
        // never offered is refused. QEMU 7.2's vhost-user-scsi passes device bits it handles
        // itself (e.g. VIRTIO_SCSI_F_CHANGE) through to the back-end: those are dropped with a warning.
        if ((unoffered & ~0xffffffL) != 0) {
            log.warn("{}: SET_FEATURES 0x{} acks ring/transport bits never offered (0x{}), rejected", name, Long.toHexString(v), Long.toHexString(unoffered));
            return false;
        }
        if (unoffered != 0) {
            log.warn("{}: SET_FEATURES acks device feature bits never offered (0x{}); ignoring them", name, Long.toHexString(unoffered));
            v &= offered;
        }
        if (v == features && rings.anyRunning()) {
            // QEMU repeats SET_FEATURES at vhost_dev_start; the same bits change nothing in the rings.
            log.debug("{}: SET_FEATURES 0x{} unchanged; rings keep running", name, Long.toHexString(v));
            return true;
        }
        if (rings.anyRunning()) {
            // EVENT_IDX, INDIRECT_DESC or LOG_ALL change how a ring is read and written: the
            // rings stop (drained), then restart at the same index with the new features.
            if (((v ^ features) & ~VirtioFeatures.bit(VirtioFeatures.LOG_ALL)) == 0) {
                // Migration turns dirty logging on and off this way (QEMU's vhost_dev_set_log): routine.
                log.info("{}: dirty logging {}; restarting the rings", name, VirtioFeatures.has(v, VirtioFeatures.LOG_ALL) ? "on" : "off");
            } else {
                log.warn("{}: SET_FEATURES changes features while rings run; stopping them first", name);
            }
        }
        rings.stopAll();
        features = v;
        log.info("{}: features 0x{} negotiated", name, Long.toHexString(v));
        rings.reconcileAll(features, memory);
        return true;
    }

    @Override
    public boolean setProtocolFeatures(long v) {
        if ((v & ~getProtocolFeatures()) != 0) {
            log.warn("{}: SET_PROTOCOL_FEATURES 0x{} acks bits never offered, rejected", name, Long.toHexString(v));
            return false;
        }
        protocolFeatures = v;
        return true;
    }

    private boolean protocolFeaturesNegotiated() {
        return VirtioFeatures.has(features, VirtioFeatures.VHOST_USER_PROTOCOL_FEATURES);
    }

    // ---- memory ----

    @Override
    public boolean setMemTable(MemTable table) {
        int n = table.regions().size();
        if (n == 0) tolerate(QUIRK_EMPTY_MEM_TABLE, "SET_MEM_TABLE with no regions (the rings stop until memory comes back)");
        List<MemoryRegion> regions = new ArrayList<>();
        try {
            for (int i = 0; i < n; i++) {
                regions.add(mapRegion(table.regions().get(i)));
            }
            GuestMemory next = new GuestMemory(regions);
            replaceMemory(next);
            log.info("{}: memory table set, {} region(s): {}", name, n, regions);
            warnIfNotShared(regions);
            return true;
        } catch (RuntimeException e) {
            for (MemoryRegion r : regions) r.close();
            log.warn("{}: SET_MEM_TABLE rejected: {}", name, e.getMessage());
            return false;
        }
    }

    /** Guest RAM the front-end maps privately (QEMU without share=on): one error line with the fix (SharedMemoryCheck). */
    private void warnIfNotShared(List<MemoryRegion> regions) {
        String problem = SharedMemoryCheck.privateRegion(conn.socket().peerPid(), regions);
        if (problem != null) log.error("{}: guest memory is not shared: {}; {}", name, problem, SharedMemoryCheck.FIX);
    }

    private static MemoryRegion mapRegion(MemRegion d) {
        return MemoryRegion.map(d.fd(), d.guestAddr(), d.size(), d.userAddr(), d.mmapOffset());
        // the fd itself is closed with the message: the mapping keeps the memory alive
    }

    @Override
    public boolean addMemReg(MemRegion d) {
        if (memory.regionCount() >= MAX_MEM_SLOTS) {
            log.warn("{}: ADD_MEM_REG beyond {} slots, rejected", name, MAX_MEM_SLOTS);
            return false;
        }
        MemoryRegion r;
        try {
            r = mapRegion(d);
        } catch (RuntimeException e) {
            log.warn("{}: ADD_MEM_REG rejected: {}", name, e.getMessage());
            return false;
        }
        GuestMemory next;
        try {
            next = memory.with(r);
        } catch (RuntimeException e) {
            r.close();
            log.warn("{}: ADD_MEM_REG rejected: {}", name, e.getMessage());
            return false;
        }
        // Kept from here on even if a ring fails to take it: a ring that did may walk into it.
        memory = next;
        rings.swapMemory(next, null); // nothing is unmapped: running rings take it in place
        rings.reconcileAll(features, memory); // rings waiting for this memory may start now
        log.info("{}: memory region added: {}", name, r);
        warnIfNotShared(List.of(r));
        return true;
    }

    @Override
    public boolean remMemReg(MemRegion d) {
        long gpa = d.guestAddr();
        long size = d.size();
        long uva = d.userAddr();
        for (MemoryRegion r : memory.regions()) {
            if (r.guestPhysAddr() == gpa && r.size() == size && r.userAddr() == uva) {
                GuestMemory next = memory.without(r);
                // Returns once no running ring can touch r: rings in it stopped, the others past
                // the chains they popped before the swap.
                rings.swapMemory(next, r.segment());
                memory = next;
                rings.reconcileAll(features, memory);
                if (rings.anyRunningIn(r.segment())) {
                    log.error("{}: region {} is still used by a ring attached to an unresponsive reactor; it stays mapped", name, r);
                    return true;
                }
                r.close();
                log.info("{}: memory region removed: {}", name, r);
                return true;
            }
        }
        log.warn("{}: REM_MEM_REG for gpa 0x{} size 0x{} matches no region, rejected", name, Long.toHexString(gpa), Long.toHexString(size));
        return false;
    }

    /**
     * SET_MEM_TABLE: every region is mapped anew, so the rings' own segments change: running
     * rings stop (drained), the new table is installed, rings restart, and only then is the old
     * table unmapped. (QEMU sends it once before the rings start; with
     * VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS memory hotplug comes as ADD/REM_MEM_REG, which
     * running rings take in place.)
     */
    private void replaceMemory(GuestMemory next) {
        GuestMemory old = memory;
        rings.stopAll();
        memory = next;
        rings.reconcileAll(features, memory);
        for (MemoryRegion r : old.regions()) r.close();
    }

    // ---- rings ----

    @Override
    public boolean setVringNum(VringState s) throws VhostUserProtocolException {
        Vrings.Vring r = ring(s.index(), VhostUserRequest.SET_VRING_NUM);
        int num = s.num();
        if (num == 0) {
            // DPDK's vhost library and libvhost-user take 0; it describes no ring, so ours stays stopped.
            tolerate(QUIRK_ZERO_RING_SIZE, "SET_VRING_NUM 0 for ring " + s.index() + " (the ring stays stopped)");
        } else if (!ringSizeAcceptable(s.index(), num)) {
            return false;
        }
        rings.stop(r);
        r.num = num;
        return reconcile(s.index());
    }

    /**
     * SET_VRING_NUM's size check. A packed ring may have any size (VIRTIO 1.2, 2.8), a split
     * ring's is a power of two (2.7); both are bounded by {@link #MAX_QUEUE_SIZE}. The layout is
     * the one the features negotiated so far say: QEMU (vhost_dev_start) and our initiator send
     * SET_FEATURES before they set up any ring, and DPDK's vhost library (vhost_user_set_vring_num)
     * checks the size against the features it has at this point too. A size that only a
     * packed ring may have, sent before VIRTIO_F_RING_PACKED was acked, is refused; a later
     * SET_FEATURES that turns a packed ring of such a size into a split one leaves the ring
     * unable to start (the split ring refuses the size, logged, and the request that would have
     * started it fails).
     */
    private boolean ringSizeAcceptable(int idx, int num) {
        if (Integer.compareUnsigned(num, MAX_QUEUE_SIZE) > 0) {
            log.warn("{}: SET_VRING_NUM {} for ring {} is larger than {}, rejected", name, Integer.toUnsignedString(num), idx, MAX_QUEUE_SIZE);
            return false;
        }
        if (!VirtioFeatures.has(features, VirtioFeatures.RING_PACKED) && !SplitRing.validSize(num)) {
            log.warn("{}: SET_VRING_NUM {} for split ring {} is not a power of two, rejected (only packed rings, VIRTIO_F_RING_PACKED, may have other sizes)",
                    name, num, idx);
            return false;
        }
        return true;
    }

    @Override
    public boolean setVringAddr(VringAddr a) throws VhostUserProtocolException {
        int idx = a.index();
        Vrings.Vring r = ring(idx, VhostUserRequest.SET_VRING_ADDR);
        rings.stop(r);
        r.descUva = a.descUva();
        r.usedUva = a.usedUva();
        r.availUva = a.availUva();
        // Kept for dirty logging (live migration): the flag says whether the used ring is logged,
        // the address where. Nothing logs yet: VHOST_F_LOG_ALL is not offered.
        r.addrFlags = a.flags();
        r.logGuestAddr = a.logGuestAddr();
        r.addrSet = true;
        return reconcile(idx);
    }

    @Override
    public boolean setVringBase(VringState s) throws VhostUserProtocolException {
        int idx = s.index();
        Vrings.Vring r = ring(idx, VhostUserRequest.SET_VRING_BASE);
        int base = s.num();
        if (Integer.compareUnsigned(base, 0xffff) > 0) {
            // A split ring's index is 16 bits wide; DPDK's vhost library and libvhost-user store
            // the low 16 bits of a wider value, and so do we (the upper bits carry packed-ring
            // or used-index state some front-ends add).
            tolerate(QUIRK_WIDE_VRING_BASE, "SET_VRING_BASE 0x" + Integer.toHexString(base) + " for ring " + idx + " wider than 16 bits; using 0x" + Integer.toHexString(base & 0xffff));
            base &= 0xffff;
        }
        rings.stop(r);
        r.base = base;
        return reconcile(idx);
    }

    @Override
    public VringState getVringBase(int idx) throws VhostUserProtocolException {
        Vrings.Vring r = ring(idx, VhostUserRequest.GET_VRING_BASE);
        rings.stop(r);
        r.started = false;
        Fd.closeQuietly(r.kickFd);
        r.kickFd = -1;
        log.debug("{}: ring {} stopped at avail index {}", name, idx, r.base);
        return new VringState(idx, r.base);
    }

    @Override
    public boolean setVringKick(VringFile f) throws VhostUserProtocolException {
        return setVringFd(f, 0, VhostUserRequest.SET_VRING_KICK);
    }

    @Override
    public boolean setVringCall(VringFile f) throws VhostUserProtocolException {
        return setVringFd(f, 1, VhostUserRequest.SET_VRING_CALL);
    }

    @Override
    public boolean setVringErr(VringFile f) throws VhostUserProtocolException {
        return setVringFd(f, 2, VhostUserRequest.SET_VRING_ERR);
    }

    /** which: 0 kick, 1 call, 2 err. */
    private boolean setVringFd(VringFile f, int which, VhostUserRequest req) throws VhostUserProtocolException {
        int idx = f.index();
        int fd = f.fd(); // ours now: kept below or closed
        Vrings.Vring r;
        try {
            r = ring(idx, req);
        } catch (VhostUserProtocolException e) {
            Fd.closeQuietly(fd);
            throw e;
        }
        if (fd >= 0 && which != 2) {
            try {
                Fd.setNonBlocking(fd);
            } catch (RuntimeException e) {
                Fd.closeQuietly(fd);
                log.warn("{}: {} for ring {}: unusable fd: {}", name, req, idx, e.getMessage());
                return false;
            }
        }
        switch (which) {
            case 0 -> {
                // The kick fd is registered with the reactor's epoll: the ring restarts on it.
                rings.stop(r);
                Fd.closeQuietly(r.kickFd);
                r.kickFd = fd;
                r.started = true;
                if (!protocolFeaturesNegotiated()) r.enabled = true;
            }
            // QEMU re-sends SET_VRING_CALL on every interrupt mask/unmask: taken in place.
            case 1 -> rings.setCallFd(r, fd);
            default -> rings.setErrFd(r, fd);
        }
        return reconcile(idx);
    }

    @Override
    public boolean setVringEnable(VringState s) throws VhostUserProtocolException {
        int idx = s.index();
        Vrings.Vring r = ring(idx, VhostUserRequest.SET_VRING_ENABLE);
        int num = s.num();
        // vhost-user.rst says 0 or 1, but SPDK's virtio-user sends the ring size; DPDK's vhost
        // library and libvhost-user both take any non-zero value as "enable", and so do we.
        if (num != 0 && num != 1) {
            tolerate(QUIRK_ODD_ENABLE, "SET_VRING_ENABLE num " + Integer.toUnsignedString(num) + " for ring " + idx + " taken as enable");
        }
        int en = num != 0 ? 1 : 0;
        // Without VHOST_USER_F_PROTOCOL_FEATURES this is meaningless by the spec (rings start
        // enabled at SET_VRING_KICK), but DPDK's vhost library and libvhost-user apply it, and so
        // do we: the dispatcher counts it as tolerated (its gate serves it).
        if (!r.enabled && en == 1 || r.enabled && en == 0) {
            rings.stop(r);
            r.enabled = en == 1;
        }
        return reconcile(idx);
    }

    // ---- config ----

    @Override
    public int getConfig(ConfigPayload c, MemorySegment dst) {
        int offset = c.offset();
        int size = c.size();
        int from = offset;
        if (Integer.compareUnsigned(offset, RUST_VMM_CONFIG_OFFSET) >= 0 && Integer.compareUnsigned(offset - RUST_VMM_CONFIG_OFFSET, MAX_CONFIG_SIZE) <= 0
                && (offset - RUST_VMM_CONFIG_OFFSET) + size <= MAX_CONFIG_SIZE) {
            // rust-vmm's vhost crate (cloud-hypervisor, crosvm) counted config offsets from
            // 0x100, where the device config sits in virtio-pci. DPDK's vhost library and
            // libvhost-user ignore the offset of GET_CONFIG altogether and so serve such a read
            // from the start of the config space; we serve it from offset - 0x100, which is the
            // same for the reads those front-ends make.
            from = offset - RUST_VMM_CONFIG_OFFSET;
            tolerate(QUIRK_CONFIG_OFFSET_0X100, "GET_CONFIG at offset 0x" + Integer.toHexString(offset) + " read as offset " + from);
        }
        if (Integer.compareUnsigned(from, MAX_CONFIG_SIZE) > 0 || from + size > MAX_CONFIG_SIZE) {
            // The dispatcher answers with an empty config so the front-end sees a failure instead of hanging.
            log.warn("{}: GET_CONFIG offset {} size {} outside the {}-byte config space", name, Integer.toUnsignedString(offset), size, MAX_CONFIG_SIZE);
            return -1;
        }
        MemorySegment cfg = Arena.ofAuto().allocate(MAX_CONFIG_SIZE);
        device.readConfig(cfg);
        MemorySegment.copy(cfg, from, dst, 0, size);
        return size;
    }

    @Override
    public boolean setConfig(ConfigPayload c) {
        int offset = c.offset();
        int size = c.size();
        if (Integer.compareUnsigned(offset, MAX_CONFIG_SIZE) > 0 || offset + size > MAX_CONFIG_SIZE) return false;
        boolean ok = device.writeConfig(offset, c.data(), size);
        if (!ok) log.warn("{}: SET_CONFIG offset {} size {} is not writable, rejected", name, offset, size);
        return ok;
    }

    /** Starts ring {@code idx} if it should run and does not; returns false if it should but cannot. */
    private boolean reconcile(int idx) {
        return rings.reconcile(idx, features, memory);
    }

    private void resetDeviceState() {
        rings.reset();
        // Protocol features belong to the connection and survive a device reset (vhost-user.rst,
        // RESET_DEVICE: "the back-end retains ownership"); front-ends keep using REPLY_ACK.
        features = 0;
        log.info("{}: device reset", name);
    }

    private void teardown() {
        if (rings.teardown()) {
            for (MemoryRegion reg : memory.regions()) reg.close();
            InflightArea area = rings.inflight(null);
            if (area != null) area.close();
            rings.dirtyLog(null);
            if (logMapping != null) logMapping.close();
            logMapping = null;
        } else {
            log.error("{}: a ring is still attached to an unresponsive reactor; its guest memory stays mapped", name);
        }
        memory = GuestMemory.EMPTY;
        in.close();
        out.close();
        conn.close();
        waiter.close();
        synchronized (wakeLock) {
            wakeClosed = true;
            io.jvhost.sys.Fd.closeQuietly(wakeFd);
        }
        // The device forgets guest-facing state (SCSI pending events) only when no other
        // front-end is connected: after a migration the destination's session goes on.
        if (controller.sessionEnded(this)) device.sessionEnded();
    }
}
