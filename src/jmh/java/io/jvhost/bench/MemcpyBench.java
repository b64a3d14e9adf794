package io.jvhost.bench;

import org.openjdk.jmh.annotations.*;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;
import java.util.concurrent.TimeUnit;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * The malloc bdev's copy: {@code MemorySegment.copy} (Unsafe.copyMemory) against a downcall to
 * the C library's {@code memmove} (glibc's {@code memcpy} and {@code memmove} are the same
 * vectorised code on x86_64; {@code memmove} also tolerates overlap) with
 * {@code Linker.Option.critical(false)} (no thread-state transition), per copy of {@code size}
 * bytes between two native segments of shared arenas (as guest memory and the malloc bdev's
 * mapping are).
 *
 * <ul>
 * <li>{@code segmentCopy}: {@code MemorySegment.copy}.
 * <li>{@code memmoveAddresses}: the downcall with raw addresses as {@code long}s (the caller does
 *     the bounds and liveness checks; nothing keeps the arenas open during the call).
 * <li>{@code memmoveSegments}: the downcall with the segments as {@code ADDRESS} arguments:
 *     the linker keeps both arenas alive for the call (two acquire/release pairs).
 * </ul>
 * {@code spanMiB}: 0 = the same two buffers every time (cache-hot, as a benchmark that rereads
 * one block); 256 = source and destination rotate through 256 MiB each (cache-cold, as a RAM
 * disk read at random offsets is).
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "-Xms1g", "-Xmx1g"})
public class MemcpyBench {
    static final Linker LINKER = Linker.nativeLinker();
    static final MethodHandle MEMMOVE_LONG = LINKER.downcallHandle(LINKER.defaultLookup().find("memmove").orElseThrow(),
            FunctionDescriptor.of(JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG), Linker.Option.critical(false));
    static final MethodHandle MEMMOVE_SEG = LINKER.downcallHandle(LINKER.defaultLookup().find("memmove").orElseThrow(),
            FunctionDescriptor.of(ADDRESS, ADDRESS, ADDRESS, JAVA_LONG), Linker.Option.critical(false));

    @Param({"4096", "131072"})
    int size;

    @Param({"0", "256"})
    int spanMiB;

    Arena a1, a2;
    MemorySegment src, dst;
    long span, pos;

    @Setup(Level.Trial)
    public void setUp() {
        a1 = Arena.ofShared();
        a2 = Arena.ofShared();
        span = Math.max((long) spanMiB << 20, size);
        src = a1.allocate(span, 4096);
        dst = a2.allocate(span, 4096);
        for (long i = 0; i < span; i += 8) src.set(JAVA_LONG, i, i * 0x9E3779B97F4A7C15L);
        dst.fill((byte) 1);
        pos = 0;
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        a1.close();
        a2.close();
    }

    private long next() {
        long p = pos;
        pos += size;
        if (pos + size > span) pos = 0;
        return p;
    }

    @Benchmark
    public void segmentCopy() {
        long p = next();
        MemorySegment.copy(src, p, dst, p, size);
    }

    @Benchmark
    public long memmoveAddresses() throws Throwable {
        long p = next();
        return (long) MEMMOVE_LONG.invokeExact(dst.address() + p, src.address() + p, (long) size);
    }

    @Benchmark
    public MemorySegment memmoveSegments() throws Throwable {
        long p = next();
        return (MemorySegment) MEMMOVE_SEG.invokeExact(dst.asSlice(p, size), src.asSlice(p, size), (long) size);
    }
}
