package io.jvhost.bench;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;

import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * {@link MemcpyBench}'s two main candidates timed in alternating blocks in one JVM, for a
 * machine too loaded for JMH's sequential trials: each block does {@code copies} copies with one
 * method, the methods alternate block by block, and the median and minimum per-copy time of
 * each are printed (the minimum is the least disturbed block; the median shows what the load
 * left). Run after {@code bench/jmh.sh -l} has built the classes:
 * <pre>
 * java --enable-native-access=ALL-UNNAMED -cp "target/jmh-classes:target/classes:$(cat target/jmh.classpath)" \
 *     io.jvhost.bench.MemcpyInterleaved [blocks [sizes,... [spanMiB,...]]]
 * </pre>
 */
public final class MemcpyInterleaved {
    public static void main(String[] args) throws Throwable {
        int blocks = args.length > 0 ? Integer.parseInt(args[0]) : 400;
        int[] sizes = args.length > 1 ? Arrays.stream(args[1].split(",")).mapToInt(Integer::parseInt).toArray() : new int[] {4096, 131072};
        int[] spans = args.length > 2 ? Arrays.stream(args[2].split(",")).mapToInt(Integer::parseInt).toArray() : new int[] {0, 256};
        System.out.println("size_bytes span_MiB method median_ns min_ns median_GBps");
        for (int size : sizes) {
            for (int spanMiB : spans) {
                try (Arena a = Arena.ofShared(); Arena b = Arena.ofShared()) {
                    long span = Math.max((long) spanMiB << 20, size);
                    MemorySegment src = a.allocate(span, 4096), dst = b.allocate(span, 4096);
                    for (long i = 0; i < span; i += 8) src.set(JAVA_LONG, i, i);
                    dst.fill((byte) 1);
                    int copies = (int) Math.max(16, (4L << 20) / size); // ~4 MiB per block
                    long[][] t = new long[2][blocks];
                    long pos = 0;
                    for (int w = 0; w < blocks / 4; w++) { // warm-up (JIT)
                        pos = run(0, src, dst, size, span, copies, pos);
                        pos = run(1, src, dst, size, span, copies, pos);
                    }
                    for (int k = 0; k < blocks; k++) {
                        for (int m0 = 0; m0 < 2; m0++) {
                            int m = (k & 1) == 0 ? m0 : 1 - m0;
                            long t0 = System.nanoTime();
                            pos = run(m, src, dst, size, span, copies, pos);
                            t[m][k] = (System.nanoTime() - t0) / copies;
                        }
                    }
                    for (int m = 0; m < 2; m++) {
                        long[] s = t[m].clone();
                        Arrays.sort(s);
                        long med = s[s.length / 2];
                        System.out.printf("%d %d %s %d %d %.1f%n", size, spanMiB, m == 0 ? "MemorySegment.copy" : "memmove-downcall",
                                med, s[0], size / (double) med);
                    }
                }
            }
        }
    }

    private static long run(int method, MemorySegment src, MemorySegment dst, int size, long span, int copies, long pos) throws Throwable {
        for (int i = 0; i < copies; i++) {
            if (method == 0) MemorySegment.copy(src, pos, dst, pos, size);
            else { long r = (long) MemcpyBench.MEMMOVE_LONG.invokeExact(dst.address() + pos, src.address() + pos, (long) size); }
            pos += size;
            if (pos + size > span) pos = 0;
        }
        return pos;
    }
}
