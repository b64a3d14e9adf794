package io.jvhost.initiator;

import io.jvhost.bdev.MallocBlockDevice;
import io.jvhost.runtime.IdleStrategy;
import io.jvhost.sys.HugePages;
import io.jvhost.vhost.VhostTarget;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * {@code jvhost bench --hugepages}: the initiator's guest memory on 2 MiB hugetlbfs pages, and
 * the error that says how to reserve them when the pool is too small. {@code test.sh}
 * (scripts/install-test-deps.sh) reserves 64 pages when run as root, so CI runs the bench test.
 */
class HugePagesBenchTest {
    /** What the short bench below needs (a few MiB of rings and buffers) with room to spare. */
    private static final long PAGES_NEEDED = 8;

    @TempDir
    Path dir;
    VhostTarget target;

    @BeforeEach
    void setUp() {
        target = new VhostTarget(dir, 1, IdleStrategy.BACKOFF);
        target.bdevs().register(new MallocBlockDevice("Ram", 16384, 512, null));
        target.bdevs().register(new MallocBlockDevice("Ram2", 16384, 512, null));
        target.createBlkController("ram", "Ram", false, 2, null);
        target.createScsiController("scsi", 1, null);
        target.addScsiTarget("scsi", 0, "Ram2");
    }

    @AfterEach
    void tearDown() {
        target.close();
    }

    private static void assumeHugePages() {
        HugePages pool = HugePages.read();
        assumeTrue(pool.available() >= PAGES_NEEDED, "needs " + PAGES_NEEDED + " free 2 MiB hugepages, " + pool.available() + " of " + pool.total()
                + " are free: run as root `echo 64 > /proc/sys/vm/nr_hugepages` (./test.sh does that when run as root)");
    }

    private BenchEngine.Config config(String ctrlr, BenchEngine.Type type) {
        return new BenchEngine.Config(dir.resolve(ctrlr).toString(), type, BenchEngine.Workload.RANDRW, 50, 4096, 8, 1,
                Duration.ofSeconds(1), Duration.ZERO, true, -1, 256, false, false, true);
    }

    @Test
    void blkBenchOnHugepageMemoryMovesAndVerifiesData() throws Exception {
        assumeHugePages();
        BenchEngine e = new BenchEngine(config("ram", BenchEngine.Type.BLK), System.err);
        try {
            assertThat(e.hugepages()).isTrue();
            // (the in-process target maps the same memfd: either mapping shows the page size)
            assertThat(kernelPageSizeKbOf("memfd:jvhost-initiator-huge")).as("the mapping is on 2 MiB pages").isEqualTo(2048);
            BenchEngine.Result r = e.run();
            assertThat(r.ios()).isPositive();
            assertThat(r.errors()).isZero();
            assertThat(r.verifyErrors()).isZero();
        } finally {
            e.close();
        }
    }

    @Test
    void scsiBenchOnHugepageMemory() throws Exception {
        assumeHugePages();
        BenchEngine e = new BenchEngine(config("scsi", BenchEngine.Type.SCSI), System.err);
        try {
            BenchEngine.Result r = e.run();
            assertThat(r.ios()).isPositive();
            assertThat(r.errors()).isZero();
            assertThat(r.verifyErrors()).isZero();
        } finally {
            e.close();
        }
    }

    @Test
    void tooFewFreeHugepagesFailWithTheCommandThatReservesThem() {
        HugePages pool = HugePages.read();
        long pages = pool.available() + 3;
        assertThatThrownBy(() -> new SharedMemory(pages * HugePages.SIZE - 4096, 1L << 32, true))
                .isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("needs " + pages + " free 2 MiB hugepages")
                .hasMessageContaining("echo " + (pool.total() + 3) + " > /proc/sys/vm/nr_hugepages");
    }

    @Test
    void shortfallMessageNamesTheTargetPoolSize() {
        String m = new HugePages(10, 4, 1).shortfallMessage("x", 5);
        assertThat(m).contains("needs 5 free 2 MiB hugepages (10 MiB)").contains("only 3 of 10 are free")
                .contains("echo 12 > /proc/sys/vm/nr_hugepages").contains("sysctl -w vm.nr_hugepages=12")
                .contains("/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages");
        assertThat(HugePages.roundUp(1)).isEqualTo(HugePages.SIZE);
        assertThat(HugePages.roundUp(HugePages.SIZE)).isEqualTo(HugePages.SIZE);
    }

    /** KernelPageSize of the first mapping of ours whose name contains {@code name}, in kB; -1 when there is none. */
    private static long kernelPageSizeKbOf(String name) throws IOException {
        List<String> lines = Files.readAllLines(Path.of("/proc/self/smaps"));
        boolean in = false;
        for (String l : lines) {
            if (!l.isEmpty() && Character.isLetterOrDigit(l.charAt(0)) && l.contains("-") && !l.contains(":  ") && l.split("\\s+").length >= 5) {
                in = l.contains(name);
            } else if (in && l.startsWith("KernelPageSize:")) {
                return Long.parseLong(l.replaceAll("\\D+", ""));
            }
        }
        return -1;
    }
}
