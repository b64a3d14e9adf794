package io.jvhost.rpc;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.BooleanNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.databind.node.TextNode;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * SPDK's log methods (lib/event/log_rpc.c) over jvhost's SLF4J logging.
 *
 * <p>SPDK's log flags are its components' debug switches; jvhost's components are its packages,
 * so a flag is "debug logging is on for that package's loggers". SPDK's print levels map onto
 * SLF4J's: ERROR → error, WARNING → warn, NOTICE and INFO → info, DEBUG → debug (and trace).
 *
 * <p>The back-end (slf4j-simple, set up by {@code cli.Logging} from {@code serve --log-level})
 * fixes levels when the process starts. So the getters report the truth, and the setters
 * succeed when the requested state is already in force and otherwise refuse, saying how to
 * start jvhost to get it, rather than answer "true" and change nothing.
 */
final class LogRpc {
    /** SPDK-style flag name → the jvhost package it covers. */
    static final Map<String, String> FLAGS = flags();

    private static Map<String, String> flags() {
        Map<String, String> m = new LinkedHashMap<>();
        m.put("bdev", "io.jvhost.bdev");
        m.put("memory", "io.jvhost.memory");
        m.put("reactor", "io.jvhost.runtime");
        m.put("rpc", "io.jvhost.rpc");
        m.put("scsi", "io.jvhost.scsi");
        m.put("sys", "io.jvhost.sys");
        m.put("vhost", "io.jvhost.vhost");
        m.put("vhost_user", "io.jvhost.vhostuser");
        m.put("virtio", "io.jvhost.virtio");
        return m;
    }

    private LogRpc() {}

    static void register(Methods m) {
        m.register("log_get_flags", LogRpc::logGetFlags);
        m.register("log_set_flag", p -> logSetFlag(p, true));
        m.register("log_clear_flag", p -> logSetFlag(p, false));
        m.register("log_get_print_level", LogRpc::logGetPrintLevel);
        m.register("log_set_print_level", LogRpc::logSetPrintLevel);
    }

    private static boolean debugOn(String flag) {
        return LoggerFactory.getLogger(FLAGS.get(flag)).isDebugEnabled();
    }

    /** SPDK's shape: {@code {flag: enabled, ...}}. */
    private static JsonNode logGetFlags(Params p) {
        p.done();
        ObjectNode o = Json.obj();
        for (String f : FLAGS.keySet()) o.put(f, debugOn(f));
        return o;
    }

    private static JsonNode logSetFlag(Params p, boolean on) {
        String flag = p.string("flag");
        p.done();
        if (!flag.equals("all") && !FLAGS.containsKey(flag)) {
            throw RpcException.invalidParams(p.method() + ": unknown flag '" + flag + "' (jvhost's flags: all, " + String.join(", ", FLAGS.keySet()) + ")");
        }
        boolean already = true;
        for (String f : FLAGS.keySet()) {
            if ((flag.equals("all") || flag.equals(f)) && debugOn(f) != on) already = false;
        }
        if (already) return BooleanNode.TRUE;
        String pkg = flag.equals("all") ? "io.jvhost" : FLAGS.get(flag);
        throw new RpcException(RpcException.INVALID_STATE, p.method() + ": jvhost's logging fixes levels at start-up, so debug logging for '" + flag
                + "' cannot be switched " + (on ? "on" : "off") + " while running; restart with -Dorg.slf4j.simpleLogger.log." + pkg + "="
                + (on ? "debug" : "info") + " (or serve --log-level " + (on ? "debug" : "info") + ")");
    }

    /** The level jvhost's own loggers print at, in SPDK's names. */
    static String printLevel() {
        Logger l = LoggerFactory.getLogger("io.jvhost");
        if (l.isDebugEnabled()) return "DEBUG";
        if (l.isInfoEnabled()) return "INFO";
        if (l.isWarnEnabled()) return "WARNING";
        return "ERROR";
    }

    private static JsonNode logGetPrintLevel(Params p) {
        p.done();
        return TextNode.valueOf(printLevel());
    }

    private static JsonNode logSetPrintLevel(Params p) {
        String level = p.string("level").toUpperCase(java.util.Locale.ROOT);
        p.done();
        String slf4j = switch (level) {
            case "ERROR" -> "error";
            case "WARNING" -> "warn";
            case "NOTICE", "INFO" -> "info";
            case "DEBUG" -> "debug";
            default -> throw RpcException.invalidParams("log_set_print_level: parameter 'level' must be ERROR, WARNING, NOTICE, INFO or DEBUG, got '"
                    + p.string("level") + "'");
        };
        String wanted = level.equals("NOTICE") ? "INFO" : level;
        if (wanted.equals(printLevel())) return BooleanNode.TRUE;
        throw new RpcException(RpcException.INVALID_STATE, "log_set_print_level: jvhost's logging fixes the level at start-up (now " + printLevel()
                + "); restart with serve --log-level " + slf4j + " to print at " + level);
    }
}
