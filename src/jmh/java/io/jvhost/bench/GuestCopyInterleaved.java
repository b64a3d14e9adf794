package io.jvhost.bench;

import io.jvhost.sys.MemFd;
import io.jvhost.sys.Mmap;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * {@link GuestCopyBench}'s variants timed in alternating blocks, for a machine too loaded for
 * JMH's one-after-the-other trials, JVM flags included: one worker JVM per flag set (each with
 * its own 1 GiB {@code MADV_HUGEPAGE} disk and 4 MiB hugetlb "guest"), driven over
 * stdin/stdout; per round every variant runs one block (~16 MiB of copies, timed inside the
 * worker), the order rotating by round. Prints per size and pattern the median and minimum ns
 * per copy of each variant and the median of the per-round ratios against
 * {@code MemorySegment.copy} with default flags. Run after {@code bench/jmh.sh -l}:
 * <pre>
 * taskset -c 1 java -cp "target/jmh-classes:target/classes:$(cat target/jmh.classpath)" \
 *     io.jvhost.bench.GuestCopyInterleaved [rounds [sizes [patterns]]]
 * </pre>
 * (the workers inherit the CPU affinity).
 */
public final class GuestCopyInterleaved {
    /** A variant: a label, the worker's JVM flags and the copy method. */
    record Variant(String label, String flags, String method) {}

    static final List<Variant> VARIANTS = List.of(
            new Variant("segmentCopy", "", "segmentCopy"),
            new Variant("segmentCopy MaxVectorSize=32", "-XX:MaxVectorSize=32", "segmentCopy"),
            new Variant("segmentCopy AVX3Threshold=0", "-XX:+UnlockDiagnosticVMOptions -XX:AVX3Threshold=0", "segmentCopy"),
            new Variant("segmentCopy UseAVX=2", "-XX:UseAVX=2", "segmentCopy"),
            new Variant("chunked2k", "", "chunked2k"),
            new Variant("chunked16k", "", "chunked16k"),
            new Variant("chunked2k MaxVectorSize=32", "-XX:MaxVectorSize=32", "chunked2k"),
            new Variant("longLoop", "", "longLoop"),
            new Variant("memmove (downcall, unsafe)", "", "memmove"));

    public static void main(String[] args) throws Throwable {
        if (args.length > 0 && args[0].equals("worker")) {
            worker();
            return;
        }
        int rounds = args.length > 0 ? Integer.parseInt(args[0]) : 100;
        int[] sizes = args.length > 1 ? Arrays.stream(args[1].split(",")).mapToInt(Integer::parseInt).toArray() : new int[] {4096, 131072};
        String[] patterns = args.length > 2 ? args[2].split(",") : new String[] {"random", "seq", "hot"};
        String java = ProcessHandle.current().info().command().orElse("java");
        String cp = System.getProperty("java.class.path");
        Map<String, Worker> workers = new LinkedHashMap<>();
        for (Variant v : VARIANTS) {
            if (workers.containsKey(v.flags())) continue;
            List<String> cmd = new ArrayList<>(List.of(java, "--enable-native-access=ALL-UNNAMED", "-Xms512m", "-Xmx512m"));
            if (!v.flags().isEmpty()) cmd.addAll(List.of(v.flags().split(" ")));
            cmd.addAll(List.of("-cp", cp, GuestCopyInterleaved.class.getName(), "worker"));
            workers.put(v.flags(), new Worker(new ProcessBuilder(cmd).redirectError(ProcessBuilder.Redirect.INHERIT).start()));
        }
        System.out.println("size pattern variant median_ns min_ns median_GBps ratio_median ratio_p25 ratio_p75");
        for (int size : sizes) {
            for (String pattern : patterns) {
                int copies = (int) Math.max(16, (16L << 20) / size);
                double[][] t = new double[VARIANTS.size()][rounds];
                for (int w = 0; w < Math.max(20, rounds / 5); w++) {          // warm-up (JIT)
                    for (Variant v : VARIANTS) workers.get(v.flags()).run(v.method(), size, pattern, copies);
                }
                for (int r = 0; r < rounds; r++) {
                    for (int j = 0; j < VARIANTS.size(); j++) {
                        int k = (j + r) % VARIANTS.size();
                        Variant v = VARIANTS.get(k);
                        t[k][r] = workers.get(v.flags()).run(v.method(), size, pattern, copies);
                    }
                }
                for (int k = 0; k < VARIANTS.size(); k++) {
                    double[] s = t[k].clone();
                    Arrays.sort(s);
                    double[] ratio = new double[rounds];
                    for (int r = 0; r < rounds; r++) ratio[r] = t[k][r] / t[0][r];
                    Arrays.sort(ratio);
                    double med = s[rounds / 2];
                    System.out.printf("%d %s \"%s\" %.0f %.0f %.1f %.3f %.3f %.3f%n", size, pattern, VARIANTS.get(k).label(), med, s[0],
                            size / med, ratio[rounds / 2], ratio[rounds / 4], ratio[rounds * 3 / 4]);
                }
                System.out.flush();
            }
        }
        for (Worker w : workers.values()) w.close();
    }

    /** A worker JVM: one line in ("method size pattern copies"), one line out (ns per copy). */
    static final class Worker {
        final Process p;
        final PrintStream in;
        final BufferedReader out;

        Worker(Process p) {
            this.p = p;
            in = new PrintStream(p.getOutputStream(), false, StandardCharsets.US_ASCII);
            out = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.US_ASCII));
        }

        double run(String method, int size, String pattern, int copies) throws Exception {
            in.println(method + " " + size + " " + pattern + " " + copies);
            in.flush();
            String line = out.readLine();
            if (line == null) throw new IllegalStateException("worker died");
            return Double.parseDouble(line);
        }

        void close() throws Exception {
            in.close();
            p.waitFor();
        }
    }

    static void worker() throws Throwable {
        long diskSize = GuestCopyBench.DISK;
        Mmap disk = Mmap.anonymous(diskSize);
        MemorySegment src = disk.segment();
        for (long p = 0; p < diskSize; p += 4096) src.set(JAVA_LONG, p, p | 1);
        int fd = MemFd.createHugetlb("guest-copy-interleaved", GuestCopyBench.GUEST);
        MemorySegment dst = Mmap.map(fd, 0, GuestCopyBench.GUEST, true).segment();
        dst.fill((byte) 1);
        SplittableRandom rnd = new SplittableRandom(42);
        BufferedReader r = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.US_ASCII));
        int slot = 0;
        long seq = 0;
        for (String line; (line = r.readLine()) != null; ) {
            String[] f = line.split(" ");
            String method = f[0];
            int size = Integer.parseInt(f[1]);
            String pattern = f[2];
            boolean hot = pattern.equals("hot");
            int copies = Integer.parseInt(f[3]);
            long[] so = new long[copies], d = new long[copies];
            for (int i = 0; i < copies; i++) {
                so[i] = GuestCopyBench.srcOffset(pattern, seq++, size, rnd);
                d[i] = hot ? 0 : (long) (slot++ & (GuestCopyBench.SLOTS - 1)) * size;
            }
            long t0 = System.nanoTime();
            switch (method) {
                case "segmentCopy" -> { for (int i = 0; i < copies; i++) GuestCopyBench.segmentCopy(src, so[i], dst, d[i], size); }
                case "longLoop" -> { for (int i = 0; i < copies; i++) GuestCopyBench.longLoop(src, so[i], dst, d[i], size); }
                case "chunked2k" -> { for (int i = 0; i < copies; i++) GuestCopyBench.chunked(src, so[i], dst, d[i], size, 2048); }
                case "chunked16k" -> { for (int i = 0; i < copies; i++) GuestCopyBench.chunked(src, so[i], dst, d[i], size, 16384); }
                case "memmove" -> { for (int i = 0; i < copies; i++) GuestCopyBench.memmove(src, so[i], dst, d[i], size); }
                default -> throw new IllegalArgumentException(method);
            }
            long ns = System.nanoTime() - t0;
            System.out.println((double) ns / copies);
            System.out.flush();
        }
    }
}
