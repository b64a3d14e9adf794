package io.jvhost.vhost;

import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * What the fuzz harnesses ({@link SessionFuzzTest}, {@link QueueRequestFuzzTest}) treat as a
 * finding besides an exception escaping the target: a thread that dies of an uncaught exception
 * (a reactor), and any ERROR line the target logs (the session's "unexpected error" catch-all, a
 * reactor's "unexpected error in poll loop", a stop that did not complete). Errors are recorded
 * from any thread and turned into an {@link AssertionError} on the fuzzing thread by {@link #check()}.
 *
 * <p>Vanishing guest memory (a front-end truncating its memfd under live rings, issue 15 item 1)
 * is off by default until the reactor's SIGBUS containment is merged; turn it on with
 * {@code -Djvhost.fuzz.vanishingMemory=true} (scripts/fuzz.sh --vanish) or by flipping the
 * default below.
 */
final class FuzzOracle {
    /** Truncate guest memory under the target while it runs. The one line to flip once SIGBUS is contained. */
    static final boolean VANISHING_MEMORY = Boolean.parseBoolean(System.getProperty("jvhost.fuzz.vanishingMemory", "false"));

    /**
     * Let the front-end hang up while replies are still owed (and send messages whose size field
     * lies, which leaves replies owed at hang-up too). Off by default: the session then
     * fails its reply with EPIPE and logs it as an unexpected error with a stack trace (a known
     * finding, see SessionFuzzTest#hangUpWithReplyOwed), which would stop every fuzzing run.
     */
    static final boolean HANG_UP_WITH_REPLIES_OWED = Boolean.parseBoolean(System.getProperty("jvhost.fuzz.hangUpWithRepliesOwed", "false"));

    private static final List<String> findings = new ArrayList<>();
    private static boolean installed;

    private FuzzOracle() {}

    /**
     * Installs the uncaught-exception handler and the stderr watch (once per JVM) and forgets
     * anything recorded before (other test classes in the same JVM log errors on purpose).
     */
    static synchronized void install() {
        findings.clear();
        if (installed) return;
        installed = true;
        Thread.setDefaultUncaughtExceptionHandler((t, e) -> {
            record("thread " + t.getName() + " died: " + e);
            e.printStackTrace();
        });
        // slf4j-simple looks System.err up on every write, so this sees every log line.
        PrintStream original = System.err;
        System.setErr(new PrintStream(new LineWatch(original), true, StandardCharsets.UTF_8));
    }

    static synchronized void record(String what) {
        if (findings.size() < 20) findings.add(what);
    }

    /** Throws if anything was recorded since the last call. Fuzzing thread. */
    static void check() {
        String msg;
        synchronized (FuzzOracle.class) {
            if (findings.isEmpty()) return;
            msg = String.join("\n", findings);
            findings.clear();
        }
        throw new AssertionError("target misbehaved:\n" + msg);
    }

    /**
     * Prints and appends to {@code target/fuzz-stats.txt} how many inputs a harness ran (libFuzzer's
     * own summary does not always reach the surefire report); scripts/fuzz.sh sums these lines.
     */
    static void report(String harness, long inputs, long startNanos) {
        double secs = (System.nanoTime() - startNanos) / 1e9;
        String line = String.format("FUZZ-STATS harness=%s mode=%s vanishing=%s inputs=%d seconds=%.0f rate=%.0f/s%n", harness,
                System.getenv("JAZZER_FUZZ") != null && !System.getenv("JAZZER_FUZZ").isEmpty() ? "fuzzing" : "regression",
                VANISHING_MEMORY, inputs, secs, inputs / Math.max(secs, 1e-3));
        System.out.print(line);
        try {
            java.nio.file.Files.writeString(java.nio.file.Path.of(System.getProperty("jvhost.fuzz.statsFile", "target/fuzz-stats.txt")), line,
                    java.nio.file.StandardOpenOption.CREATE, java.nio.file.StandardOpenOption.APPEND);
        } catch (java.io.IOException e) {
            System.out.println("cannot write fuzz stats: " + e);
        }
    }

    /** Passes bytes through and records lines that show an error level log or a dead thread. */
    private static final class LineWatch extends OutputStream {
        private final PrintStream out;
        private final StringBuilder line = new StringBuilder();

        LineWatch(PrintStream out) {
            this.out = out;
        }

        @Override
        public synchronized void write(int b) {
            out.write(b);
            if (b == '\n') {
                String l = line.toString();
                line.setLength(0);
                if ((l.contains(" ERROR io.jvhost") && !l.contains("accept failed")) || l.startsWith("Exception in thread")) record(l);
            } else if (line.length() < 400) {
                line.append((char) b);
            }
        }

        @Override
        public synchronized void write(byte[] b, int off, int len) {
            for (int i = 0; i < len; i++) write(b[off + i]);
        }

        @Override
        public void flush() {
            out.flush();
        }
    }
}
