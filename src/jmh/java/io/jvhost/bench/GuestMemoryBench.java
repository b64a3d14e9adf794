package io.jvhost.bench;

import io.jvhost.memory.GuestMemory;
import io.jvhost.memory.MemoryRegion;
import org.openjdk.jmh.annotations.*;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

/**
 * Descriptor address translation: {@link GuestMemory#regionOfGpa} (a linear scan of the region
 * table) with 1, 2 and 8 regions, per lookup. Regions are 1 GiB apart in guest-physical space
 * (QEMU's two-region layout is "below 4 GiB" and "above 4 GiB").
 *
 * <ul>
 * <li>{@code spread}: {@value #LOOKUPS} addresses spread evenly over all regions in random order.
 * <li>{@code lastRegion}: every address in the last region (the scan's worst case).
 * </ul>
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "-Xms1g", "-Xmx1g"})
public class GuestMemoryBench {
    static final int LOOKUPS = 64;
    static final long REGION_BYTES = 1 << 20;
    static final long GPA_STRIDE = 1L << 30;

    @Param({"1", "2", "8"})
    int regions;

    Arena arena;
    GuestMemory memory;
    final long[] spread = new long[LOOKUPS];
    final long[] last = new long[LOOKUPS];

    @Setup(Level.Trial)
    public void setUp() {
        arena = Arena.ofShared();
        List<MemoryRegion> list = new ArrayList<>();
        for (int r = 0; r < regions; r++) {
            MemorySegment s = arena.allocate(REGION_BYTES, 4096);
            list.add(MemoryRegion.ofSegment(r * GPA_STRIDE, s.address(), s));
        }
        memory = new GuestMemory(list);
        SplittableRandom rnd = new SplittableRandom(42);
        for (int i = 0; i < LOOKUPS; i++) {
            spread[i] = (i % regions) * GPA_STRIDE + rnd.nextLong(REGION_BYTES);
            last[i] = (regions - 1) * GPA_STRIDE + rnd.nextLong(REGION_BYTES);
        }
        for (int i = LOOKUPS - 1; i > 0; i--) { // shuffle so the region order is not predictable
            int j = rnd.nextInt(i + 1);
            long t = spread[i]; spread[i] = spread[j]; spread[j] = t;
        }
        for (long g : spread) if (memory.regionOfGpa(g) != (int) (g / GPA_STRIDE)) throw new IllegalStateException("lookup of " + g);
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        arena.close();
    }

    @Benchmark
    @OperationsPerInvocation(LOOKUPS)
    public int spread() {
        GuestMemory m = memory;
        int acc = 0;
        for (long g : spread) acc += m.regionOfGpa(g);
        return acc;
    }

    @Benchmark
    @OperationsPerInvocation(LOOKUPS)
    public int lastRegion() {
        GuestMemory m = memory;
        int acc = 0;
        for (long g : last) acc += m.regionOfGpa(g);
        return acc;
    }
}
