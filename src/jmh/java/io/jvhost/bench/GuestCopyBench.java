package io.jvhost.bench;

import io.jvhost.sys.Fd;
import io.jvhost.sys.MemFd;
import io.jvhost.sys.Mmap;
import org.openjdk.jmh.annotations.*;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static java.lang.foreign.ValueLayout.JAVA_LONG_UNALIGNED;

/**
 * The malloc bdev's guest-data copy in its real setting, variant by variant (issue 10, "the copy
 * path at memcpy speed"). One operation is one copy of {@code size} bytes, as one read request
 * of that size is:
 *
 * <ul>
 * <li>source: a 1 GiB RAM disk as the malloc bdev maps it ({@link Mmap#anonymous}: private,
 *     2 MiB-aligned, {@code MADV_HUGEPAGE}), written end to end at setup so every page exists;
 * <li>destination: "guest memory" as a hugepage front-end gives it, a shared mapping of a
 *     {@code MFD_HUGETLB} memfd, with 32 request buffers of {@code size} bytes used in turn
 *     (QD32: 32 × 128 KiB = 4 MiB);
 * <li>{@code pattern = random}: source at a random {@code size}-aligned offset of the disk
 *     (offsets drawn at setup), destination rotating through the 32 buffers;
 *     {@code pattern = seq}: the same with the source moving on block by block (bdevperf's
 *     {@code -w read}; the hardware prefetchers see a stream);
 *     {@code pattern = hot}: the same source block and destination buffer every time (both
 *     cache-resident: the copy routine alone).
 * </ul>
 *
 * Variants (methods; the nested classes are the same copy in forks with other JVM flags):
 * {@code segmentCopy} ({@code MemorySegment.copy}, what the bdev does), {@code longLoop} (a plain
 * loop of 8-byte loads and stores, whatever C2 makes of it), {@code chunked2k} / {@code chunked16k}
 * ({@code MemorySegment.copy} in pieces: below 4 KiB the stub takes its 32-byte loop, from 4 KiB
 * its 64-byte one), {@code memmove} (a critical downcall to glibc: reference only, a fault in C
 * kills the process). Run with {@code bench/guest-copy.sh}.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 2, time = 1)
@Measurement(iterations = 3, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "-Xms512m", "-Xmx512m"})
public class GuestCopyBench {
    static final long DISK = 1L << 30;
    static final int SLOTS = 32;
    static final long GUEST = 4L << 20;   // QD32 × 128 KiB, two 2 MiB hugetlb pages
    static final int OFFSETS = 1 << 14;   // random source offsets drawn at setup

    @Param({"4096", "131072"})
    int size;

    @Param({"random", "seq", "hot"})
    String pattern;

    Mmap disk, guestMap;
    int guestFd = -1;
    MemorySegment src, dst;
    long[] srcOffsets;
    int i;

    @Setup(Level.Trial)
    public void setUp() throws IOException {
        disk = Mmap.anonymous(DISK);
        src = disk.segment();
        for (long p = 0; p < DISK; p += 4096) src.set(JAVA_LONG, p, p | 1); // every page backed
        guestFd = MemFd.createHugetlb("guest-copy-bench", GUEST);
        guestMap = Mmap.map(guestFd, 0, GUEST, true);
        dst = guestMap.segment();
        dst.fill((byte) 1);
        srcOffsets = new long[OFFSETS];
        SplittableRandom r = new SplittableRandom(42);
        for (int k = 0; k < OFFSETS; k++) srcOffsets[k] = srcOffset(pattern, k, size, r);
        System.err.println("[guest-copy] " + Files.readAllLines(Path.of("/proc/self/smaps_rollup")).stream()
                .filter(l -> l.startsWith("AnonHugePages") || l.startsWith("Private_Hugetlb") || l.startsWith("Shared_Hugetlb"))
                .map(l -> l.replaceAll("\\s+", " ")).toList());
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        guestMap.close();
        Fd.closeQuietly(guestFd);
        disk.close();
    }

    /** The {@code k}-th source offset of {@code pattern}. */
    static long srcOffset(String pattern, long k, int size, SplittableRandom r) {
        return switch (pattern) {
            case "hot" -> 0;
            case "seq" -> k * size % DISK;
            default -> r.nextLong(DISK / size) * size;
        };
    }

    /** Source offset of this copy. */
    long srcOff() {
        return srcOffsets[i & (OFFSETS - 1)];
    }

    /** Destination offset of this copy; advances to the next request. */
    long dstOff() {
        int k = i++;
        return pattern.equals("hot") ? 0 : (long) (k & (SLOTS - 1)) * size;
    }

    @Benchmark
    public void segmentCopy() {
        long s = srcOff();
        segmentCopy(src, s, dst, dstOff(), size);
    }

    @Benchmark
    public void longLoop() {
        long s = srcOff();
        longLoop(src, s, dst, dstOff(), size);
    }

    @Benchmark
    public void chunked2k() {
        long s = srcOff();
        chunked(src, s, dst, dstOff(), size, 2048);
    }

    @Benchmark
    public void chunked16k() {
        long s = srcOff();
        chunked(src, s, dst, dstOff(), size, 16384);
    }

    @Benchmark
    public long memmove() throws Throwable {
        long s = srcOff();
        return memmove(src, s, dst, dstOff(), size);
    }

    // The variants themselves (also run by GuestCopyInterleaved).

    static void segmentCopy(MemorySegment src, long s, MemorySegment dst, long d, int size) {
        MemorySegment.copy(src, s, dst, d, size);
    }

    static void longLoop(MemorySegment src, long s, MemorySegment dst, long d, int size) {
        for (long k = 0; k < size; k += 8) dst.set(JAVA_LONG_UNALIGNED, d + k, src.get(JAVA_LONG_UNALIGNED, s + k));
    }

    static void chunked(MemorySegment src, long s, MemorySegment dst, long d, int size, int piece) {
        for (long k = 0; k < size; k += piece) MemorySegment.copy(src, s + k, dst, d + k, Math.min(piece, size - k));
    }

    static long memmove(MemorySegment src, long s, MemorySegment dst, long d, int size) throws Throwable {
        return (long) MemcpyBench.MEMMOVE_LONG.invokeExact(dst.address() + d, src.address() + s, (long) size);
    }

    /** {@code -XX:MaxVectorSize=32}: HotSpot's copy stub uses {@code rep movs} from 4 KiB on. */
    @Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "-Xms512m", "-Xmx512m", "-XX:MaxVectorSize=32"})
    public static class MaxVector32 extends GuestCopyBench {
    }

    /** {@code -XX:AVX3Threshold=0}: 64-byte (ZMM) vectors for all sizes, not only from 4 KiB. */
    @Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "-Xms512m", "-Xmx512m",
            "-XX:+UnlockDiagnosticVMOptions", "-XX:AVX3Threshold=0"})
    public static class Avx3Threshold0 extends GuestCopyBench {
    }

    /** {@code -XX:UseAVX=2}: the AVX2 stubs (32-byte loop, no masked AVX-512 moves). */
    @Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "-Xms512m", "-Xmx512m", "-XX:UseAVX=2"})
    public static class UseAvx2 extends GuestCopyBench {
    }
}
