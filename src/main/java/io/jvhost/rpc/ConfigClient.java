package io.jvhost.rpc;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.util.HashSet;
import java.util.Set;

/**
 * The client side of SPDK's config flow, as {@code rpc.py save_config} / {@code load_config} do
 * it: save asks {@code framework_get_subsystems} and then {@code framework_get_config} for each;
 * load checks that every method is known ({@code rpc_get_methods}), replays the entries in file
 * order and finishes with {@code framework_start_init}. Works against SPDK as well.
 */
public final class ConfigClient {
    private ConfigClient() {}

    public static JsonNode save(RpcClient c) throws IOException {
        ObjectNode root = Json.obj();
        ArrayNode subs = root.putArray("subsystems");
        for (JsonNode s : c.call("framework_get_subsystems", null)) {
            String name = s.path("subsystem").asText();
            ObjectNode e = subs.addObject();
            e.put("subsystem", name);
            e.set("config", c.call("framework_get_config", Json.obj().put("name", name)));
        }
        return root;
    }

    /**
     * Replays {@code config} on the server; returns the number of entries applied. A failure
     * says where ({@code where}: the file), which entry and why; entries before it stay applied
     * (as with SPDK).
     */
    public static int load(RpcClient c, JsonNode config, String where) throws IOException, JsonConfig.ConfigException {
        JsonNode subsystems = config == null ? null : config.get("subsystems");
        if (subsystems == null || !subsystems.isArray()) throw new JsonConfig.ConfigException(where + ": expected an object with a \"subsystems\" array");
        Set<String> known = new HashSet<>();
        for (JsonNode n : c.call("rpc_get_methods", null)) known.add(n.asText());
        // Check everything before changing anything.
        int si = 0;
        for (JsonNode sub : subsystems) {
            JsonNode cfg = sub.get("config");
            if (cfg != null && !cfg.isNull()) {
                if (!cfg.isArray()) throw new JsonConfig.ConfigException(where + ": subsystem " + sub.path("subsystem").asText("#" + si) + ": \"config\" must be an array");
                int ei = 0;
                for (JsonNode e : cfg) {
                    String at = where + ": subsystem " + sub.path("subsystem").asText("#" + si) + ", config[" + ei++ + "]";
                    if (!e.path("method").isTextual()) throw new JsonConfig.ConfigException(at + ": entry needs a \"method\" string");
                    if (!known.contains(e.get("method").asText())) {
                        throw new JsonConfig.ConfigException(at + ": the server does not know method " + e.get("method").asText());
                    }
                }
            }
            si++;
        }
        int applied = 0;
        si = 0;
        for (JsonNode sub : subsystems) {
            JsonNode cfg = sub.get("config");
            int ei = 0;
            if (cfg != null && cfg.isArray()) {
                for (JsonNode e : cfg) {
                    String method = e.get("method").asText();
                    try {
                        c.call(method, e.get("params"));
                    } catch (RpcException x) {
                        throw new JsonConfig.ConfigException(where + ": subsystem " + sub.path("subsystem").asText("#" + si) + ", config[" + ei + "] ("
                                + method + "): " + x.getMessage() + " (code " + x.code() + ")");
                    }
                    applied++;
                    ei++;
                }
            }
            si++;
        }
        if (known.contains("framework_start_init")) c.call("framework_start_init", null);
        return applied;
    }
}
