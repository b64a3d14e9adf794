package io.jvhost.rpc;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.BooleanNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.jvhost.runtime.Reactor;
import io.jvhost.target.Controller;
import io.jvhost.target.VhostTarget;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

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
     * SPDK tuning methods that a config saved by SPDK itself contains but that have no jvhost
     * equivalent (buffer pools, socket and accel options, examine). They are accepted with any
     * parameters and ignored with a log line, so SPDK's config files load unchanged.
     */
    static final List<String> IGNORED_SPDK_SETTINGS = List.of(
            "bdev_set_options", "bdev_wait_for_examine", "bdev_examine", "bdev_nvme_set_options", "bdev_nvme_set_hotplug",
            "bdev_raid_set_options", "bdev_iscsi_set_options", "iobuf_set_options", "sock_set_default_impl",
            "sock_impl_set_options", "accel_set_options");

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
                if (c.device().reactor() != re) continue;
                threads.addObject().put("name", c.name()).put("id", id).put("cpumask", Long.toHexString(1L << re.id()));
            }
            o.put("idle_strategy", re.idleStrategy().sleep() ? "backoff" : "busy");
            o.put("busy_loops", s.busyLoops());
            o.put("idle_loops", s.idleLoops());
            o.put("sleeps", s.sleeps());
            o.put("wakeups", s.wakeups());
            o.put("pollables", s.pollables());
            // Health: errors caught in the loop (a queue failed, the reactor went on); a dead
            // reactor serves nothing and says why.
            o.put("errors", s.errors());
            o.put("dead", s.dead());
            if (s.dead()) o.put("death_reason", s.deathReason());
        }
        return r;
    }
}
