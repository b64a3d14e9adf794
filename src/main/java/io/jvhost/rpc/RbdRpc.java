package io.jvhost.rpc;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.BooleanNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.databind.node.TextNode;
import io.jvhost.bdev.BdevException;
import io.jvhost.bdev.BdevRegistry;
import io.jvhost.bdev.BlockDevice;
import io.jvhost.bdev.RbdBlockDevice;
import io.jvhost.bdev.RbdCluster;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.WeakHashMap;

/**
 * SPDK's Ceph RBD methods (module/bdev/rbd/bdev_rbd_rpc.c, SPDK 23.01) with SPDK's names and
 * parameters: {@code bdev_rbd_register_cluster} (name, user_id, config_param, config_file,
 * key_file), {@code bdev_rbd_unregister_cluster}, {@code bdev_rbd_get_clusters_info},
 * {@code bdev_rbd_create} (name, user_id, pool_name, rbd_name, block_size, config, cluster_name,
 * uuid), {@code bdev_rbd_delete}, {@code bdev_rbd_resize} (new_size in MiB).
 *
 * <p>Registered clusters belong to one target (one {@link BdevRegistry}); every bdev that names
 * a cluster shares its connection. The bdev subsystem's saved config lists the registered
 * clusters first ({@code bdev_rbd_register_cluster}, SPDK's parameters), then each
 * {@code bdev_rbd_create} with SPDK's saved parameters plus {@code cluster_name} when the bdev
 * used one: SPDK 23.01's writer drops {@code cluster_name} and the clusters, so its own saved
 * file does not load back; jvhost's does, in jvhost and in SPDK.
 */
public final class RbdRpc {
    private RbdRpc() {}

    /** Registered clusters per target, in registration order (control path, guarded by the map). */
    private static final Map<BdevRegistry, Map<String, RbdCluster>> CLUSTERS = new WeakHashMap<>();

    static Map<String, RbdCluster> clusters(BdevRegistry bdevs) {
        synchronized (CLUSTERS) {
            return CLUSTERS.computeIfAbsent(bdevs, b -> java.util.Collections.synchronizedMap(new LinkedHashMap<>()));
        }
    }

    static void register(Methods m) {
        BdevRegistry bdevs = m.target().bdevs();
        m.register("bdev_rbd_register_cluster", p -> registerCluster(bdevs, p));
        m.register("bdev_rbd_unregister_cluster", p -> unregisterCluster(bdevs, p));
        m.register("bdev_rbd_get_clusters_info", p -> getClustersInfo(bdevs, p));
        m.register("bdev_rbd_create", p -> create(bdevs, p));
        m.register("bdev_rbd_delete", p -> delete(bdevs, p));
        m.register("bdev_rbd_resize", p -> resize(bdevs, p));
    }

    private static JsonNode registerCluster(BdevRegistry bdevs, Params p) {
        String name = p.string("name");
        String userId = p.string("user_id", null);
        Map<String, String> configParam = p.stringMap("config_param");
        String configFile = p.string("config_file", null);
        String keyFile = p.string("key_file", null);
        p.done();
        Map<String, RbdCluster> cs = clusters(bdevs);
        if (cs.containsKey(name)) throw new BdevException(BdevException.Kind.EXISTS, "Ceph cluster '" + name + "' is already registered");
        cs.put(name, RbdCluster.connect(name, userId, configParam, configFile, keyFile));
        return TextNode.valueOf(name);
    }

    private static JsonNode unregisterCluster(BdevRegistry bdevs, Params p) {
        String name = p.string("name");
        p.done();
        Map<String, RbdCluster> cs = clusters(bdevs);
        RbdCluster c = cs.get(name);
        if (c == null) throw new BdevException(BdevException.Kind.NOT_FOUND, "Ceph cluster '" + name + "' is not registered");
        c.shutdown(); // refuses (EBUSY) while bdevs use it
        cs.remove(name);
        return BooleanNode.TRUE;
    }

    /** SPDK: one object for a named cluster, an array of all otherwise; -ENOENT when there is none. */
    private static JsonNode getClustersInfo(BdevRegistry bdevs, Params p) {
        String name = p.string("name", null);
        p.done();
        Map<String, RbdCluster> cs = clusters(bdevs);
        if (name != null) {
            RbdCluster c = cs.get(name);
            if (c == null) throw new RpcException(RpcException.ENODEV, "bdev_rbd_get_clusters_info: Ceph cluster '" + name + "' is not registered");
            return clusterInfo(c);
        }
        ArrayNode a = Json.arr();
        synchronized (cs) {
            for (RbdCluster c : cs.values()) a.add(clusterInfo(c));
        }
        return a;
    }

    private static ObjectNode clusterInfo(RbdCluster c) {
        ObjectNode o = Json.obj();
        o.put("cluster_name", c.name());
        clusterFields(c, o);
        return o;
    }

    /** user_id, config_param, config_file, key_file, each only when given (SPDK's dump). */
    private static void clusterFields(RbdCluster c, ObjectNode o) {
        if (c.userId() != null) o.put("user_id", c.userId());
        if (c.configParam() != null) putMap(o.putObject("config_param"), c.configParam());
        if (c.configFile() != null) o.put("config_file", c.configFile());
        if (c.keyFile() != null) o.put("key_file", c.keyFile());
    }

    private static void putMap(ObjectNode o, Map<String, String> m) {
        for (var e : m.entrySet()) o.put(e.getKey(), e.getValue());
    }

    private static JsonNode create(BdevRegistry bdevs, Params p) {
        String name = p.string("name", null);
        String userId = p.string("user_id", null);
        String pool = p.string("pool_name");
        String image = p.string("rbd_name");
        long blockSize = p.uint32("block_size");
        Map<String, String> config = p.stringMap("config");
        String clusterName = p.string("cluster_name", null);
        var uuid = p.uuid("uuid");
        p.done();
        if (blockSize < 512 || blockSize > 65536 || Long.bitCount(blockSize) != 1) {
            throw RpcException.invalidParams("bdev_rbd_create: parameter 'block_size' must be a power of two in 512..65536, got " + blockSize);
        }
        if (name == null) name = nextName(bdevs);
        if (bdevs.find(name).isPresent()) throw new BdevException(BdevException.Kind.EXISTS, "bdev '" + name + "' already exists");
        RbdCluster cluster = null;
        if (clusterName != null) {
            cluster = clusters(bdevs).get(clusterName);
            if (cluster == null) {
                throw new BdevException(BdevException.Kind.NOT_FOUND, "Ceph cluster '" + clusterName + "' is not registered (bdev_rbd_register_cluster first)");
            }
        }
        bdevs.register(RbdBlockDevice.open(name, pool, image, (int) blockSize, uuid, cluster, userId, config));
        return TextNode.valueOf(name);
    }

    /** SPDK's default names: Ceph0, Ceph1, ... */
    private static String nextName(BdevRegistry bdevs) {
        for (int i = 0; ; i++) if (bdevs.find("Ceph" + i).isEmpty()) return "Ceph" + i;
    }

    private static RbdBlockDevice rbd(BdevRegistry bdevs, String name) {
        BlockDevice d = bdevs.get(name);
        if (!(d instanceof RbdBlockDevice r)) throw new BdevException(BdevException.Kind.NOT_FOUND, "bdev '" + name + "' is a " + d.productName() + ", not an rbd bdev");
        return r;
    }

    /**
     * Deletes an unclaimed RBD bdev. Closing the image waits a bounded time for the cluster
     * ({@link RbdCluster#CONTROL_WAIT_SECONDS}); during an outage the bdev is gone at once and
     * the close finishes in the background (logged).
     */
    private static JsonNode delete(BdevRegistry bdevs, Params p) {
        String name = p.string("name");
        p.done();
        rbd(bdevs, name);
        bdevs.delete(name);
        return BooleanNode.TRUE;
    }

    /** SPDK: {@code new_size} in MiB, not smaller than the current size; resizes the image itself. */
    private static JsonNode resize(BdevRegistry bdevs, Params p) {
        String name = p.string("name");
        long newSizeMiB = p.integerInRange("new_size", 0, Long.MAX_VALUE >> 20);
        p.done();
        RbdBlockDevice d = rbd(bdevs, name);
        long currentMiB = d.sizeBytes() >> 20;
        if (newSizeMiB < currentMiB) {
            throw RpcException.invalidParams("bdev_rbd_resize: parameter 'new_size' (" + newSizeMiB + " MiB) must not be smaller than the current size ("
                    + currentMiB + " MiB)");
        }
        var owner = bdevs.claimedBy(name);
        if (owner.isPresent()) {
            throw new BdevException(BdevException.Kind.IN_USE, "bdev '" + name + "' is in use by " + owner.get()
                    + ": its capacity cannot change while claimed (jvhost does not notify a guest of a capacity change); "
                    + "delete the controller, resize, then create it again");
        }
        long bytes = newSizeMiB << 20;
        d.resizeImage(bytes);
        bdevs.resize(name, bytes / d.blockSize());
        return BooleanNode.TRUE;
    }

    /** {@code driver_specific.rbd} of bdev_get_bdevs, as SPDK's dump_info_json. */
    static ObjectNode driverSpecific(RbdBlockDevice r) {
        ObjectNode o = Json.obj();
        o.put("pool_name", r.poolName());
        o.put("rbd_name", r.rbdName());
        if (!r.privateCluster()) {
            clusterFields(r.cluster(), o);
        } else {
            if (r.userId() != null) o.put("user_id", r.userId());
            if (r.config() != null) putMap(o.putObject("config"), r.config());
        }
        return o;
    }

    /** The registered clusters' {@code bdev_rbd_register_cluster} entries (first in the bdev config). */
    static List<ObjectNode> clusterConfig(BdevRegistry bdevs) {
        List<ObjectNode> l = new ArrayList<>();
        Map<String, RbdCluster> cs = clusters(bdevs);
        synchronized (cs) {
            for (RbdCluster c : cs.values()) {
                ObjectNode e = Json.obj();
                e.put("method", "bdev_rbd_register_cluster");
                ObjectNode params = e.putObject("params");
                params.put("name", c.name());
                clusterFields(c, params);
                l.add(e);
            }
        }
        return l;
    }

    /** {@code bdev_rbd_create}'s saved params: SPDK's (name, pool_name, rbd_name, block_size, user_id, config, uuid) plus cluster_name. */
    static void createParams(RbdBlockDevice r, ObjectNode params) {
        params.put("name", r.name()).put("pool_name", r.poolName()).put("rbd_name", r.rbdName()).put("block_size", r.blockSize());
        if (r.userId() != null) params.put("user_id", r.userId());
        if (r.config() != null) putMap(params.putObject("config"), r.config());
        if (!r.privateCluster()) params.put("cluster_name", r.cluster().name());
        params.put("uuid", r.uuid().toString());
    }
}
