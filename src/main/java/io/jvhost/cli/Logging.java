package io.jvhost.cli;

import java.util.Set;

/** Configures slf4j-simple before the first logger is created. */
final class Logging {
    private Logging() {}

    static void configure(String level) {
        String l = level.toLowerCase();
        if (!Set.of("trace", "debug", "info", "warn", "error").contains(l)) {
            throw new picocli.CommandLine.ParameterException(new picocli.CommandLine(new Main()),
                    "unknown log level '" + level + "' (trace, debug, info, warn, error)");
        }
        System.setProperty("org.slf4j.simpleLogger.defaultLogLevel", l);
        // Under systemd (JOURNAL_STREAM is set when stdout/stderr go to the journal) log plainly to
        // stdout: the journal stamps each line itself.
        boolean journal = System.getenv("JOURNAL_STREAM") != null;
        System.setProperty("org.slf4j.simpleLogger.showDateTime", Boolean.toString(!journal));
        System.setProperty("org.slf4j.simpleLogger.dateTimeFormat", "HH:mm:ss.SSS");
        System.setProperty("org.slf4j.simpleLogger.showShortLogName", "true");
        System.setProperty("org.slf4j.simpleLogger.logFile", journal ? "System.out" : "System.err");
    }
}
