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
            new Doc("framework_set_scheduler", "name [period]", "true (static placement; dynamic/gscheduler accepted with a warning)"),
            new Doc("framework_get_scheduler", "", "{scheduler_name: \"static\", scheduler_period}"),
            new Doc("thread_get_stats", "", "{tick_rate, threads: [{name, id, cpumask, busy, idle, active_pollers_count, ...}]} (one per reactor)"),
            new Doc("spdk_kill_instance", "sig_name", "true, then serve shuts down as on SIGTERM (SIGKILL: at once)"),
            new Doc("notify_get_types", "", "[\"bdev_register\", \"bdev_unregister\"]"),
            new Doc("notify_get_notifications", "[id] [max]", "[{type, ctx, id}]"),
            new Doc("log_get_flags", "", "{flag: debug on, ...} (flags: jvhost's packages)"),
            new Doc("log_set_flag", "flag", "true if already on; levels are fixed at start (the error says how to restart)"),
            new Doc("log_clear_flag", "flag", "true if already off; as log_set_flag"),
            new Doc("log_get_print_level", "", "ERROR, WARNING, INFO or DEBUG"),
            new Doc("log_set_print_level", "level", "true if already in force; levels are fixed at start"),
            new Doc("bdev_malloc_create", "num_blocks [name] [block_size] [uuid]", "bdev name"),
            new Doc("bdev_malloc_delete", "name", "true"),
            new Doc("bdev_null_create", "name num_blocks [block_size] [uuid]", "bdev name"),
            new Doc("bdev_null_delete", "name", "true"),
            new Doc("bdev_aio_create", "name filename [block_size] [readonly] [uuid]", "bdev name"),
            new Doc("bdev_aio_delete", "name", "true"),
            new Doc("bdev_uring_create", "name filename [block_size] [uuid]", "bdev name (io_uring; the thread pool where io_uring is unavailable)"),
            new Doc("bdev_uring_delete", "name", "true"),
            new Doc("bdev_get_bdevs", "[name]", "[{name, aliases, product_name, block_size, num_blocks, uuid, claimed, supported_io_types, driver_specific, ...}]"),
            new Doc("bdev_reset_iostat", "[name] [mode: all|maxmin]", "true"),
            new Doc("bdev_null_resize", "name new_size(MiB, not smaller)", "true (refused while a controller uses the bdev)"),
            new Doc("bdev_aio_rescan", "name", "true (adopts the file's new size; refused while in use)"),
            new Doc("bdev_set_qos_limit", "name [rw_ios_per_sec] [rw_mbytes_per_sec] [r_mbytes_per_sec] [w_mbytes_per_sec]", "true for no limits (0); a real limit is refused"),
            // Ceph RBD (RbdRpc)
            new Doc("bdev_rbd_register_cluster", "name [user_id] [config_param{}] [config_file] [key_file]", "cluster name (connects once; shared by the bdevs naming it)"),
            new Doc("bdev_rbd_unregister_cluster", "name", "true (refused while bdevs use it)"),
            new Doc("bdev_rbd_get_clusters_info", "[name]", "{cluster_name, user_id, config_param, config_file, key_file} (array without name)"),
            new Doc("bdev_rbd_create", "pool_name rbd_name block_size [name] [user_id] [config{}] [cluster_name] [uuid]", "bdev name"),
            new Doc("bdev_rbd_delete", "name", "true (image closed with a bounded wait; during an outage the close finishes in the background)"),
            new Doc("bdev_rbd_resize", "name new_size(MiB, not smaller)", "true (resizes the image; refused while a controller uses the bdev)"),
            new Doc("bdev_get_iostat", "[name]", "{tick_rate, ticks, bdevs: [{name, bytes_read, num_read_ops, ..., read_latency_ticks, ...}]}"),
            new Doc("vhost_create_blk_controller", "ctrlr dev_name [readonly] [cpumask] [packed_ring] [transport] [num_queues*] [queue_placement*]", "true"),
            new Doc("vhost_create_scsi_controller", "ctrlr [cpumask] [num_queues*] [queue_placement*] [packed_ring*]", "true"),
            new Doc("vhost_scsi_controller_add_target", "ctrlr scsi_target_num(-1: first free) bdev_name", "the target number"),
            new Doc("vhost_scsi_controller_remove_target", "ctrlr scsi_target_num", "true"),
            new Doc("vhost_delete_controller", "ctrlr", "true; refused (-32602 Device or resource busy) while a front-end is connected"),
            new Doc("scsi_get_devices", "", "[{id, device_name, ctrlr*, scsi_target_num*}]"),
            new Doc("vhost_get_controllers", "[name]", "[{ctrlr, cpumask, queue_placement*, delay_base_us, iops_threshold, socket, backend_specific}]"),
            new Doc("vhost_controller_set_coalescing", "ctrlr delay_base_us iops_threshold", "true (applied to running queues, reported, saved)"),
            new Doc("vhost_get_stats*", "[name]", "[{ctrlr, connections, protocol_errors, ..., session: {queues: [{requests, in_flight, calls, ...}]}}]"));
}
