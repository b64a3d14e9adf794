package io.jvhost.rpc;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.BooleanNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.jvhost.runtime.Reactor;
import io.jvhost.vhost.Controller;
import io.jvhost.vhost.VhostTarget;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;

/**
 * SPDK's application-framework methods: {@code rpc_get_methods}, {@code spdk_get_version},
 * {@code framework_start_init}/{@code framework_wait_init} (jvhost is always initialized, so
 * they succeed at once), the server side of {@code rpc.py save_config}
 * ({@code framework_get_subsystems}, {@code framework_get_config}) and
 * {@code framework_get_reactors}.
 */
public final class FrameworkRpc {
    private static final Logger log = LoggerFactory.getLogger(FrameworkRpc.class);

    /** jvhost's version, reported in SPDK's {@code spdk_get_version} shape. */
    public static final String VERSION = "0.1.0";

    /**
     * Methods a config saved by SPDK 23.01's vhost app carries that have no jvhost equivalent and
     * whose omission changes nothing a guest can see: buffer pools, socket and accel options,
     * examine control, NVMe/iSCSI/VMD module options, accel opcode routing and crypto keys (jvhost
     * has no crypto bdev to use one). They are accepted with any parameters and ignored with one
     * log line each, so SPDK's config files load unchanged. Where SPDK emits them:
     * lib/bdev/bdev.c {@code spdk_bdev_subsystem_config_json} (bdev_set_options, bdev_examine,
     * bdev_wait_for_examine); module/bdev/nvme, module/bdev/iscsi ({@code *_set_options},
     * bdev_nvme_set_hotplug); module/event/subsystems/iobuf; lib/sock/sock.c
     * {@code spdk_sock_write_config_json}; lib/accel/accel.c {@code spdk_accel_write_config_json}
     * (accel_assign_opc, accel_crypto_key_create) and module/accel/* ({@code *_scan_accel_module});
     * module/event/subsystems/vmd (vmd_enable).
     * The rest SPDK can write is applied ({@link BdevRpc}, {@link VhostRpc}, {@link VhostScsiRpc},
     * framework_set_scheduler here), refused when ignoring it would be silently wrong
     * (bdev_set_qos_limit with a limit), or named in {@link #UNSUPPORTED_SPDK_METHODS}.
     */
    static final List<String> IGNORED_SPDK_SETTINGS = List.of(
            "bdev_set_options", "bdev_wait_for_examine", "bdev_examine", "bdev_nvme_set_options", "bdev_nvme_set_hotplug",
            "bdev_raid_set_options", "bdev_iscsi_set_options", "iobuf_set_options", "sock_set_default_impl",
            "sock_impl_set_options", "accel_set_options", "accel_assign_opc", "accel_crypto_key_create", "vmd_enable",
            // Hardware accel modules (module/accel/*: idxd, crypto and compress builds): jvhost
            // copies on the CPU, which is what SPDK falls back to without them.
            "dsa_scan_accel_module", "iaa_scan_accel_module", "dpdk_cryptodev_scan_accel_module", "dpdk_cryptodev_set_driver",
            "compressdev_scan_accel_module", "mlx5_scan_accel_module");

    /**
     * SPDK methods its save_config can write (or that users call) which jvhost does not have,
     * with the reason, so "Method not found" says why and what to do. They are deliberately not
     * registered: {@code rpc.py load_config} checks every method against {@code rpc_get_methods}
     * before calling any, so a file that needs one fails before anything is created.
     */
    static final Map<String, String> UNSUPPORTED_SPDK_METHODS = unsupported();

    private static Map<String, String> unsupported() {
        Map<String, String> m = new LinkedHashMap<>();
        String bdevs = "jvhost has malloc, null, aio and uring (files, block devices) and rbd (Ceph) bdevs only";
        for (String b : List.of("bdev_nvme_attach_controller", "bdev_nvme_start_discovery", "bdev_nvme_start_mdns_discovery", "bdev_raid_create",
                "bdev_passthru_create", "bdev_split_create", "bdev_delay_create", "bdev_error_create", "bdev_zone_block_create", "bdev_ftl_create",
                "bdev_virtio_attach_controller", "bdev_iscsi_create", "bdev_crypto_create",
                "bdev_compress_create", "bdev_lvol_create", "bdev_lvol_create_lvstore", "bdev_gpt_create", "bdev_xnvme_create", "bdev_daos_create",
                "bdev_pmem_create", "bdev_ocf_create")) {
            m.put(b, bdevs);
        }
        m.put("nbd_start_disk", "jvhost cannot export a bdev as a kernel NBD device; attach it through a vhost controller instead");
        m.put("nbd_stop_disk", "jvhost has no NBD exports");
        m.put("virtio_blk_create_transport", "jvhost serves virtio-blk over vhost-user only (transport vhost_user_blk, always present)");
        m.put("vhost_create_blk_controller_vfio_user", "jvhost serves vhost-user only");
        return Map.copyOf(m);
    }

    /** SPDK's schedulers; jvhost places controllers statically (see framework_set_scheduler). */
    private static final List<String> SPDK_SCHEDULERS = List.of("static", "dynamic", "gscheduler");

    private static final Set<String> warned = ConcurrentHashMap.newKeySet();

    private FrameworkRpc() {}

    static void register(Methods m) {
        m.register("rpc_get_methods", p -> rpcGetMethods(m, p));
        m.register("spdk_get_version", FrameworkRpc::spdkGetVersion);
        m.register("framework_start_init", FrameworkRpc::alreadyInitialized);
        m.register("framework_wait_init", FrameworkRpc::alreadyInitialized);
        m.register("framework_get_subsystems", p -> frameworkGetSubsystems(m, p));
        m.register("framework_get_config", p -> frameworkGetConfig(m, p));
        m.register("framework_get_reactors", p -> frameworkGetReactors(m.target(), p));
        AtomicLong schedulerPeriodUs = new AtomicLong();
        m.register("framework_set_scheduler", p -> frameworkSetScheduler(schedulerPeriodUs, p));
        m.register("framework_get_scheduler", p -> frameworkGetScheduler(schedulerPeriodUs, p));
        m.register("thread_get_stats", p -> threadGetStats(m.target(), p));
        m.register("spdk_kill_instance", p -> spdkKillInstance(m, p));
        m.register("notify_get_types", FrameworkRpc::notifyGetTypes);
        m.register("notify_get_notifications", p -> notifyGetNotifications(m.target(), p));
        LogRpc.register(m);
        for (String name : IGNORED_SPDK_SETTINGS) m.register(name, FrameworkRpc::ignoredSetting);
    }

    private static JsonNode rpcGetMethods(Methods m, Params p) {
        // "current": methods callable now. jvhost has no separate start-up state: all of them.
        p.bool("current", false);
        p.bool("include_aliases", false);
        p.done();
        ArrayNode a = Json.arr();
        for (String n : m.names()) a.add(n);
        return a;
    }

    private static JsonNode spdkGetVersion(Params p) {
        p.done();
        String[] parts = VERSION.split("[.-]", 4);
        ObjectNode r = Json.obj();
        r.put("version", "jvhost v" + VERSION);
        ObjectNode f = r.putObject("fields");
        f.put("major", Integer.parseInt(parts[0]));
        f.put("minor", Integer.parseInt(parts[1]));
        f.put("patch", Integer.parseInt(parts[2]));
        f.put("suffix", parts.length > 3 ? "-" + parts[3] : "");
        return r;
    }

    private static JsonNode alreadyInitialized(Params p) {
        p.done();
        return BooleanNode.TRUE;
    }

    private static JsonNode ignoredSetting(Params p) {
        // Deliberately no p.done(): any parameters are accepted (they are SPDK's to define).
        if (warned.add(p.method())) log.info("{}: SPDK setting without a jvhost equivalent, ignored", p.method());
        return BooleanNode.TRUE;
    }

    private static JsonNode frameworkGetSubsystems(Methods m, Params p) {
        p.done();
        ArrayNode a = Json.arr();
        for (Methods.Subsystem s : m.subsystems()) {
            ObjectNode o = a.addObject();
            o.put("subsystem", s.name());
            ArrayNode d = o.putArray("depends_on");
            s.dependsOn().forEach(d::add);
        }
        return a;
    }

    private static JsonNode frameworkGetConfig(Methods m, Params p) {
        String name = p.string("name");
        p.done();
        for (Methods.Subsystem s : m.subsystems()) {
            if (s.name().equals(name)) return s.config().get();
        }
        throw RpcException.invalidParams("framework_get_config: subsystem '" + name + "' not found (see framework_get_subsystems)");
    }

    /**
     * SPDK's shape: {@code {tick_rate, pid, reactors: [{lcore, busy, idle, in_interrupt,
     * lw_threads: [{name, id, cpumask}]}]}}, busy/idle in nanosecond ticks; a controller's
     * queues run on one reactor, so its lightweight thread is the controller. jvhost adds the
     * loop counters ({@code busy_loops}, {@code idle_loops}, {@code sleeps}, {@code wakeups},
     * {@code pollables}), the {@code idle_strategy} and its health ({@code errors}, {@code dead},
     * {@code death_reason}).
     */
    private static JsonNode frameworkGetReactors(VhostTarget target, Params p) {
        p.done();
        ObjectNode r = Json.obj();
        r.put("tick_rate", io.jvhost.bdev.BdevIoStats.TICK_RATE);
        r.put("pid", ProcessHandle.current().pid());
        ArrayNode reactors = r.putArray("reactors");
        List<Controller> controllers = target.controllers();
        for (Reactor re : target.reactors()) {
            Reactor.Stats s = re.stats();
            ObjectNode o = reactors.addObject();
            o.put("lcore", s.id());
            o.put("busy", s.busyNanos());
            o.put("idle", s.idleNanos());
            // SPDK's interrupt mode sleeps instead of polling; ours polls, then sleeps when idle.
            o.put("in_interrupt", false);
            ArrayNode threads = o.putArray("lw_threads");
            int id = 0;
            for (Controller c : controllers) {
                id++;
                if (c.device().placement().queuesOn(re, c.device().maxQueues()) == 0) continue;
                threads.addObject().put("name", c.name()).put("id", id).put("cpumask", Long.toHexString(1L << re.id()));
            }
            o.put("idle_strategy", re.idleStrategy().sleep() ? "backoff" : "busy");
            o.put("busy_loops", s.busyLoops());
            o.put("idle_loops", s.idleLoops());
            o.put("sleeps", s.sleeps());
            o.put("wakeups", s.wakeups());
            o.put("hybrid_sleeps", re.hybridSleeps()); // section "hybrid wait" of README
            o.put("pollables", s.pollables());
            // Health: errors caught in the loop (a queue failed, the reactor went on); a dead
            // reactor serves nothing and says why.
            o.put("errors", s.errors());
            o.put("dead", s.dead());
            if (s.dead()) o.put("death_reason", s.deathReason());
        }
        return r;
    }

    /**
     * SPDK 23.01 (lib/event/app_rpc.c): {@code name} and an optional {@code period} (µs);
     * scheduler-specific options are decoded leniently there, so any others are accepted here.
     * jvhost's placement is static (a controller stays on the reactor its cpumask chose), which
     * is what SPDK's "static" scheduler does; "dynamic" and "gscheduler" move threads between
     * cores to save power, which jvhost cannot: accepted (so SPDK's files load) with a warning,
     * and {@code framework_get_scheduler} goes on saying "static".
     */
    private static JsonNode frameworkSetScheduler(AtomicLong schedulerPeriodUs, Params p) {
        String name = p.string("name");
        long period = p.integerInRange("period", 0, 0, Long.MAX_VALUE);
        if (!SPDK_SCHEDULERS.contains(name)) {
            throw RpcException.invalidParams("framework_set_scheduler: unknown scheduler '" + name + "' (SPDK has " + String.join(", ", SPDK_SCHEDULERS)
                    + "; jvhost places controllers statically)");
        }
        if (!name.equals("static")) {
            log.warn("framework_set_scheduler: scheduler '{}' is not available in jvhost; controllers stay on the reactors their cpumask chose (static)", name);
        }
        if (period != 0) schedulerPeriodUs.set(period);
        return BooleanNode.TRUE;
    }

    /** SPDK's shape: {@code {scheduler_name, scheduler_period}} (period in µs; 0: never set). */
    private static JsonNode frameworkGetScheduler(AtomicLong schedulerPeriodUs, Params p) {
        p.done();
        return Json.obj().put("scheduler_name", "static").put("scheduler_period", schedulerPeriodUs.get());
    }

    /**
     * SPDK's shape: {@code {tick_rate, threads: [{name, id, cpumask, busy, idle,
     * active_pollers_count, timed_pollers_count, paused_pollers_count}]}}. jvhost's threads are
     * its reactors (SPDK names its reactor threads the same way); each polls its controllers'
     * rings as its active pollers.
     */
    private static JsonNode threadGetStats(VhostTarget target, Params p) {
        p.done();
        ObjectNode r = Json.obj();
        r.put("tick_rate", io.jvhost.bdev.BdevIoStats.TICK_RATE);
        ArrayNode threads = r.putArray("threads");
        for (Reactor re : target.reactors()) {
            Reactor.Stats s = re.stats();
            threads.addObject().put("name", "reactor_" + s.id()).put("id", s.id() + 1)
                    .put("cpumask", Long.toHexString(1L << (re.cpu() >= 0 ? re.cpu() : re.id())))
                    .put("busy", s.busyNanos()).put("idle", s.idleNanos())
                    .put("active_pollers_count", s.pollables()).put("timed_pollers_count", 0).put("paused_pollers_count", 0);
        }
        return r;
    }

    /** SPDK's signals: names or numbers (app_rpc.c {@code rpc_spdk_kill_instance}). */
    private static final Map<String, Integer> SIGNALS = Map.of("SIGINT", 2, "SIGTERM", 15, "SIGQUIT", 3, "SIGHUP", 1, "SIGKILL", 9, "SIGUSR1", 10);

    /**
     * SPDK's {@code spdk_kill_instance}: {@code sig_name} as SIGINT/SIGTERM/SIGQUIT/SIGHUP/SIGKILL/
     * SIGUSR1 or its number. The process's kill handler ({@code jvhost serve}: a graceful
     * shutdown, as on SIGTERM; SIGKILL stops at once) runs after the answer is on its way.
     */
    private static JsonNode spdkKillInstance(Methods m, Params p) {
        String sig = p.string("sig_name");
        p.done();
        String name = null;
        for (var e : SIGNALS.entrySet()) {
            if (e.getKey().equals(sig) || String.valueOf(e.getValue()).equals(sig.strip())) name = e.getKey();
        }
        if (name == null) throw RpcException.invalidParams("spdk_kill_instance: parameter 'sig_name' must be one of " + String.join(", ", new java.util.TreeSet<>(SIGNALS.keySet()))
                + " or its number, got '" + sig + "'");
        java.util.function.Consumer<String> h = m.killHandler();
        if (h == null) throw new RpcException(RpcException.INVALID_STATE, "spdk_kill_instance: this process has no shutdown handler (only jvhost serve can be stopped over RPC)");
        log.info("spdk_kill_instance {}: stopping", name);
        h.accept(name);
        return BooleanNode.TRUE;
    }

    /** SPDK's notification types are the bdev ones (lib/bdev/bdev.c registers them). */
    private static JsonNode notifyGetTypes(Params p) {
        p.done();
        ArrayNode a = Json.arr();
        a.add(io.jvhost.bdev.BdevRegistry.NOTIFY_REGISTER).add(io.jvhost.bdev.BdevRegistry.NOTIFY_UNREGISTER);
        return a;
    }

    /** SPDK's shape: {@code [{type, ctx, id}]} from {@code id} on (default 0), at most {@code max} (0: all). */
    private static JsonNode notifyGetNotifications(VhostTarget target, Params p) {
        long from = p.integerInRange("id", 0, 0, Long.MAX_VALUE);
        long max = p.integerInRange("max", 0, 0, Long.MAX_VALUE);
        p.done();
        ArrayNode a = Json.arr();
        for (var n : target.bdevs().notifications(from, max)) a.addObject().put("type", n.type()).put("ctx", n.ctx()).put("id", n.id());
        return a;
    }
}
