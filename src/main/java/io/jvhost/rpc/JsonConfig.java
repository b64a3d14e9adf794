package io.jvhost.rpc;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonLocation;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.StreamReadConstraints;
import com.fasterxml.jackson.core.exc.StreamConstraintsException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Loads an SPDK-shaped JSON config:
 * {@code {"subsystems":[{"subsystem":"bdev","config":[{"method":"...","params":{...}}]}, ...]}}
 * by replaying each entry through {@link Methods} in file order. A bad file fails with the
 * path, the entry and the reason; the caller then discards the half-built target.
 *
 * <p>The file is read up to {@link #MAX_CONFIG_BYTES} (a config is a few KiB; {@code /dev/zero}
 * or a wrong file must not be read forever) and parsed with Jackson's limits (nesting depth
 * {@link #MAX_NESTING}): every failure is one line naming the file and, when known, the line.
 */
public final class JsonConfig {
    private JsonConfig() {}

    /** Thrown for an unreadable or invalid config; the message says where and why. */
    public static final class ConfigException extends Exception {
        public ConfigException(String message) {
            super(message);
        }
    }

    /** Largest config file read (16 MiB). */
    public static final int MAX_CONFIG_BYTES = 16 << 20;
    /** Deepest nesting of arrays/objects accepted (an SPDK config nests 5 deep). */
    public static final int MAX_NESTING = 64;

    private static final ObjectMapper MAPPER = new ObjectMapper(JsonFactory.builder()
            .streamReadConstraints(StreamReadConstraints.builder().maxNestingDepth(MAX_NESTING).build()).build());

    public static int load(Path file, Methods methods) throws ConfigException {
        return apply(file.toString(), parse(file), methods);
    }

    /** Reads and parses {@code file} within the limits; one-line errors. */
    public static JsonNode parse(Path file) throws ConfigException {
        try (InputStream in = Files.newInputStream(file)) {
            return parse(file.toString(), in);
        } catch (java.nio.file.NoSuchFileException e) {
            throw new ConfigException(file + ": cannot read: no such file (check the path; 'jvhost rpc save_config -o FILE' writes one)");
        } catch (java.nio.file.AccessDeniedException e) {
            throw new ConfigException(file + ": cannot read: permission denied (make it readable by this user)");
        } catch (IOException e) {
            throw new ConfigException(file + ": cannot read: " + e.getMessage());
        }
    }

    /** As {@link #parse(Path)} for a stream (standard input); {@code file} names it in errors. */
    public static JsonNode parse(String file, InputStream in) throws ConfigException {
        byte[] bytes;
        try {
            bytes = in.readNBytes(MAX_CONFIG_BYTES + 1);
        } catch (IOException e) {
            throw new ConfigException(file + ": cannot read: " + e.getMessage());
        }
        if (bytes.length > MAX_CONFIG_BYTES) {
            throw new ConfigException(file + ": larger than " + (MAX_CONFIG_BYTES >> 20) + " MiB; not a jvhost/SPDK config");
        }
        try {
            JsonNode root = MAPPER.readTree(bytes);
            if (root == null || root.isMissingNode()) throw new ConfigException(file + ": empty file, expected a JSON object with a \"subsystems\" array");
            return root;
        } catch (StreamConstraintsException e) {
            throw new ConfigException(file + ": not a config: " + firstLine(e.getOriginalMessage()) + where(e));
        } catch (JsonProcessingException e) {
            // FILE:LINE:COLUMN first, as compilers print it, so editors jump there.
            JsonLocation l = e.getLocation();
            String at = l == null || l.getLineNr() < 1 ? file : file + ":" + l.getLineNr() + ":" + l.getColumnNr();
            throw new ConfigException(at + ": not valid JSON: " + withoutSource(firstLine(e.getOriginalMessage())) + where(e) + "; fix the file there");
        } catch (IOException e) {
            throw new ConfigException(file + ": cannot parse: " + e.getMessage());
        }
    }

    private static String where(JsonProcessingException e) {
        JsonLocation l = e.getLocation();
        return l == null || l.getLineNr() < 1 ? "" : " (line " + l.getLineNr() + ", column " + l.getColumnNr() + ")";
    }

    /** Jackson cites other positions as "[Source: ...; line: L, column: C]": keep only "line L, column C". */
    private static String withoutSource(String s) {
        return s.replaceAll("\\[Source: [^\\]]*?; line: (\\d+), column: (\\d+)\\]", "line $1, column $2");
    }

    private static String firstLine(String s) {
        if (s == null) return "unknown error";
        int nl = s.indexOf('\n');
        return nl < 0 ? s : s.substring(0, nl);
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
