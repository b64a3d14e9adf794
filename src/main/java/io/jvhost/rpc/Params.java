package io.jvhost.rpc;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.NullNode;

import java.util.HashSet;
import java.util.Iterator;
import java.util.Set;
import java.util.UUID;

/**
 * Typed access to a method's {@code params} object with errors that name the field. Each
 * method reads its fields and then calls {@link #done()}, which rejects unknown fields (as SPDK's
 * strict JSON decoders do) so a typo is an error, not a silent default.
 */
public final class Params {
    private final String method;
    private final JsonNode node;
    private final Set<String> seen = new HashSet<>();

    public Params(String method, JsonNode node) {
        this.method = method;
        if (node == null || node instanceof NullNode || node.isMissingNode()) {
            this.node = com.fasterxml.jackson.databind.node.JsonNodeFactory.instance.objectNode();
        } else if (!node.isObject()) {
            throw RpcException.invalidParams(method + ": params must be a JSON object");
        } else {
            this.node = node;
        }
    }

    private JsonNode field(String name, boolean required) {
        seen.add(name);
        JsonNode v = node.get(name);
        if (v == null || v.isNull()) {
            if (required) throw RpcException.invalidParams(method + ": missing required parameter '" + name + "'");
            return null;
        }
        return v;
    }

    public String string(String name) {
        JsonNode v = field(name, true);
        if (!v.isTextual()) throw RpcException.invalidParams(method + ": parameter '" + name + "' must be a string");
        return v.asText();
    }

    public String string(String name, String dflt) {
        JsonNode v = field(name, false);
        if (v == null) return dflt;
        if (!v.isTextual()) throw RpcException.invalidParams(method + ": parameter '" + name + "' must be a string");
        return v.asText();
    }

    public long integer(String name) {
        JsonNode v = field(name, true);
        return asLong(name, v);
    }

    public long integer(String name, long dflt) {
        JsonNode v = field(name, false);
        return v == null ? dflt : asLong(name, v);
    }

    private long asLong(String name, JsonNode v) {
        if (!v.isIntegralNumber()) throw RpcException.invalidParams(method + ": parameter '" + name + "' must be an integer");
        if (!v.canConvertToLong()) throw RpcException.invalidParams(method + ": parameter '" + name + "' is out of range: " + v);
        return v.asLong();
    }

    public int intInRange(String name, long dflt, long min, long max) {
        long v = integer(name, dflt);
        if (v < min || v > max) throw RpcException.invalidParams(method + ": parameter '" + name + "' must be in " + min + ".." + max + ", got " + v);
        return (int) v;
    }

    /** A JSON integer in {@code min..max} (SPDK's uint32/int32 decoders); required. */
    public long integerInRange(String name, long min, long max) {
        long v = integer(name);
        if (v < min || v > max) throw RpcException.invalidParams(method + ": parameter '" + name + "' must be in " + min + ".." + max + ", got " + v);
        return v;
    }

    /** An optional JSON integer in {@code min..max}. */
    public long integerInRange(String name, long dflt, long min, long max) {
        long v = integer(name, dflt);
        if (v < min || v > max) throw RpcException.invalidParams(method + ": parameter '" + name + "' must be in " + min + ".." + max + ", got " + v);
        return v;
    }

    /** SPDK's uint32 parameters. */
    public long uint32(String name) {
        return integerInRange(name, 0, 0xffff_ffffL);
    }

    public String method() {
        return method;
    }

    public boolean bool(String name, boolean dflt) {
        JsonNode v = field(name, false);
        if (v == null) return dflt;
        if (!v.isBoolean()) throw RpcException.invalidParams(method + ": parameter '" + name + "' must be true or false");
        return v.asBoolean();
    }

    public UUID uuid(String name) {
        String s = string(name, null);
        if (s == null) return null;
        try {
            return UUID.fromString(s);
        } catch (IllegalArgumentException e) {
            throw RpcException.invalidParams(method + ": parameter '" + name + "' is not a UUID: " + s);
        }
    }

    /** Rejects any parameter the method did not read. */
    public void done() {
        for (Iterator<String> it = node.fieldNames(); it.hasNext(); ) {
            String f = it.next();
            if (!seen.contains(f)) throw RpcException.invalidParams(method + ": unknown parameter '" + f + "'");
        }
    }

    /**
     * An optional JSON object whose values are all strings (SPDK's config maps such as
     * {@code bdev_rbd_create}'s {@code config}), in the given order; null when absent.
     */
    public java.util.Map<String, String> stringMap(String name) {
        JsonNode v = field(name, false);
        if (v == null) return null;
        if (!v.isObject()) throw RpcException.invalidParams(method + ": parameter '" + name + "' must be an object of strings");
        java.util.Map<String, String> m = new java.util.LinkedHashMap<>();
        for (var it = v.properties().iterator(); it.hasNext(); ) {
            var e = it.next();
            if (!e.getValue().isTextual()) {
                throw RpcException.invalidParams(method + ": parameter '" + name + "': value of '" + e.getKey() + "' must be a string");
            }
            m.put(e.getKey(), e.getValue().asText());
        }
        return m;
    }
}
