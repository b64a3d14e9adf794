package io.jvhost.rpc;

import java.util.List;

/**
 * One-line documentation of every method, for {@code jvhost rpc --help} (which works without a
 * running server) and the README's reference table. A test checks that it lists exactly the
 * registered methods, so a new method cannot go undocumented.
 */
public final class RpcDocs {
    private RpcDocs() {}

    /** {@code params}: SPDK's names; optional ones in brackets; jvhost extensions marked *. */
    public record Doc(String method, String params, String result) {}

    public static final List<Doc> ALL = List.of(
            new Doc("rpc_get_methods", "[current] [include_aliases]", "array of method names"),
            new Doc("spdk_get_version", "", "{version, fields: {major, minor, patch, suffix}}"),
            new Doc("framework_start_init", "", "true (jvhost starts initialized: no-op)"),
            new Doc("framework_wait_init", "", "true"),
            new Doc("framework_get_subsystems", "", "[{subsystem, depends_on}]"),
            new Doc("framework_get_config", "name", "array of {method, params} that rebuild the subsystem"),
            new Doc("framework_get_reactors", "", "{tick_rate, pid, reactors: [{lcore, busy, idle, in_interrupt, lw_threads, ...}]}"),
            new Doc("bdev_malloc_create", "num_blocks [name] [block_size] [uuid]", "bdev name"),
            new Doc("bdev_malloc_delete", "name", "true"),
            new Doc("bdev_null_create", "name num_blocks [block_size] [uuid]", "bdev name"),
            new Doc("bdev_null_delete", "name", "true"),
            new Doc("bdev_aio_create", "name filename [block_size] [readonly] [uuid]", "bdev name"),
            new Doc("bdev_aio_delete", "name", "true"),
            new Doc("bdev_get_bdevs", "[name]", "[{name, aliases, product_name, block_size, num_blocks, uuid, claimed, supported_io_types, driver_specific, ...}]"),
            new Doc("bdev_get_iostat", "[name]", "{tick_rate, ticks, bdevs: [{name, bytes_read, num_read_ops, ..., read_latency_ticks, ...}]}"),
            new Doc("vhost_create_blk_controller", "ctrlr dev_name [readonly] [cpumask] [packed_ring] [transport] [num_queues*]", "true"),
            new Doc("vhost_create_scsi_controller", "ctrlr [cpumask] [num_queues*]", "true"),
            new Doc("vhost_scsi_controller_add_target", "ctrlr scsi_target_num(-1: first free) bdev_name", "the target number"),
            new Doc("vhost_scsi_controller_remove_target", "ctrlr scsi_target_num", "true"),
            new Doc("vhost_delete_controller", "ctrlr", "true"),
            new Doc("vhost_get_controllers", "[name]", "[{ctrlr, cpumask, delay_base_us, iops_threshold, socket, backend_specific}]"),
            new Doc("vhost_controller_set_coalescing", "ctrlr delay_base_us iops_threshold", "true (applied to running queues, reported, saved)"),
            new Doc("vhost_get_stats*", "[name]", "[{ctrlr, connections, protocol_errors, ..., session: {queues: [{requests, in_flight, calls, ...}]}}]"));
}
