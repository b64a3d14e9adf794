package io.jvhost.rpc;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.BooleanNode;
import com.fasterxml.jackson.databind.node.TextNode;
import io.jvhost.bdev.BdevException;
import io.jvhost.bdev.FileBlockDevice;
import io.jvhost.bdev.MallocBlockDevice;
import io.jvhost.bdev.NullBlockDevice;
import io.jvhost.sys.NativeException;
import io.jvhost.target.VhostTarget;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;

/**
 * The SPDK-named management methods (SPDK doc/jsonrpc.md), shared by the JSON config loader and
 * the JSON-RPC server. Each takes a {@link Params} and returns the JSON result.
 */
public final class Methods {
    @FunctionalInterface
    public interface Method {
        JsonNode call(Params p);
    }

    private final VhostTarget target;
    private final Map<String, Method> methods = new LinkedHashMap<>();

    public Methods(VhostTarget target) {
        this.target = target;
        register("bdev_malloc_create", this::bdevMallocCreate);
        register("bdev_malloc_delete", p -> deleteBdev(p, MallocBlockDevice.class));
        register("bdev_null_create", this::bdevNullCreate);
        register("bdev_null_delete", p -> deleteBdev(p, NullBlockDevice.class));
        register("bdev_aio_create", this::bdevAioCreate);
        register("bdev_aio_delete", p -> deleteBdev(p, FileBlockDevice.class));
        register("vhost_create_blk_controller", this::vhostCreateBlkController);
        register("vhost_delete_controller", this::vhostDeleteController);
        register("vhost_create_scsi_controller", this::vhostCreateScsiController);
        register("vhost_scsi_controller_add_target", this::vhostScsiAddTarget);
        register("vhost_scsi_controller_remove_target", this::vhostScsiRemoveTarget);
        register("framework_start_init", p -> { p.done(); return BooleanNode.TRUE; });
    }

    public void register(String name, Method m) {
        methods.put(name, m);
    }

    public Set<String> names() {
        return Collections.unmodifiableSet(methods.keySet());
    }

    /** Runs {@code method}; every failure comes out as an {@link RpcException} with a clear message. */
    public JsonNode call(String method, JsonNode params) {
        Method m = methods.get(method);
        if (m == null) throw new RpcException(RpcException.METHOD_NOT_FOUND, "Method not found: " + method);
        try {
            return m.call(new Params(method, params));
        } catch (RpcException e) {
            throw e;
        } catch (BdevException e) {
            int code = switch (e.kind()) {
                case NOT_FOUND -> RpcException.ENOENT;
                case EXISTS -> RpcException.EEXIST;
                case IN_USE -> RpcException.EBUSY;
                case INVALID -> RpcException.EINVAL;
            };
            throw new RpcException(code, method + ": " + e.getMessage());
        } catch (IllegalArgumentException | IllegalStateException | NativeException e) {
            throw new RpcException(RpcException.EINVAL, method + ": " + e.getMessage());
        }
    }

    private JsonNode bdevMallocCreate(Params p) {
        String name = p.string("name", null);
        long numBlocks = p.integer("num_blocks");
        int blockSize = p.intInRange("block_size", 512, 512, 65536);
        var uuid = p.uuid("uuid");
        p.done();
        if (name == null) name = nextName("Malloc");
        target.bdevs().register(new MallocBlockDevice(name, numBlocks, blockSize, uuid));
        return TextNode.valueOf(name);
    }

    private JsonNode bdevNullCreate(Params p) {
        String name = p.string("name");
        long numBlocks = p.integer("num_blocks");
        int blockSize = p.intInRange("block_size", 512, 512, 65536);
        var uuid = p.uuid("uuid");
        p.done();
        target.bdevs().register(new NullBlockDevice(name, numBlocks, blockSize, uuid));
        return TextNode.valueOf(name);
    }

    private JsonNode bdevAioCreate(Params p) {
        String name = p.string("name");
        String filename = p.string("filename");
        int blockSize = p.intInRange("block_size", 0, 0, 65536);
        boolean readonly = p.bool("readonly", false);
        var uuid = p.uuid("uuid");
        p.done();
        if (blockSize != 0 && (blockSize < 512 || Integer.bitCount(blockSize) != 1)) {
            throw RpcException.invalidParams("bdev_aio_create: block_size must be 0 (auto) or a power of two >= 512");
        }
        target.bdevs().register(new FileBlockDevice(name, filename, blockSize, readonly, uuid));
        return TextNode.valueOf(name);
    }

    private JsonNode deleteBdev(Params p, Class<?> type) {
        String name = p.string("name");
        p.done();
        var dev = target.bdevs().get(name);
        if (!type.isInstance(dev)) throw new BdevException(BdevException.Kind.NOT_FOUND, "bdev '" + name + "' is not a " + dev.productName());
        target.bdevs().delete(name);
        return BooleanNode.TRUE;
    }

    private JsonNode vhostCreateBlkController(Params p) {
        String ctrlr = p.string("ctrlr");
        String devName = p.string("dev_name");
        boolean readonly = p.bool("readonly", false);
        boolean packed = p.bool("packed_ring", false);
        p.bool("packed_ring_recovery", false);
        String cpumask = p.string("cpumask", null);
        int numQueues = p.intInRange("num_queues", 16, 1, 64);
        p.done();
        if (packed) throw RpcException.invalidParams("vhost_create_blk_controller: packed_ring is not supported yet");
        target.createBlkController(ctrlr, devName, readonly, numQueues, cpumask);
        return BooleanNode.TRUE;
    }

    private JsonNode vhostCreateScsiController(Params p) {
        String ctrlr = p.string("ctrlr");
        String cpumask = p.string("cpumask", null);
        p.bool("delay", false);
        int numQueues = p.intInRange("num_queues", 16, 1, 62);
        p.done();
        target.createScsiController(ctrlr, numQueues, cpumask);
        return BooleanNode.TRUE;
    }

    private JsonNode vhostScsiAddTarget(Params p) {
        String ctrlr = p.string("ctrlr");
        int num = p.intInRange("scsi_target_num", -1, -1, 7);
        String bdev = p.string("bdev_name");
        p.done();
        return com.fasterxml.jackson.databind.node.IntNode.valueOf(target.addScsiTarget(ctrlr, num, bdev));
    }

    private JsonNode vhostScsiRemoveTarget(Params p) {
        String ctrlr = p.string("ctrlr");
        long num = p.integer("scsi_target_num");
        p.done();
        if (num < 0 || num > 7) throw RpcException.invalidParams("vhost_scsi_controller_remove_target: parameter 'scsi_target_num' must be in 0..7, got " + num);
        target.removeScsiTarget(ctrlr, (int) num);
        return BooleanNode.TRUE;
    }

    private JsonNode vhostDeleteController(Params p) {
        String ctrlr = p.string("ctrlr");
        p.done();
        target.deleteController(ctrlr);
        return BooleanNode.TRUE;
    }

    private String nextName(String prefix) {
        for (int i = 0; ; i++) {
            String n = prefix + i;
            if (target.bdevs().find(n).isEmpty()) return n;
        }
    }

    public VhostTarget target() {
        return target;
    }
}
