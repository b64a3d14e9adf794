package io.jvhost.rpc;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.NullNode;
import io.jvhost.bdev.BdevException;
import io.jvhost.sys.NativeException;
import io.jvhost.vhost.VhostTarget;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Supplier;

/**
 * The SPDK-named management methods (SPDK doc/jsonrpc.md), shared by the JSON config loader and
 * the JSON-RPC server: a registry of name → {@link Method}, and of the config subsystems that
 * {@code framework_get_subsystems} / {@code framework_get_config} report for
 * {@code save_config}.
 *
 * <p>Method groups register themselves: {@link FrameworkRpc} ({@code rpc_*}, {@code spdk_*},
 * {@code framework_*}), {@link BdevRpc} ({@code bdev_*}, subsystem {@code bdev}),
 * {@link VhostRpc} ({@code vhost_*}, subsystem {@code vhost_blk}). A new group (virtio-scsi:
 * subsystems {@code scsi} and {@code vhost_scsi}) calls {@link #register} and
 * {@link #registerSubsystem} the same way; see the TODO(scsi) notes in {@link VhostRpc}.
 *
 * <p>Calls run one at a time (like SPDK's single RPC thread): a method sees a consistent target
 * and compound steps (pick a free name, then create) do not race. This lock is control-path
 * only; the data path never takes it. Methods that read data-path state ask the owning reactor
 * ({@code Reactor.call}); everything else uses the target's synchronized control-path methods.
 */
public final class Methods {
    private static final Logger log = LoggerFactory.getLogger(Methods.class);

    @FunctionalInterface
    public interface Method {
        JsonNode call(Params p);
    }

    /**
     * A config subsystem in initialization order: {@code dependsOn} names subsystems registered
     * before it; {@code config} returns the method calls that rebuild its current state (SPDK's
     * {@code framework_get_config} result), or null when it has nothing to save.
     */
    public record Subsystem(String name, List<String> dependsOn, Supplier<JsonNode> config) {}

    private final VhostTarget target;
    private final Map<String, Method> methods = new LinkedHashMap<>();
    private final Map<String, Subsystem> subsystems = new LinkedHashMap<>();
    private final ReentrantLock lock = new ReentrantLock();
    private volatile java.util.function.Consumer<String> killHandler;

    public Methods(VhostTarget target) {
        this.target = target;
        FrameworkRpc.register(this);
        BdevRpc.register(this);
        RbdRpc.register(this);
        VhostRpc.register(this);
        VhostScsiRpc.register(this);
    }

    public VhostTarget target() {
        return target;
    }

    /**
     * What {@code spdk_kill_instance} does with the signal name it was given (SIGTERM, ...):
     * {@code jvhost serve} shuts down. It must return at once (do the work on another thread)
     * so the caller still gets its answer. Null (the default): the method refuses.
     */
    public void setKillHandler(java.util.function.Consumer<String> handler) {
        this.killHandler = handler;
    }

    java.util.function.Consumer<String> killHandler() {
        return killHandler;
    }

    /** Adds or replaces a method. Register everything before the server starts. */
    public synchronized void register(String name, Method m) {
        methods.put(name, m);
    }

    /** Adds a config subsystem after the ones it depends on. */
    public synchronized void registerSubsystem(String name, List<String> dependsOn, Supplier<JsonNode> config) {
        for (String d : dependsOn) {
            if (!subsystems.containsKey(d)) throw new IllegalArgumentException("subsystem " + name + " depends on unknown " + d);
        }
        subsystems.put(name, new Subsystem(name, List.copyOf(dependsOn), config));
    }

    public synchronized Set<String> names() {
        return Collections.unmodifiableSet(new java.util.LinkedHashSet<>(methods.keySet()));
    }

    public synchronized List<Subsystem> subsystems() {
        return new ArrayList<>(subsystems.values());
    }

    /** The current config of every subsystem, as {@code rpc.py save_config} assembles it. */
    public JsonNode saveConfig() {
        var root = Json.obj();
        ArrayNode subs = root.putArray("subsystems");
        for (Subsystem s : subsystems()) {
            var e = subs.addObject();
            e.put("subsystem", s.name());
            e.set("config", call("framework_get_config", Json.obj().put("name", s.name())));
        }
        return root;
    }

    /** Runs {@code method}; every failure comes out as an {@link RpcException} with a clear message. */
    public JsonNode call(String method, JsonNode params) {
        Method m;
        synchronized (this) {
            m = methods.get(method);
        }
        if (m == null) {
            String why = FrameworkRpc.UNSUPPORTED_SPDK_METHODS.get(method);
            throw new RpcException(RpcException.METHOD_NOT_FOUND, "Method not found: " + method
                    + (why != null ? " (an SPDK method jvhost does not implement: " + why + ")" : ""));
        }
        lock.lock();
        try {
            JsonNode r = m.call(new Params(method, params));
            return r == null ? NullNode.getInstance() : r;
        } catch (RpcException e) {
            throw e;
        } catch (BdevException e) {
            int code = switch (e.kind()) {
                case NOT_FOUND -> RpcException.ENODEV;
                case EXISTS -> RpcException.EEXIST;
                case IN_USE -> RpcException.EBUSY;
                case INVALID -> RpcException.INVALID_PARAMS;
            };
            String text = RpcException.errnoText(code);
            throw new RpcException(code, method + ": " + e.getMessage() + (text != null ? " (" + text + ")" : ""));
        } catch (NativeException e) {
            throw new RpcException(-e.errno(), method + ": " + e.getMessage());
        } catch (IllegalArgumentException e) {
            // Domain checks of the devices and the target name the offending value.
            throw RpcException.invalidParams(method + ": " + e.getMessage());
        } catch (RuntimeException e) {
            log.warn("{} failed unexpectedly", method, e);
            throw new RpcException(RpcException.INTERNAL_ERROR, method + ": internal error: " + e);
        } finally {
            lock.unlock();
        }
    }
}
