package io.jvhost.rpc;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.BooleanNode;
import com.fasterxml.jackson.databind.node.NullNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.jvhost.vhost.BlkDevice;
import io.jvhost.vhost.Controller;
import io.jvhost.vhost.ControllerBusyException;
import io.jvhost.vhost.QueuePlacement;
import io.jvhost.vhost.Session;
import io.jvhost.vhost.VhostTarget;
import io.jvhost.vhost.VirtioScsiDevice;
import io.jvhost.virtio.QueueStats;
import io.jvhost.virtio.VirtQueue;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * SPDK's vhost methods: controllers (create blk, delete, list, coalescing) in SPDK's names and
 * shapes, the {@code vhost_blk} config subsystem, and jvhost's {@code vhost_get_stats}
 * (connection, queue and error counters per controller; SPDK has no such method).
 *
 * <p>vhost-scsi methods and subsystems live in {@link VhostScsiRpc}.
 */
public final class VhostRpc {
    /** SPDK's name for the vhost-user blk transport (backend_specific.block.transport). */
    public static final String BLK_TRANSPORT = "vhost_user_blk";
    static final int DEFAULT_NUM_QUEUES = 16;

    private VhostRpc() {}

    static void register(Methods m) {
        VhostTarget t = m.target();
        m.register("vhost_create_blk_controller", p -> vhostCreateBlkController(t, p));
        m.register("vhost_delete_controller", p -> vhostDeleteController(t, p));
        m.register("vhost_get_controllers", p -> vhostGetControllers(t, p));
        m.register("vhost_controller_set_coalescing", p -> vhostControllerSetCoalescing(t, p));
        m.register("vhost_get_stats", p -> vhostGetStats(t, p));
        m.registerSubsystem("vhost_blk", List.of("bdev"), () -> blkConfig(t));
    }

    private static JsonNode vhostCreateBlkController(VhostTarget t, Params p) {
        String ctrlr = p.string("ctrlr");
        String devName = p.string("dev_name");
        boolean readonly = p.bool("readonly", false);
        boolean packed = p.bool("packed_ring", false);
        // SPDK's packed_ring_recovery (inflight recovery of packed rings) is accepted and ignored:
        // jvhost tracks inflight I/O for split rings only.
        p.bool("packed_ring_recovery", false);
        String cpumask = p.string("cpumask", null);
        String transport = p.string("transport", BLK_TRANSPORT);
        int numQueues = p.intInRange("num_queues", DEFAULT_NUM_QUEUES, 1, 64);
        QueuePlacement.Mode placement = queuePlacement(p, "vhost_create_blk_controller");
        p.done();
        if (!transport.equals(BLK_TRANSPORT)) {
            throw RpcException.invalidParams("vhost_create_blk_controller: parameter 'transport' must be " + BLK_TRANSPORT + ", got " + transport);
        }
        t.createBlkController(ctrlr, devName, readonly, numQueues, cpumask, placement, packed);
        return BooleanNode.TRUE;
    }

    private static JsonNode vhostDeleteController(VhostTarget t, Params p) {
        String ctrlr = p.string("ctrlr");
        p.done();
        try {
            t.deleteController(ctrlr);
        } catch (ControllerBusyException e) {
            // SPDK's answer (vhost_rpc.c: INVALID_PARAMS with spdk_strerror(EBUSY)), plus what to do.
            throw new RpcException(RpcException.INVALID_PARAMS, "Device or resource busy: vhost_delete_controller: " + e.getMessage()
                    + "; disconnect the front-end first (shut the VM down or unplug the device, e.g. QEMU's device_del, or stop the "
                    + "virtio-user application), then delete the controller");
        }
        return BooleanNode.TRUE;
    }

    private static JsonNode vhostControllerSetCoalescing(VhostTarget t, Params p) {
        String ctrlr = p.string("ctrlr");
        long delay = p.uint32("delay_base_us");
        long iops = p.uint32("iops_threshold");
        p.done();
        t.controller(ctrlr).setCoalescing(delay, iops);
        return BooleanNode.TRUE;
    }

    private static List<Controller> select(VhostTarget t, Params p) {
        String name = p.string("name", null);
        p.done();
        return name == null ? t.controllers() : List.of(t.controller(name));
    }

    private static JsonNode vhostGetControllers(VhostTarget t, Params p) {
        ArrayNode a = Json.arr();
        for (Controller c : select(t, p)) {
            ObjectNode o = a.addObject();
            o.put("ctrlr", c.name());
            o.put("cpumask", "0x" + cpumask(c));
            putPlacement(o, c); // jvhost's, only for a spread controller: SPDK's shape otherwise
            o.put("delay_base_us", c.coalescingDelayBaseUs());
            o.put("iops_threshold", c.coalescingIopsThreshold());
            o.put("socket", c.socketPath());
            o.set("backend_specific", backendSpecific(c));
        }
        return a;
    }

    /** The device part of vhost_get_controllers, keyed by device kind as SPDK does. */
    static ObjectNode backendSpecific(Controller c) {
        ObjectNode o = Json.obj();
        if (c.device() instanceof BlkDevice b) {
            o.putObject("block").put("readonly", b.readOnly()).put("bdev", b.bdev().name()).put("transport", BLK_TRANSPORT);
        }
        else if (c.device() instanceof VirtioScsiDevice s) o.set("scsi", VhostScsiRpc.targets(s));
        return o;
    }

    /**
     * The {@code vhost_controller_set_coalescing} entry that restores the setting, or null.
     * As SPDK (lib/vhost/vhost.c {@code vhost_user_config_json}): written only when
     * {@code delay_base_us} is not 0, since the threshold means nothing without a delay.
     */
    static ObjectNode coalescingEntry(Controller c) {
        if (c.coalescingDelayBaseUs() == 0) return null;
        ObjectNode e = Json.obj().put("method", "vhost_controller_set_coalescing");
        e.putObject("params").put("ctrlr", c.name()).put("delay_base_us", c.coalescingDelayBaseUs())
                .put("iops_threshold", c.coalescingIopsThreshold());
        return e;
    }

    /**
     * SPDK cpumask text of the reactor(s) a controller runs on, as SPDK saves it ("1", "2", ...);
     * a spread controller's names every reactor its queues use.
     */
    static String cpumask(Controller c) {
        long m = 0;
        for (var r : c.device().placement().reactors()) m |= 1L << (r.cpu() >= 0 ? r.cpu() : r.id());
        return Long.toHexString(m);
    }

    /**
     * jvhost's {@code queue_placement} ("one-reactor", the default and SPDK's behaviour, or
     * "spread": the queues round-robin over the cpumask's reactors). SPDK has no such parameter
     * and, decoding these methods leniently, ignores it in a jvhost config.
     */
    static QueuePlacement.Mode queuePlacement(Params p, String method) {
        String v = p.string("queue_placement", null);
        try {
            return QueuePlacement.Mode.parse(v);
        } catch (IllegalArgumentException e) {
            throw RpcException.invalidParams(method + ": parameter 'queue_placement' " + e.getMessage().substring("queue_placement ".length()));
        }
    }

    /** Adds {@code queue_placement} to saved params when it is not the default. */
    static void putPlacement(ObjectNode params, Controller c) {
        if (c.device().placement().mode() != QueuePlacement.Mode.ONE_REACTOR) params.put("queue_placement", c.device().placement().mode().value);
    }

    private static JsonNode blkConfig(VhostTarget t) {
        ArrayNode a = Json.arr();
        for (Controller c : t.controllers()) {
            if (!(c.device() instanceof BlkDevice b)) continue;
            ObjectNode e = a.addObject().put("method", "vhost_create_blk_controller");
            ObjectNode params = e.putObject("params");
            // SPDK 23.01's set (lib/vhost/vhost_blk.c vhost_blk_write_config_json).
            params.put("ctrlr", c.name()).put("dev_name", b.bdev().name()).put("cpumask", cpumask(c)).put("readonly", b.readOnly())
                    .put("transport", BLK_TRANSPORT);
            // jvhost's one extra, only when not the default: SPDK decodes this method's params
            // leniently (spdk_json_decode_object_relaxed) and ignores it.
            if (b.maxQueues() != DEFAULT_NUM_QUEUES) params.put("num_queues", b.maxQueues());
            // SPDK's own packed_ring, written when on (its decoder knows it).
            if (b.packedRing()) params.put("packed_ring", true);
            putPlacement(params, c);
            ObjectNode co = coalescingEntry(c);
            if (co != null) a.add(co);
        }
        return a;
    }

    /**
     * jvhost's statistics per controller: connection and vhost-user counters, and for the live
     * session each running queue's counters (requests, in flight, kicks, calls, errors by kind).
     */
    private static JsonNode vhostGetStats(VhostTarget t, Params p) {
        ArrayNode a = Json.arr();
        for (Controller c : select(t, p)) {
            ObjectNode o = a.addObject();
            o.put("ctrlr", c.name());
            o.put("virtio_device_id", c.device().virtioDeviceId());
            o.put("connections", c.stats.connections.get());
            o.put("refused_connections", c.stats.refusedConnections.get());
            o.put("protocol_errors", c.stats.protocolErrors.get());
            o.put("failed_requests", c.stats.failedRequests.get());
            o.put("unsupported_requests", c.stats.unsupportedRequests.get());
            Session s = c.session();
            if (s == null) {
                o.set("session", NullNode.getInstance());
                continue;
            }
            ObjectNode so = o.putObject("session");
            so.put("name", s.name());
            so.put("features", "0x" + Long.toHexString(s.negotiatedFeatures()));
            so.set("queues", queueStats(c, s.runningQueues()));
        }
        return a;
    }

    /**
     * Per-queue counters, read from the queues' counter sets directly (no reactor round trip;
     * each value is exact as of its read, values of one queue may be a request apart).
     */
    static ArrayNode queueStats(Controller c, List<VirtQueue> queues) {
        List<long[]> rows = new ArrayList<>();
        for (VirtQueue q : queues) {
            QueueStats st = q.stats();
            rows.add(new long[] {q.index(), q.size(), st.requests(), st.inFlight(), st.kicks(), st.calls(), st.callErrors(), st.chainErrors(),
                    st.requestErrors(), q.isBroken() ? 1 : 0});
        }
        ArrayNode a = Json.arr();
        for (int i = 0; i < rows.size(); i++) {
            long[] r = rows.get(i);
            ObjectNode q = a.addObject();
            q.put("index", r[0]).put("size", r[1]).put("requests", r[2]).put("in_flight", r[3]).put("kicks", r[4])
                    .put("calls", r[5]).put("call_errors", r[6]).put("chain_errors", r[7]).put("request_errors", r[8]);
            q.put("broken", r[9] != 0);
            if (r[9] != 0) q.put("broken_reason", queues.get(i).brokenReason().reason);
        }
        return a;
    }
}
