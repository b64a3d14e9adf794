package io.jvhost.initiator;

import io.jvhost.initiator.VhostUserDriver.Kind;
import io.jvhost.initiator.VhostUserDriver.Region;
import io.jvhost.virtio.VirtioFeatures;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;

import static io.jvhost.virtio.BlkLayout.*;
import static io.jvhost.vhostuser.VhostUserProtocol.*;
import static io.jvhost.virtio.VirtioFeatures.bit;

/**
 * How one known vhost-user front-end drives a back-end: the messages it sends and their order,
 * the features and protocol features it acks, the sizes it asks for, how it lays its memory out
 * for the back-end, and how it stops. {@link VhostUserDriver} runs a profile's handshake so that
 * a test of the target can meet each real front-end without the real program; adding a
 * front-end is adding a profile (and listing it in {@link #all()}).
 *
 * <p>Where each profile comes from is in its Javadoc: a debug-log capture of a real QEMU 7.2
 * against jvhost, or the front-end's published sources.
 */
public interface FrontendProfile {
    /** A short name for test reports ("qemu-7.2", "spdk-23.01-virtio-user", ...). */
    String name();

    /** Whether this front-end drives devices of {@code kind}. */
    boolean supports(Kind kind);

    /** How guest memory is described to the back-end. */
    Layout layout();

    /** The virtio features this front-end acks when they are offered (for {@code kind}). */
    long features(Kind kind);

    /** Runs the front-end's handshake up to running rings. */
    void start(VhostUserDriver d) throws IOException;

    /** Stops the rings as the front-end does; returns each ring's avail index from GET_VRING_BASE. */
    int[] stop(VhostUserDriver d) throws IOException;

    /** Every built-in profile but {@link #JVHOST}, in the order the README lists them. */
    static List<FrontendProfile> all() {
        return List.of(QEMU_7_2, SPDK_23_01_VIRTIO_USER, LIBBLKIO, RUST_VMM_CLOUD_HYPERVISOR);
    }

    /**
     * How the shared memory maps to guest-physical addresses. {@code split} is where the rings
     * and scratch end and the data area starts (2 MiB aligned).
     */
    enum Layout {
        /** One region at 4 GiB (our own driver: no guest address is 0). */
        ONE_REGION_AT_4G {
            @Override List<Region> regions(SharedMemory m, long split) {
                return List.of(new Region(0, m.size(), VhostUserDriver.DEFAULT_GPA_BASE));
            }
        },
        /**
         * QEMU's x86 machines: RAM below the PCI hole at guest address 0 and the rest at 4 GiB,
         * both from one memory backend (one fd, the high part at a non-zero mmap offset).
         */
        BELOW_AND_ABOVE_4G {
            @Override List<Region> regions(SharedMemory m, long split) {
                return List.of(new Region(0, split, 0), new Region(split, m.size() - split, 0x100000000L));
            }
        },
        /** One region whose guest address is its own virtual address (SPDK/DPDK virtio-user). */
        IDENTITY {
            @Override List<Region> regions(SharedMemory m, long split) {
                return List.of(new Region(0, m.size(), m.userAddr()));
            }
        },
        /**
         * One region per allocation, each at its own virtual address (libblkio: its rings, then
         * each buffer the application maps with blkio_map_mem_region).
         */
        IDENTITY_PER_ALLOCATION {
            @Override List<Region> regions(SharedMemory m, long split) {
                return List.of(new Region(0, split, m.userAddr()), new Region(split, m.size() - split, m.uva(split)));
            }
        };

        abstract List<Region> regions(SharedMemory m, long split);
    }

    // ---------------------------------------------------------------------------------------

    /** Our own driver's handshake (what {@link BlkInitiator#connect} has always done). */
    FrontendProfile JVHOST = new FrontendProfile() {
        @Override public String name() { return "jvhost"; }
        @Override public boolean supports(Kind kind) { return true; }
        @Override public Layout layout() { return Layout.ONE_REGION_AT_4G; }
        @Override public long features(Kind kind) { return ~0L; }

        @Override
        public void start(VhostUserDriver d) throws IOException {
            VhostUserFrontend fe = d.frontend();
            long offered = fe.getFeatures();
            long pf = 0;
            if (VirtioFeatures.has(offered, VirtioFeatures.VHOST_USER_PROTOCOL_FEATURES)) {
                pf = fe.getProtocolFeatures() & ((1L << PF_MQ) | (1L << PF_REPLY_ACK) | (1L << PF_CONFIG));
                fe.setProtocolFeatures(pf);
                fe.useReplyAck((pf & (1L << PF_REPLY_ACK)) != 0);
            }
            d.protocolFeatures(pf);
            long maxQ = (pf & (1L << PF_MQ)) != 0 ? fe.getQueueNum() : 1;
            if (d.queueCount() > maxQ) throw new IOException("target offers " + maxQ + " queues, " + d.queueCount() + " requested");
            fe.setOwner();
            d.negotiated(offered & d.wantedFeatures());
            fe.setFeatures(d.negotiatedFeatures());
            fe.setMemTable(d.memory(), d.regions());
            d.config((pf & (1L << PF_CONFIG)) != 0 ? fe.getConfig(d.wantedConfigSize()) : new byte[0]);
            for (int q = 0; q < d.queueCount(); q++) {
                fe.setVringNum(q, d.queueSize());
                fe.setVringBase(q, d.initialVringBase(q));
                fe.setVringAddr(q, d.descUva(q), d.usedUva(q), d.availUva(q));
                fe.setVringKick(q, d.kickFd(q));
                fe.setVringCall(q, d.callFd(q));
                if (VirtioFeatures.has(d.negotiatedFeatures(), VirtioFeatures.VHOST_USER_PROTOCOL_FEATURES)) fe.setVringEnable(q, true);
            }
        }

        @Override
        public int[] stop(VhostUserDriver d) throws IOException {
            return getVringBases(d);
        }
    };

    /**
     * QEMU 7.2's vhost-user-blk and vhost-user-scsi with a Linux guest, as captured from a real
     * QEMU 7.2 against jvhost (debug log of the project's QEMU tests): at realize GET_FEATURES,
     * GET/SET_PROTOCOL_FEATURES (everything offered; CONFIG only for blk, which has a config
     * notifier), GET_QUEUE_NUM, GET_MAX_MEM_SLOTS, SET_OWNER, GET_FEATURES, per ring
     * SET_VRING_CALL and SET_VRING_ERR with its masked notifiers, then GET_CONFIG of the 57
     * bytes up to write_zeroes_may_unmap (blk) or two RESET_DEVICE (scsi, bus resets). At
     * start: SET_FEATURES (twice for blk, the guest notifiers in between), ADD_MEM_REG per RAM
     * section with NEED_REPLY (the only messages with it: memory table and SET_CONFIG;
     * CONFIGURE_MEM_SLOTS is negotiated, so no SET_MEM_TABLE), per
     * ring SET_VRING_NUM/BASE/ADDR/KICK, SET_VRING_ENABLE 1 on every ring, and (scsi) the
     * unmasked call fds. At stop: SET_VRING_ENABLE 0, GET_VRING_BASE per ring, RESET_DEVICE
     * (scsi). Memory: below and above 4 GiB from one backend.
     */
    FrontendProfile QEMU_7_2 = new FrontendProfile() {
        @Override public String name() { return "qemu-7.2"; }
        @Override public boolean supports(Kind kind) { return true; }
        @Override public Layout layout() { return Layout.BELOW_AND_ABOVE_4G; }

        @Override
        public long features(Kind kind) {
            long ring = bit(VirtioFeatures.RING_INDIRECT_DESC) | bit(VirtioFeatures.RING_EVENT_IDX) | bit(VirtioFeatures.VERSION_1)
                    | bit(VirtioFeatures.VHOST_USER_PROTOCOL_FEATURES);
            if (kind == Kind.SCSI) return ring | bit(io.jvhost.virtio.ScsiLayout.F_HOTPLUG) | bit(io.jvhost.virtio.ScsiLayout.F_CHANGE);
            return ring | bit(F_SIZE_MAX) | bit(F_SEG_MAX) | bit(F_GEOMETRY) | bit(F_RO) | bit(F_BLK_SIZE) | bit(F_FLUSH) | bit(F_TOPOLOGY)
                    | bit(F_CONFIG_WCE) | bit(F_MQ) | bit(F_DISCARD) | bit(F_WRITE_ZEROES);
        }

        @Override
        public void start(VhostUserDriver d) throws IOException {
            VhostUserFrontend fe = d.frontend();
            int n = d.queueCount();
            long offered = fe.getFeatures();
            long pf = fe.getProtocolFeatures() & ((1L << (PF_STATUS + 1)) - 1);
            if (d.kind() == Kind.SCSI) pf &= ~(1L << PF_CONFIG);
            fe.setProtocolFeatures(pf);
            d.protocolFeatures(pf);
            fe.useReplyAck((pf & (1L << PF_REPLY_ACK)) != 0);
            fe.ackOnly(java.util.EnumSet.of(io.jvhost.vhostuser.VhostUserRequest.SET_MEM_TABLE, io.jvhost.vhostuser.VhostUserRequest.ADD_MEM_REG,
                    io.jvhost.vhostuser.VhostUserRequest.REM_MEM_REG, io.jvhost.vhostuser.VhostUserRequest.SET_CONFIG));
            if ((pf & (1L << PF_MQ)) != 0 && fe.getQueueNum() < n) throw new IOException("back-end has fewer than " + n + " queues");
            if ((pf & (1L << PF_CONFIGURE_MEM_SLOTS)) != 0) fe.getMaxMemSlots();
            fe.setOwner();
            fe.getFeatures();
            // Until the guest driver unmasks them, interrupts go to QEMU's masked notifiers.
            int[] masked = new int[n];
            try {
                for (int q = 0; q < n; q++) {
                    masked[q] = io.jvhost.sys.EventFd.create(true);
                    fe.setVringCall(q, masked[q]);
                    fe.setVringErr(q, masked[q]);
                }
                if (d.kind() == Kind.BLK) {
                    d.config(fe.getConfig(57));
                } else {
                    fe.resetDevice();
                    fe.resetDevice();
                }
                long f = offered & features(d.kind()) & d.wantedFeatures();
                d.negotiated(f);
                fe.setFeatures(f);
                if (d.kind() == Kind.BLK) {
                    for (int q = 0; q < n; q++) fe.setVringCall(q, d.callFd(q));
                    fe.setFeatures(f);
                }
                if ((pf & (1L << PF_CONFIGURE_MEM_SLOTS)) != 0) {
                    for (Region r : d.regions()) fe.addMemRegion(d.memory(), r.gpa(), r.offset(), r.size());
                } else {
                    fe.setMemTable(d.memory(), d.regions());
                }
                for (int q = 0; q < n; q++) {
                    fe.setVringNum(q, d.queueSize());
                    fe.setVringBase(q, d.initialVringBase(q));
                    fe.setVringAddr(q, d.descUva(q), d.usedUva(q), d.availUva(q));
                    fe.setVringKick(q, d.kickFd(q));
                }
                for (int q = 0; q < n; q++) fe.setVringEnable(q, true);
                if (d.kind() == Kind.SCSI) {
                    for (int q = 0; q < n; q++) fe.setVringCall(q, d.callFd(q));
                }
            } finally {
                // the back-end holds its own copies now
                for (int fd : masked) io.jvhost.sys.Fd.closeQuietly(fd);
            }
        }

        @Override
        public int[] stop(VhostUserDriver d) throws IOException {
            for (int q = 0; q < d.queueCount(); q++) d.frontend().setVringEnable(q, false);
            int[] bases = getVringBases(d);
            if (d.kind() == Kind.SCSI) d.frontend().resetDevice();
            return bases;
        }
    };

    /**
     * SPDK 23.01's virtio-user (bdevperf with bdev_virtio_attach_controller, trtype user), from
     * its lib/virtio/virtio_vhost_user.c, virtio_user.c and module/bdev/virtio: SET_OWNER at
     * connect; GET_FEATURES, SET_FEATURES, then GET/SET_PROTOCOL_FEATURES (MQ and CONFIG only,
     * no REPLY_ACK: it never sets NEED_REPLY); blk reads its config field by field, each time
     * with a GET_CONFIG of the whole 256 bytes whose reply must be exactly 12 + 256 bytes; per
     * ring SET_VRING_ENABLE with num = the ring size before any memory is known; at DRIVER_OK
     * GET_QUEUE_NUM, SET_VRING_CALL per ring, SET_MEM_TABLE of its hugepage files with each
     * region's guest address equal to its virtual address, GET_FEATURES as a barrier, then per
     * ring SET_VRING_NUM/BASE/ADDR/KICK. It polls with interrupts left on. Stop: GET_VRING_BASE
     * per ring.
     */
    FrontendProfile SPDK_23_01_VIRTIO_USER = new FrontendProfile() {
        @Override public String name() { return "spdk-23.01-virtio-user"; }
        @Override public boolean supports(Kind kind) { return true; }
        @Override public Layout layout() { return Layout.IDENTITY; }

        @Override
        public long features(Kind kind) {
            long common = bit(VirtioFeatures.VERSION_1) | bit(VirtioFeatures.VHOST_USER_PROTOCOL_FEATURES);
            if (kind == Kind.SCSI) {
                return common | bit(io.jvhost.virtio.ScsiLayout.F_INOUT) | bit(io.jvhost.virtio.ScsiLayout.F_HOTPLUG)
                        | bit(VirtioFeatures.RING_EVENT_IDX);
            }
            // Seen on the wire from bdevperf against jvhost: 0x160003446 (EVENT_IDX included).
            return common | bit(F_SIZE_MAX) | bit(F_SEG_MAX) | bit(F_BLK_SIZE) | bit(F_TOPOLOGY) | bit(F_MQ) | bit(F_RO) | bit(F_DISCARD)
                    | bit(VirtioFeatures.RING_EVENT_IDX);
        }

        @Override
        public void start(VhostUserDriver d) throws IOException {
            VhostUserFrontend fe = d.frontend();
            int n = d.queueCount();
            fe.setOwner();
            long f = fe.getFeatures() & features(d.kind()) & d.wantedFeatures();
            fe.setFeatures(f);
            d.negotiated(f);
            long pf = 0;
            if (VirtioFeatures.has(f, VirtioFeatures.VHOST_USER_PROTOCOL_FEATURES)) {
                pf = fe.getProtocolFeatures() & ((1L << PF_MQ) | (1L << PF_CONFIG));
                fe.setProtocolFeatures(pf);
            }
            d.protocolFeatures(pf);
            if (d.kind() == Kind.BLK && (pf & (1L << PF_CONFIG)) != 0) {
                // blk_size, capacity, num_queues, max_discard_sectors, max_discard_seg: one
                // full-space read each
                byte[] c = null;
                for (int i = 0; i < 5; i++) c = fe.getConfig(0, MAX_CONFIG_SIZE);
                d.config(c);
            }
            for (int q = 0; q < n; q++) {
                if (VirtioFeatures.has(f, VirtioFeatures.VHOST_USER_PROTOCOL_FEATURES)) fe.setVringEnable(q, d.queueSize());
            }
            long hostQueues = fe.getQueueNum();
            int fixed = d.kind() == Kind.SCSI ? 2 : 0;
            if (n > hostQueues + fixed) throw new IOException("back-end has " + hostQueues + " queues, " + n + " wanted");
            for (int q = 0; q < n; q++) fe.setVringCall(q, d.callFd(q));
            fe.setMemTable(d.memory(), d.regions());
            fe.getFeatures();
            for (int q = 0; q < n; q++) {
                fe.setVringNum(q, d.queueSize());
                fe.setVringBase(q, d.initialVringBase(q));
                fe.setVringAddr(q, d.descUva(q), d.usedUva(q), d.availUva(q));
                fe.setVringKick(q, d.kickFd(q));
            }
        }

        @Override
        public int[] stop(VhostUserDriver d) throws IOException {
            return getVringBases(d);
        }
    };

    /**
     * libblkio's virtio-blk-vhost-user driver (QEMU's {@code virtio-blk-vhost-user} blockdev,
     * qemu-img, ...). Assumed, not captured: libblkio is on GitLab, out of reach here. It drives
     * the back-end through rust-vmm's vhost crate front-end and requires
     * CONFIGURE_MEM_SLOTS: memory goes in with ADD_MEM_REG only, one region per allocation
     * (its rings, then each buffer the application maps), each at its own virtual address; never
     * SET_MEM_TABLE. Order as the crate's users do it: SET_OWNER, GET_FEATURES,
     * GET/SET_PROTOCOL_FEATURES (MQ, CONFIG, CONFIGURE_MEM_SLOTS, REPLY_ACK), GET_QUEUE_NUM,
     * GET_MAX_MEM_SLOTS, GET_CONFIG (60 bytes), SET_FEATURES, ADD_MEM_REG per region, per ring
     * SET_VRING_NUM/ADDR/BASE/CALL/KICK and SET_VRING_ENABLE. blk only.
     */
    FrontendProfile LIBBLKIO = new FrontendProfile() {
        @Override public String name() { return "libblkio-virtio-blk-vhost-user"; }
        @Override public boolean supports(Kind kind) { return kind == Kind.BLK; }
        @Override public Layout layout() { return Layout.IDENTITY_PER_ALLOCATION; }

        @Override
        public long features(Kind kind) {
            return bit(VirtioFeatures.VERSION_1) | bit(VirtioFeatures.VHOST_USER_PROTOCOL_FEATURES) | bit(VirtioFeatures.RING_EVENT_IDX)
                    | bit(F_SIZE_MAX) | bit(F_SEG_MAX) | bit(F_BLK_SIZE) | bit(F_FLUSH) | bit(F_TOPOLOGY) | bit(F_MQ) | bit(F_RO)
                    | bit(F_DISCARD) | bit(F_WRITE_ZEROES);
        }

        @Override
        public void start(VhostUserDriver d) throws IOException {
            VhostUserFrontend fe = d.frontend();
            int n = d.queueCount();
            fe.setOwner();
            long offered = fe.getFeatures();
            long need = (1L << PF_CONFIGURE_MEM_SLOTS) | (1L << PF_CONFIG);
            long pf = fe.getProtocolFeatures() & (need | (1L << PF_MQ) | (1L << PF_REPLY_ACK));
            if ((pf & need) != need) throw new IOException("back-end lacks CONFIGURE_MEM_SLOTS or CONFIG, which libblkio requires");
            fe.setProtocolFeatures(pf);
            d.protocolFeatures(pf);
            if ((pf & (1L << PF_MQ)) != 0 && fe.getQueueNum() < n) throw new IOException("back-end has fewer than " + n + " queues");
            long slots = fe.getMaxMemSlots();
            if (slots < d.regions().size()) throw new IOException("back-end has " + slots + " memory slots");
            d.config(fe.getConfig(60));
            long f = offered & features(Kind.BLK) & d.wantedFeatures();
            fe.setFeatures(f);
            d.negotiated(f);
            for (Region r : d.regions()) fe.addMemRegion(d.memory(), r.gpa(), r.offset(), r.size());
            for (int q = 0; q < n; q++) {
                fe.setVringNum(q, d.queueSize());
                fe.setVringAddr(q, d.descUva(q), d.usedUva(q), d.availUva(q));
                fe.setVringBase(q, d.initialVringBase(q));
                fe.setVringCall(q, d.callFd(q));
                fe.setVringKick(q, d.kickFd(q));
                fe.setVringEnable(q, true);
            }
        }

        @Override
        public int[] stop(VhostUserDriver d) throws IOException {
            return getVringBases(d);
        }
    };

    /**
     * cloud-hypervisor's vhost-user-blk through rust-vmm's vhost crate, from its
     * virtio-devices/src/vhost_user (vu_common_ctrl.rs, blk.rs): SET_OWNER, GET_FEATURES,
     * GET/SET_PROTOCOL_FEATURES, and once REPLY_ACK is acked NEED_REPLY on every message
     * (the crate's header flags), replies of their own or not; GET_CONFIG at offset 0x100 (the
     * crate's VHOST_USER_CONFIG_OFFSET, where virtio-pci puts device config: older releases
     * passed it, today's crate takes absolute offsets); at activation
     * SET_FEATURES, SET_MEM_TABLE (guest RAM from address 0), SET_VRING_NUM for all rings,
     * then per ring SET_VRING_ADDR, BASE, CALL, KICK, then SET_VRING_ENABLE on all. Pause:
     * SET_VRING_ENABLE 0. blk only.
     */
    FrontendProfile RUST_VMM_CLOUD_HYPERVISOR = new FrontendProfile() {
        @Override public String name() { return "rust-vmm-vhost-cloud-hypervisor"; }
        @Override public boolean supports(Kind kind) { return kind == Kind.BLK; }
        @Override public Layout layout() { return Layout.BELOW_AND_ABOVE_4G; }

        @Override
        public long features(Kind kind) {
            return bit(VirtioFeatures.VERSION_1) | bit(VirtioFeatures.VHOST_USER_PROTOCOL_FEATURES) | bit(VirtioFeatures.RING_EVENT_IDX)
                    | bit(VirtioFeatures.RING_INDIRECT_DESC) | bit(F_SEG_MAX) | bit(F_RO) | bit(F_BLK_SIZE) | bit(F_FLUSH) | bit(F_TOPOLOGY)
                    | bit(F_CONFIG_WCE) | bit(F_MQ) | bit(F_DISCARD) | bit(F_WRITE_ZEROES);
        }

        @Override
        public void start(VhostUserDriver d) throws IOException {
            VhostUserFrontend fe = d.frontend();
            int n = d.queueCount();
            fe.setOwner();
            long offered = fe.getFeatures();
            long f = offered & features(Kind.BLK) & d.wantedFeatures();
            long pf = 0;
            if (VirtioFeatures.has(f, VirtioFeatures.VHOST_USER_PROTOCOL_FEATURES)) {
                pf = fe.getProtocolFeatures() & ((1L << PF_MQ) | (1L << PF_CONFIG) | (1L << PF_REPLY_ACK) | (1L << PF_CONFIGURE_MEM_SLOTS));
                fe.setProtocolFeatures(pf);
                if ((pf & (1L << PF_REPLY_ACK)) != 0) fe.needReplyOnEveryMessage(true);
            }
            d.protocolFeatures(pf);
            d.config(fe.getConfig(0x100, 60));
            fe.setFeatures(f);
            d.negotiated(f);
            fe.setMemTable(d.memory(), d.regions());
            for (int q = 0; q < n; q++) fe.setVringNum(q, d.queueSize());
            for (int q = 0; q < n; q++) {
                fe.setVringAddr(q, d.descUva(q), d.usedUva(q), d.availUva(q));
                fe.setVringBase(q, d.initialVringBase(q));
                fe.setVringCall(q, d.callFd(q));
                fe.setVringKick(q, d.kickFd(q));
            }
            for (int q = 0; q < n; q++) fe.setVringEnable(q, true);
        }

        @Override
        public int[] stop(VhostUserDriver d) throws IOException {
            for (int q = 0; q < d.queueCount(); q++) d.frontend().setVringEnable(q, false);
            return getVringBases(d);
        }
    };

    private static int[] getVringBases(VhostUserDriver d) throws IOException {
        List<Integer> l = new ArrayList<>();
        for (int q = 0; q < d.queueCount(); q++) l.add(d.frontend().getVringBase(q));
        return l.stream().mapToInt(Integer::intValue).toArray();
    }
}
