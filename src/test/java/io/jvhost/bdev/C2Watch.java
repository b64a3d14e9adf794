package io.jvhost.bdev;

import jdk.jfr.consumer.RecordedEvent;
import jdk.jfr.consumer.RecordedMethod;
import jdk.jfr.consumer.RecordedObject;
import jdk.jfr.consumer.RecordingStream;

import javax.management.JMException;
import javax.management.ObjectName;
import java.lang.management.ManagementFactory;
import java.time.Duration;
import java.util.Queue;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.regex.Pattern;

/**
 * Watches HotSpot's compilations (JFR {@code jdk.Compilation} and {@code jdk.CompilerInlining})
 * to tell when one method runs as C2 code: compiled at tier 4 itself, or inlined into a tier-4
 * compilation. Tests of what happens inside HotSpot's copy stub need that: the interpreter
 * copies {@code Unsafe.copyMemory} with C++ code of its own; only C2-compiled callers reach the
 * stub (and its {@code rep movs} under {@code -XX:MaxVectorSize=32}).
 */
public final class C2Watch implements AutoCloseable {
    private final String type;
    private final String method;
    private final RecordingStream stream = new RecordingStream();
    private final Set<Long> tier4 = ConcurrentHashMap.newKeySet();
    private final Set<Long> inlinedInto = ConcurrentHashMap.newKeySet();
    private volatile boolean compiled;
    /** What was seen of the method (for a failure message). */
    private final Queue<String> seen = new ConcurrentLinkedQueue<>();

    /** Watches {@code type.method} ({@code type} as {@link Class#getName()}: nested classes with '$'). */
    public C2Watch(String type, String method) {
        this.type = type;
        this.method = method;
        stream.enable("jdk.Compilation").withThreshold(Duration.ZERO);
        stream.enable("jdk.CompilerInlining");
        stream.onEvent("jdk.Compilation", this::onCompilation);
        stream.onEvent("jdk.CompilerInlining", this::onInlining);
        stream.startAsync();
    }

    private boolean isTarget(RecordedMethod m) {
        return m != null && m.getType().getName().equals(type) && m.getName().equals(method);
    }

    private void onCompilation(RecordedEvent e) {
        if (e.getInt("compileLevel") != 4 || !e.getBoolean("succeded")) return;
        long id = e.getLong("compileId");
        tier4.add(id);
        RecordedMethod m = e.getValue("method");
        if (m != null && m.getName().equals(method) && seen.size() < 50) seen.add("tier4 " + id + " " + m.getType().getName() + "." + m.getName());
        if (isTarget(e.getValue("method")) || inlinedInto.contains(id)) compiled = true;
    }

    private void onInlining(RecordedEvent e) {
        if (!e.getBoolean("succeeded")) return;
        // callee is a struct (type, name, descriptor), not a RecordedMethod
        if (e.getValue("callee") instanceof RecordedObject c && method.equals(c.getString("name")) && seen.size() < 50) {
            seen.add("inlined into " + e.getLong("compileId") + ": " + c.getString("type") + "." + c.getString("name"));
        }
        if (e.getValue("callee") instanceof RecordedObject c && type.equals(c.getString("type").replace('/', '.')) && method.equals(c.getString("name"))) {
            long id = e.getLong("compileId");
            inlinedInto.add(id);
            if (tier4.contains(id)) compiled = true;
        }
    }

    /**
     * True once the method runs as C2 code: a tier-4 compilation of it (or one it was inlined
     * into) seen since this watch started (JFR delivers events about once a second), or a tier-4
     * body of it in the code cache now (diagnostic command {@code Compiler.codelist}: covers a
     * compilation before the watch started, as when an earlier test of the same JVM warmed it up).
     */
    public boolean compiled() {
        if (!compiled && inCodeCache()) compiled = true;
        return compiled;
    }

    private boolean inCodeCache() {
        try {
            String list = (String) ManagementFactory.getPlatformMBeanServer().invoke(
                    new ObjectName("com.sun.management:type=DiagnosticCommand"), "compilerCodelist",
                    new Object[] {new String[0]}, new String[] {String[].class.getName()});
            // lines: "compile_id comp_level state holder.name(signature) [addresses]"; state 0 = in use
            Pattern tier4InUse = Pattern.compile("(?m)^\\d+\\s+4\\s+0\\s+" + Pattern.quote(type + "." + method + "("));
            return tier4InUse.matcher(list).find();
        } catch (JMException e) {
            return false;
        }
    }

    @Override
    public String toString() {
        return "C2Watch(" + type + "." + method + ", seen " + seen + ")";
    }

    @Override
    public void close() {
        stream.close();
    }
}
