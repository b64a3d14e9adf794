package io.jvhost.cli;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;

/** 'jvhost serve' as a process whose output lines a test can wait for (for tests outside the cli package). */
public final class ServeProcess implements AutoCloseable {
    private final Process process;
    private final BlockingQueue<String> lines = new LinkedBlockingQueue<>();
    private final StringBuilder seen = new StringBuilder();

    private ServeProcess(Process p) {
        this.process = p;
        Thread.ofPlatform().daemon().name("serve-output").start(() -> {
            try (BufferedReader r = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
                String l;
                while ((l = r.readLine()) != null) lines.add(l);
            } catch (Exception e) {
                // process gone
            }
        });
    }

    /** Starts serve and returns once it printed its start-up banner. */
    public static ServeProcess start(String... args) throws Exception {
        List<String> a = new ArrayList<>(List.of("serve"));
        a.addAll(List.of(args));
        ServeProcess s = new ServeProcess(ServeCommandTest.jvhost(a.toArray(new String[0])).redirectErrorStream(true).start());
        s.awaitLine(l -> l.startsWith("Stop with"));
        return s;
    }

    /** The next output line matching {@code p} (within 60 s). */
    public String awaitLine(Predicate<String> p) throws InterruptedException {
        long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
        while (System.nanoTime() < deadline) {
            String l = lines.poll(deadline - System.nanoTime(), TimeUnit.NANOSECONDS);
            if (l == null) break;
            seen.append(l).append('\n');
            if (p.test(l)) return l;
        }
        throw new AssertionError("no such line from serve; it printed:\n" + seen);
    }

    @Override
    public void close() throws Exception {
        process.destroy();
        process.waitFor(30, TimeUnit.SECONDS);
    }
}
