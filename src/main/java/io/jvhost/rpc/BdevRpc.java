package io.jvhost.rpc;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.BooleanNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.databind.node.TextNode;
import io.jvhost.bdev.BdevException;
import io.jvhost.bdev.BdevIoStats;
import io.jvhost.bdev.BdevRegistry;
import io.jvhost.bdev.BlockDevice;
import io.jvhost.bdev.FileBlockDevice;
import io.jvhost.bdev.HostMemory;
import io.jvhost.bdev.MallocBlockDevice;
import io.jvhost.bdev.NullBlockDevice;

import java.util.List;

/**
 * SPDK's bdev methods for the devices jvhost has (malloc = RAM, null, aio = file or block
 * device), {@code bdev_get_bdevs} and {@code bdev_get_iostat} in SPDK's result shapes, and the
 * {@code bdev} config subsystem.
 *
 * <p>Configs saved by SPDK carry metadata/DIF parameters ({@code md_size}, {@code dif_type},
 * ...) and a physical block size: they are accepted at their "off" values so such files load,
 * and refused with a clear error otherwise (jvhost has no metadata or protection information).
 */
public final class BdevRpc {
    private BdevRpc() {}

    static void register(Methods m) {
        BdevRegistry bdevs = m.target().bdevs();
        m.register("bdev_malloc_create", p -> bdevMallocCreate(bdevs, p));
        m.register("bdev_malloc_delete", p -> deleteBdev(bdevs, p, MallocBlockDevice.class));
        m.register("bdev_null_create", p -> bdevNullCreate(bdevs, p));
        m.register("bdev_null_delete", p -> deleteBdev(bdevs, p, NullBlockDevice.class));
        m.register("bdev_aio_create", p -> bdevAioCreate(bdevs, p));
        m.register("bdev_aio_delete", p -> deleteFileBdev(bdevs, p, FileBlockDevice.Kind.AIO));
        m.register("bdev_get_bdevs", p -> bdevGetBdevs(bdevs, p));
        m.register("bdev_get_iostat", p -> bdevGetIostat(bdevs, p));
        m.register("bdev_reset_iostat", p -> bdevResetIostat(bdevs, p));
        m.register("bdev_null_resize", p -> bdevNullResize(bdevs, p));
        m.register("bdev_aio_rescan", p -> bdevAioRescan(bdevs, p));
        m.register("bdev_set_qos_limit", p -> bdevSetQosLimit(bdevs, p));
        registerUring(m, bdevs);
        m.registerSubsystem("bdev", List.of(), () -> config(bdevs));
    }

    // ---- io_uring file bdevs (issue 11) ----

    /** SPDK's uring bdev methods: {@code bdev_uring_create}, {@code bdev_uring_delete}. */
    private static void registerUring(Methods m, BdevRegistry bdevs) {
        m.register("bdev_uring_create", p -> bdevUringCreate(bdevs, p));
        m.register("bdev_uring_delete", p -> deleteFileBdev(bdevs, p, FileBlockDevice.Kind.URING));
    }

    /**
     * SPDK 23.01's params: {@code name}, {@code filename}, {@code block_size} (optional, 0 or
     * absent = the file's: 512 for a file, the logical block size of a block device); plus
     * {@code uuid}, which later SPDK releases accept. Runs on the same engine as aio (io_uring,
     * or the thread pool where io_uring is unavailable).
     */
    private static JsonNode bdevUringCreate(BdevRegistry bdevs, Params p) {
        String name = p.string("name");
        String filename = p.string("filename");
        int blockSize = p.intInRange("block_size", 0, 0, 65536);
        var uuid = p.uuid("uuid");
        p.done();
        if (blockSize != 0 && (blockSize < 512 || Integer.bitCount(blockSize) != 1)) {
            throw RpcException.invalidParams("bdev_uring_create: parameter 'block_size' must be 0 (auto) or a power of two >= 512, got " + blockSize);
        }
        if (bdevs.find(name).isPresent()) throw new BdevException(BdevException.Kind.EXISTS, "bdev '" + name + "' already exists");
        bdevs.register(new FileBlockDevice(FileBlockDevice.Kind.URING, name, filename, blockSize, false, uuid, io.jvhost.bdev.FileIoEngine.AUTO));
        return TextNode.valueOf(name);
    }

    /** Deletes a file bdev made by {@code kind}'s create method (aio and uring delete only their own, as in SPDK). */
    private static JsonNode deleteFileBdev(BdevRegistry bdevs, Params p, FileBlockDevice.Kind kind) {
        String name = p.string("name");
        p.done();
        BlockDevice dev = bdevs.get(name);
        if (!(dev instanceof FileBlockDevice f) || f.kind() != kind) {
            throw new BdevException(BdevException.Kind.NOT_FOUND, "bdev '" + name + "' is a " + dev.productName() + ", not deleted here");
        }
        bdevs.delete(name);
        return BooleanNode.TRUE;
    }

    /**
     * driver_specific of a file bdev: SPDK's keys ({@code aio}: filename, block_size_override,
     * readonly; {@code uring}: filename) plus jvhost's: {@code io_engine} ("io_uring" or
     * "threads"), {@code o_direct}, {@code direct_alignment}, {@code block_device}.
     */
    private static void describeFile(ObjectNode drv, FileBlockDevice f) {
        ObjectNode o = drv.putObject(f.kind().driverKey);
        o.put("filename", f.path());
        if (f.kind() == FileBlockDevice.Kind.AIO) o.put("block_size_override", f.blockSizeGiven()).put("readonly", f.readOnly());
        o.put("io_engine", f.ioEngine()).put("o_direct", f.directIo()).put("direct_alignment", f.directAlignment())
                .put("block_device", f.isBlockDevice());
    }

    /**
     * save_config of a file bdev, with exactly SPDK 23.01's params: aio {@code name},
     * {@code block_size} (only when given), {@code filename}, {@code readonly}; uring
     * {@code name}, {@code block_size} (always, as SPDK), {@code filename}, and {@code uuid} only
     * when one was given at creation (later SPDK releases write and accept it; 23.01 does not).
     */
    private static void configFile(ObjectNode e, ObjectNode params, FileBlockDevice f) {
        e.put("method", f.kind().createMethod);
        params.put("name", f.name());
        if (f.kind() == FileBlockDevice.Kind.URING) {
            params.put("block_size", f.blockSize()).put("filename", f.path());
            if (f.uuidGiven()) params.put("uuid", f.uuid().toString());
        } else {
            if (f.blockSizeGiven()) params.put("block_size", f.blockSize());
            params.put("filename", f.path()).put("readonly", f.readOnly());
        }
    }

    private static JsonNode bdevMallocCreate(BdevRegistry bdevs, Params p) {
        String name = p.string("name", null);
        long numBlocks = p.integer("num_blocks");
        int blockSize = p.intInRange("block_size", 512, 512, 65536);
        var uuid = p.uuid("uuid");
        p.integerInRange("optimal_io_boundary", 0, 0, 0xffff_ffffL);
        spdkMetadataParams(p, blockSize);
        p.done();
        if (name == null) name = nextName(bdevs, "Malloc");
        if (numBlocks > 0 && numBlocks <= Long.MAX_VALUE / blockSize) admitRamDisk(bdevs, numBlocks * blockSize, HostMemory.read());
        bdevs.register(new MallocBlockDevice(name, numBlocks, blockSize, uuid));
        return TextNode.valueOf(name);
    }

    /**
     * Refuses a RAM disk the host cannot back ({@link HostMemory}) with SPDK's answer to a failed
     * allocation: {@code -ENOMEM} and its text, at once, before anything is mapped. Every way a
     * RAM disk is made (RPC, JSON config, {@code serve --malloc}) comes through here.
     */
    static void admitRamDisk(BdevRegistry bdevs, long bytes, HostMemory host) {
        if (host == null) return; // not Linux: nothing to measure; the mapping itself may still fail with ENOMEM
        long promised = 0;
        for (BlockDevice d : bdevs.list()) if (d instanceof MallocBlockDevice m) promised += m.sizeBytes();
        String why = host.refusal(bytes, promised);
        if (why != null) throw new RpcException(RpcException.ENOMEM, "bdev_malloc_create: " + why + " (Cannot allocate memory)");
    }

    private static JsonNode bdevNullCreate(BdevRegistry bdevs, Params p) {
        String name = p.string("name");
        long numBlocks = p.integer("num_blocks");
        int blockSize = p.intInRange("block_size", 512, 512, 65536);
        var uuid = p.uuid("uuid");
        spdkMetadataParams(p, blockSize);
        p.done();
        bdevs.register(new NullBlockDevice(name, numBlocks, blockSize, uuid));
        return TextNode.valueOf(name);
    }

    private static JsonNode bdevAioCreate(BdevRegistry bdevs, Params p) {
        String name = p.string("name");
        String filename = p.string("filename");
        int blockSize = p.intInRange("block_size", 0, 0, 65536);
        boolean readonly = p.bool("readonly", false);
        var uuid = p.uuid("uuid");
        // SPDK: discard through fallocate(); jvhost always punches holes (or writes zeros).
        p.bool("fallocate", false);
        p.done();
        if (blockSize != 0 && (blockSize < 512 || Integer.bitCount(blockSize) != 1)) {
            throw RpcException.invalidParams("bdev_aio_create: parameter 'block_size' must be 0 (auto) or a power of two >= 512, got " + blockSize);
        }
        if (bdevs.find(name).isPresent()) throw new BdevException(BdevException.Kind.EXISTS, "bdev '" + name + "' already exists");
        bdevs.register(new FileBlockDevice(name, filename, blockSize, readonly, uuid));
        return TextNode.valueOf(name);
    }

    /** Accepts SPDK's metadata / DIF parameters at the values that mean "none". */
    private static void spdkMetadataParams(Params p, int blockSize) {
        String m = p.method();
        long phys = p.integer("physical_block_size", 0);
        if (phys != 0 && (phys < blockSize || Long.bitCount(phys) != 1)) {
            throw RpcException.invalidParams(m + ": parameter 'physical_block_size' must be 0 or a power of two >= block_size, got " + phys);
        }
        if (p.integer("md_size", 0) != 0) throw RpcException.invalidParams(m + ": parameter 'md_size': per-block metadata is not supported (use 0)");
        p.bool("md_interleave", false);
        if (p.integer("dif_type", 0) != 0) throw RpcException.invalidParams(m + ": parameter 'dif_type': protection information is not supported (use 0)");
        p.bool("dif_is_head_of_md", false);
        p.integer("dif_pi_format", 0);
    }

    private static JsonNode deleteBdev(BdevRegistry bdevs, Params p, Class<?> type) {
        String name = p.string("name");
        p.done();
        BlockDevice dev = bdevs.get(name);
        if (!type.isInstance(dev)) throw new BdevException(BdevException.Kind.NOT_FOUND, "bdev '" + name + "' is a " + dev.productName() + ", not deleted here");
        // Fails with EBUSY while a controller uses it; jvhost does not hot-remove a disk from a guest.
        bdevs.delete(name);
        return BooleanNode.TRUE;
    }

    /** SPDK: {@code new_size} in MiB, never smaller than the current size. */
    private static JsonNode bdevNullResize(BdevRegistry bdevs, Params p) {
        String name = p.string("name");
        long newSizeMiB = p.integerInRange("new_size", 0, Long.MAX_VALUE >> 20);
        p.done();
        BlockDevice d = bdevs.get(name);
        if (!(d instanceof NullBlockDevice)) throw new BdevException(BdevException.Kind.INVALID, "bdev '" + name + "' is a " + d.productName() + ", not a null bdev");
        long currentMiB = d.sizeBytes() >> 20;
        if (newSizeMiB < currentMiB) {
            throw RpcException.invalidParams("bdev_null_resize: parameter 'new_size' (" + newSizeMiB + " MiB) must not be smaller than the current size ("
                    + currentMiB + " MiB)");
        }
        bdevs.resize(name, (newSizeMiB << 20) / d.blockSize());
        return BooleanNode.TRUE;
    }

    /** SPDK: re-reads the file's size and adopts it (in whole blocks). */
    private static JsonNode bdevAioRescan(BdevRegistry bdevs, Params p) {
        String name = p.string("name");
        p.done();
        BlockDevice d = bdevs.get(name);
        if (!(d instanceof FileBlockDevice f) || f.kind() != FileBlockDevice.Kind.AIO) throw new BdevException(BdevException.Kind.NOT_FOUND, "bdev '" + name + "' is a " + d.productName() + ", not an aio bdev");
        long blocks = f.currentNumBlocks();
        if (blocks < 1) throw RpcException.invalidParams("bdev_aio_rescan: " + f.path() + " is now smaller than one " + f.blockSize() + "-byte block");
        long old = bdevs.resize(name, blocks);
        if (old != blocks) org.slf4j.LoggerFactory.getLogger(BdevRpc.class).info("bdev {}: {} resized from {} to {} blocks", name, f.path(), old, blocks);
        return BooleanNode.TRUE;
    }

    /** SPDK: {@code mode} "all" (default) or "maxmin" (only the latency extremes). */
    private static JsonNode bdevResetIostat(BdevRegistry bdevs, Params p) {
        String name = p.string("name", null);
        String mode = p.string("mode", "all");
        p.done();
        BdevIoStats.ResetMode m = switch (mode) {
            case "all" -> BdevIoStats.ResetMode.ALL;
            case "maxmin" -> BdevIoStats.ResetMode.MAXMIN;
            default -> throw RpcException.invalidParams("bdev_reset_iostat: parameter 'mode' must be \"all\" or \"maxmin\", got \"" + mode + "\"");
        };
        for (BlockDevice d : name == null ? bdevs.list() : List.of(bdevs.get(name))) d.ioStats().reset(m);
        return BooleanNode.TRUE;
    }

    private static final List<String> QOS_LIMITS = List.of("rw_ios_per_sec", "rw_mbytes_per_sec", "r_mbytes_per_sec", "w_mbytes_per_sec");

    /**
     * SPDK saves this for a bdev with rate limits. jvhost has no QoS: "no limit" (0 everywhere)
     * is accepted, a real limit refused, since ignoring it would let a guest exceed it silently.
     */
    private static JsonNode bdevSetQosLimit(BdevRegistry bdevs, Params p) {
        String name = p.string("name");
        List<String> set = new java.util.ArrayList<>();
        for (String k : QOS_LIMITS) if (p.integerInRange(k, 0, 0, Long.MAX_VALUE) != 0) set.add(k);
        p.done();
        bdevs.get(name);
        if (!set.isEmpty()) {
            throw RpcException.invalidParams("bdev_set_qos_limit: jvhost has no QoS rate limiting, so " + String.join(", ", set)
                    + " would not be enforced; remove the bdev_set_qos_limit entry (or set the limits to 0)");
        }
        return BooleanNode.TRUE;
    }

    private static List<BlockDevice> select(BdevRegistry bdevs, Params p) {
        String name = p.string("name", null);
        p.done();
        return name == null ? bdevs.list() : List.of(bdevs.get(name));
    }

    private static JsonNode bdevGetBdevs(BdevRegistry bdevs, Params p) {
        ArrayNode a = Json.arr();
        for (BlockDevice d : select(bdevs, p)) a.add(describe(bdevs, d));
        return a;
    }

    /** One bdev in SPDK's bdev_get_bdevs shape. */
    static ObjectNode describe(BdevRegistry bdevs, BlockDevice d) {
        ObjectNode o = Json.obj();
        o.put("name", d.name());
        o.putArray("aliases");
        o.put("product_name", d.productName());
        o.put("block_size", d.blockSize());
        o.put("num_blocks", d.numBlocks());
        o.put("uuid", d.uuid().toString());
        ObjectNode limits = o.putObject("assigned_rate_limits");
        limits.put("rw_ios_per_sec", 0).put("rw_mbytes_per_sec", 0).put("r_mbytes_per_sec", 0).put("w_mbytes_per_sec", 0);
        boolean claimed = bdevs.claimedBy(d.name()).isPresent();
        o.put("claimed", claimed);
        if (claimed) o.put("claim_type", "exclusive_write");
        o.put("zoned", false);
        boolean rw = !d.readOnly();
        ObjectNode io = o.putObject("supported_io_types");
        io.put("read", true).put("write", rw).put("unmap", rw && d.supportsUnmap()).put("flush", true).put("reset", false)
                .put("nvme_admin", false).put("nvme_io", false).put("write_zeroes", rw && d.supportsWriteZeroes())
                .put("zcopy", false).put("compare", false).put("compare_and_write", false).put("abort", false).put("copy", false);
        ObjectNode drv = o.putObject("driver_specific");
        if (d instanceof FileBlockDevice f) describeFile(drv, f);
        if (d instanceof io.jvhost.bdev.RbdBlockDevice r) drv.set("rbd", RbdRpc.driverSpecific(r));
        return o;
    }

    /**
     * SPDK's shape: {@code {tick_rate, ticks, bdevs: [{name, bytes_read, num_read_ops, ...}]}};
     * jvhost adds {@code num_write_zeroes_ops}, {@code bytes_zeroed} and {@code num_flush_ops}
     * (SPDK does not count those).
     */
    private static JsonNode bdevGetIostat(BdevRegistry bdevs, Params p) {
        List<BlockDevice> list = select(bdevs, p);
        ObjectNode r = Json.obj();
        r.put("tick_rate", BdevIoStats.TICK_RATE);
        r.put("ticks", System.nanoTime());
        ArrayNode a = r.putArray("bdevs");
        for (BlockDevice d : list) {
            BdevIoStats.Snapshot s = d.ioStats().snapshot();
            ObjectNode o = a.addObject();
            o.put("name", d.name());
            o.put("bytes_read", s.bytesRead()).put("num_read_ops", s.numReadOps());
            o.put("bytes_written", s.bytesWritten()).put("num_write_ops", s.numWriteOps());
            o.put("bytes_unmapped", s.bytesUnmapped()).put("num_unmap_ops", s.numUnmapOps());
            o.put("bytes_copied", 0).put("num_copy_ops", 0);
            o.put("read_latency_ticks", s.readLatencyTicks()).put("max_read_latency_ticks", s.maxReadLatencyTicks())
                    .put("min_read_latency_ticks", s.minReadLatencyTicks());
            o.put("write_latency_ticks", s.writeLatencyTicks()).put("max_write_latency_ticks", s.maxWriteLatencyTicks())
                    .put("min_write_latency_ticks", s.minWriteLatencyTicks());
            o.put("unmap_latency_ticks", s.unmapLatencyTicks()).put("max_unmap_latency_ticks", s.maxUnmapLatencyTicks())
                    .put("min_unmap_latency_ticks", s.minUnmapLatencyTicks());
            o.put("copy_latency_ticks", 0).put("max_copy_latency_ticks", 0).put("min_copy_latency_ticks", 0);
            ObjectNode err = o.putObject("io_error");
            if (s.ioErrors() > 0) err.put("failed", s.ioErrors());
            o.put("num_write_zeroes_ops", s.numWriteZeroesOps()).put("bytes_zeroed", s.bytesZeroed());
            o.put("num_flush_ops", s.numFlushOps());
        }
        return r;
    }

    /**
     * The bdev subsystem's config: one create call per device, in creation order, with exactly
     * the parameters SPDK 23.01's save_config writes for that method (module/bdev/{malloc,null,
     * aio}: {@code *_write_json_config}), so the file loads into SPDK as well: malloc writes
     * {@code optimal_io_boundary} (jvhost keeps none: 0); null writes the metadata/DIF fields
     * (always "none" here); aio writes no {@code uuid} (SPDK 23.01's bdev_aio_create rejects it,
     * so a file bdev's UUID is derived from its path again on load) and {@code block_size} only
     * when it was given at creation.
     * (SPDK's list also starts with {@code bdev_set_options} and ends with
     * {@code bdev_wait_for_examine}; jvhost has nothing to say in either, so writes neither.)
     */
    static JsonNode config(BdevRegistry bdevs) {
        ArrayNode a = Json.arr();
        a.addAll(RbdRpc.clusterConfig(bdevs)); // Ceph clusters before the rbd bdevs that name them
        for (BlockDevice d : bdevs.list()) {
            ObjectNode e = Json.obj();
            ObjectNode params = Json.obj();
            switch (d) {
                case MallocBlockDevice x -> {
                    e.put("method", "bdev_malloc_create");
                    params.put("name", d.name()).put("num_blocks", d.numBlocks()).put("block_size", d.blockSize())
                            .put("uuid", d.uuid().toString()).put("optimal_io_boundary", 0);
                }
                case NullBlockDevice x -> {
                    e.put("method", "bdev_null_create");
                    params.put("name", d.name()).put("num_blocks", d.numBlocks()).put("block_size", d.blockSize())
                            .put("md_size", 0).put("dif_type", 0).put("dif_is_head_of_md", false).put("uuid", d.uuid().toString());
                }
                case FileBlockDevice f -> configFile(e, params, f);
                case io.jvhost.bdev.RbdBlockDevice r -> {
                    e.put("method", "bdev_rbd_create");
                    RbdRpc.createParams(r, params);
                }
                default -> { continue; }
            }
            e.set("params", params);
            a.add(e);
        }
        return a;
    }

    private static String nextName(BdevRegistry bdevs, String prefix) {
        for (int i = 0; ; i++) {
            String n = prefix + i;
            if (bdevs.find(n).isEmpty()) return n;
        }
    }
}
