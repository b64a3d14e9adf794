package io.jvhost.sys;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/** CPU affinity of the calling thread (sched_setaffinity(2) on thread id 0 = the caller). */
public final class Affinity {
    private Affinity() {}

    /** Pins the calling thread to {@code cpu}; throws {@link NativeException} if the CPU is not usable. */
    public static void pinCurrentThread(int cpu) {
        if (cpu < 0 || cpu >= 1024) throw new IllegalArgumentException("cpu " + cpu + " out of range");
        try (Arena a = Arena.ofConfined()) {
            MemorySegment set = a.allocate(128, 8); // cpu_set_t: 1024 bits
            set.set(ValueLayout.JAVA_LONG, (cpu / 64) * 8L, 1L << (cpu % 64));
            int r = (int) Native.SCHED_SETAFFINITY.invokeExact(Native.capture(), 0, 128L, set);
            if (r < 0) throw Native.fail("sched_setaffinity(cpu " + cpu + ")");
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }
}
