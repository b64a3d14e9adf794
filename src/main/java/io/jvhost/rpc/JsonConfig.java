package io.jvhost.rpc;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Loads an SPDK-shaped JSON config:
 * {@code {"subsystems":[{"subsystem":"bdev","config":[{"method":"...","params":{...}}]}, ...]}}
 * by replaying each entry through {@link Methods} in file order. A bad file fails with the
 * path, the entry and the reason; the caller then discards the half-built target.
 */
public final class JsonConfig {
    private JsonConfig() {}

    /** Thrown for an unreadable or invalid config; the message says where and why. */
    public static final class ConfigException extends Exception {
        public ConfigException(String message) {
            super(message);
        }
    }

    public static int load(Path file, Methods methods) throws ConfigException {
        JsonNode root;
        try {
            root = new ObjectMapper().readTree(Files.readString(file));
        } catch (JsonProcessingException e) {
            throw new ConfigException(file + ": not valid JSON: " + e.getOriginalMessage() + " (line " + e.getLocation().getLineNr() + ")");
        } catch (IOException e) {
            throw new ConfigException(file + ": cannot read: " + e.getMessage());
        }
        return apply(file.toString(), root, methods);
    }

    public static int apply(String where, JsonNode root, Methods methods) throws ConfigException {
        if (root == null || !root.isObject() || !root.has("subsystems") || !root.get("subsystems").isArray()) {
            throw new ConfigException(where + ": expected an object with a \"subsystems\" array");
        }
        int applied = 0;
        int si = 0;
        for (JsonNode sub : root.get("subsystems")) {
            String subName = sub.path("subsystem").asText("#" + si);
            if (!sub.isObject() || !sub.has("subsystem")) {
                throw new ConfigException(where + ": subsystems[" + si + "] has no \"subsystem\" name");
            }
            JsonNode config = sub.get("config");
            if (config == null || config.isNull()) {
                si++;
                continue;
            }
            if (!config.isArray()) throw new ConfigException(where + ": subsystem " + subName + ": \"config\" must be an array");
            int ei = 0;
            for (JsonNode entry : config) {
                String at = where + ": subsystem " + subName + ", config[" + ei + "]";
                if (!entry.isObject() || !entry.path("method").isTextual()) {
                    throw new ConfigException(at + ": entry needs a \"method\" string");
                }
                String method = entry.get("method").asText();
                try {
                    methods.call(method, entry.get("params"));
                } catch (RpcException e) {
                    throw new ConfigException(at + " (" + method + "): " + e.getMessage());
                }
                applied++;
                ei++;
            }
            si++;
        }
        return applied;
    }
}
