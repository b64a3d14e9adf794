package io.jvhost.qemu;

import io.jvhost.bdev.MallocBlockDevice;
import io.jvhost.runtime.IdleStrategy;
import io.jvhost.vhost.Controller;
import io.jvhost.vhost.Session;
import io.jvhost.vhost.VhostTarget;
import io.jvhost.virtio.VirtioFeatures;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import com.fasterxml.jackson.databind.JsonNode;

import java.lang.foreign.MemorySegment;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.HexFormat;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Live migration on one host: a source QEMU and a destination QEMU ({@code -incoming unix:...})
 * both connect to the same jvhost vhost-user-blk controller (two sessions; the ring lease lets
 * only one process rings at a time). Two guest writers write and verify blocks the whole time;
 * after the switch-over they verify everything they wrote, and the host checks the RAM disk.
 *
 * <p>Dirty logging is proven by page-cache fills (migrate-guest.sh): once QEMU's first pass has
 * sent every page of guest RAM (dirty-sync-count &ge; 2) and while the migration still iterates,
 * the guest reads {@value #REGIONS} regions the host filled with random data into its page cache.
 * Only jvhost writes those pages (DMA), so only jvhost's dirty log makes QEMU send them again;
 * on the destination the guest md5s them from the cache. {@link #withoutDirtyLoggingTheCacheArrivesStale}
 * runs the same with marking switched off (the debug property {@value #NO_DIRTY_LOG}) and expects
 * the check to fail, so a test that passes for the wrong reason is noticed.
 *
 * <p>The guest boots with {@code init_on_alloc=0}: Debian's kernel zeroes every new page (also
 * page-cache pages, just before the DMA) with the CPU, which QEMU's own dirty tracking sees, so the
 * pages would be sent again even without jvhost's log. The guest also keeps the disk open (the
 * block device's page cache is dropped at its last close).
 */
@Tag("qemu")
class JvhostMigrationQemuTest {
    static final long DISK = 64L << 20;
    static final int REGIONS = 4;
    static final int REGION_MIB = 8;
    static final String NO_DIRTY_LOG = "jvhost.debug.noDirtyLog";

    /** What one migration run saw. */
    record Outcome(List<String> source, List<String> destination, int exit, boolean logAll,
                   int regionsBad, long buffersBeforeCheckKb, long buffersAfterCheckKb,
                   long failedRequests, long leaseRefusals, int md5Verified) {}

    @Test
    void aRunningGuestMigratesWithItsDiskAndVerifiesEverythingItWrote() throws Exception {
        Outcome o = migrate("jvhost-migrate", true);
        assertThat(o.logAll()).as("the source session had VHOST_F_LOG_ALL on during the migration").isTrue();
        assertThat(o.failedRequests()).as("failed vhost-user requests").isZero();
        assertThat(o.leaseRefusals()).isZero();
        List<String> all = new java.util.ArrayList<>(o.source());
        all.addAll(o.destination());
        assertThat(all).noneMatch(l -> l.startsWith("JVHOST-RECONNECT-FAIL") || l.startsWith("JVHOST-DMESG-ERROR")
                || l.startsWith("JVHOST-MIGRATE-FAIL"));
        assertThat(o.regionsBad()).as("page-cache regions that arrived stale on the destination").isZero();
        assertThat(o.destination()).filteredOn(l -> l.startsWith("JVHOST-REGION-OK")).hasSize(REGIONS);
        assertThat(o.destination()).contains("JVHOST-RECONNECT-OK");
        assertThat(o.exit()).isZero();
        assertThat(o.md5Verified()).isEqualTo(16);
    }

    /**
     * The same migration with jvhost's dirty marking switched off: the page cache the device filled
     * during the migration must arrive stale. If this passes with marking off, the positive test
     * cannot tell whether jvhost logs anything.
     */
    @Test
    void withoutDirtyLoggingTheCacheArrivesStale() throws Exception {
        System.setProperty(NO_DIRTY_LOG, "true");
        Outcome o;
        try {
            o = migrate("jvhost-migrate-nolog", false);
        } finally {
            System.clearProperty(NO_DIRTY_LOG);
        }
        assertThat(o.logAll()).as("QEMU still turned VHOST_F_LOG_ALL on").isTrue();
        // All REGIONS in every run so far; one is enough to show the test sees a missing log.
        assertThat(o.regionsBad()).as("regions read into the page cache during the migration that arrived stale "
                + "with dirty marking off (0: the test cannot see a missing dirty log)").isPositive();
    }

    private Outcome migrate(String name, boolean strict) throws Exception {
        assumeTrue(QemuGuest.available(), () -> "QEMU guest tests skipped: " + QemuGuest.unavailableReason().orElse(""));
        QemuGuest.image();
        Path sockDir = Files.createTempDirectory("jvhost-migrate");
        MallocBlockDevice ram = new MallocBlockDevice("Malloc0", DISK / 512, 512, null);
        try (VhostTarget target = new VhostTarget(sockDir, 1, IdleStrategy.BACKOFF)) {
            target.bdevs().register(ram);
            Controller c = target.createBlkController("mig", "Malloc0", false, 2, null);
            // REGIONS regions from 16 MiB, each different random data, the guest reads into its
            // page cache during the migration (see migrate-guest.sh).
            java.util.Random rnd = new java.util.Random(42);
            StringBuilder want = new StringBuilder();
            for (int k = 0; k < REGIONS; k++) {
                byte[] fill = new byte[REGION_MIB << 20];
                rnd.nextBytes(fill);
                MemorySegment.copy(MemorySegment.ofArray(fill), 0, ram.memory(), (16L + (long) REGION_MIB * k) << 20, fill.length);
                want.append(' ').append(HexFormat.of().formatHex(MessageDigest.getInstance("MD5").digest(fill)));
            }
            QemuGuest.Builder src = builder(name + "-src", c, want.toString());
            QemuGuest.Builder dst = builder(name + "-dst", c, want.toString());
            Path srcQmp = src.runDir().resolve("qmp.sock");
            Path dstQmp = dst.runDir().resolve("qmp.sock");
            Path migSock = dst.runDir().resolve("migrate.sock");
            src.qemuArgs("-qmp", "unix:" + srcQmp + ",server=on,wait=off");
            dst.qemuArgs("-qmp", "unix:" + dstQmp + ",server=on,wait=off", "-incoming", "unix:" + migSock);
            boolean logAll;
            List<String> srcLines, dstLines;
            int exit;
            String checkDone;
            try (QemuGuest s = src.start(); Qmp sq = Qmp.connect(srcQmp, Duration.ofSeconds(30))) {
                s.awaitLine(QemuGuest.BOOTED, Duration.ofSeconds(120));
                s.awaitLine("^JVHOST-MIG-READY", Duration.ofSeconds(60));
                s.awaitLine("^JVHOST-ROUND 1 2$", Duration.ofSeconds(120));
                Session source = c.session();
                try (QemuGuest d = dst.start(); Qmp dq = Qmp.connect(dstQmp, Duration.ofSeconds(30))) {
                    await().atMost(Duration.ofSeconds(60)).until(() -> c.sessions().size() == 2);
                    // The first pass sends every page once, fast (its tail at 8 MiB/s, so that the
                    // test sees its end in time). As soon as it is over, the bandwidth drops to
                    // 256 KiB/s with a 1 ms downtime limit: the pages the
                    // guest keeps dirtying (its writers and a tmpfs rewriter) then never drain, so
                    // the migration keeps iterating while the guest fills its page cache. (A
                    // downtime limit of 0 would not do: QEMU then skips the sync after the first
                    // pass and completes at once.)
                    sq.call("migrate-set-parameters", "max-bandwidth", 64L << 20, "downtime-limit", 1);
                    sq.call("migrate", "uri", "unix:" + migSock);
                    JsonNode[] st = new JsonNode[1];
                    int[] slowed = new int[1];
                    await().atMost(Duration.ofSeconds(180)).pollInterval(Duration.ofMillis(20)).until(() -> {
                        st[0] = sq.execute("query-migrate", null);
                        String status = st[0].path("status").asText();
                        if (!status.equals("active") && !status.equals("setup"))
                            throw new AssertionError("migration " + status + " before the guest's fill (the test cannot hold it "
                                    + "in its iterations): " + st[0]);
                        JsonNode r = st[0].path("ram");
                        boolean passDone = r.path("dirty-sync-count").asLong() >= 2;
                        if (slowed[0] < 1 && r.has("remaining") && r.path("remaining").asLong() < r.path("total").asLong() / 8) {
                            sq.call("migrate-set-parameters", "max-bandwidth", 8L << 20);
                            slowed[0] = 1;
                        }
                        if (slowed[0] < 2 && passDone) {
                            sq.call("migrate-set-parameters", "max-bandwidth", 256L << 10);
                            slowed[0] = 2;
                        }
                        // The first pass has sent every page once: from now on only dirty pages go again.
                        return passDone;
                    });
                    System.out.println(name + ": first pass done: " + st[0].path("ram"));
                    logAll = VirtioFeatures.has(source.negotiatedFeatures(), VirtioFeatures.LOG_ALL);
                    s.sendLine("fill");
                    System.out.println(name + ": " + s.awaitLine("^JVHOST-FILL-DONE ", Duration.ofSeconds(180)));
                    JsonNode after = sq.execute("query-migrate", null);
                    System.out.println(name + ": after the fill: " + after.path("status").asText() + " " + after.path("ram"));
                    assertThat(after.path("status").asText()).as("the migration still iterated when the guest's page-cache fill ended "
                            + "(else the fill preceded the switch-over's pass and proves nothing)").isEqualTo("active");
                    logAll &= VirtioFeatures.has(source.negotiatedFeatures(), VirtioFeatures.LOG_ALL);
                    sq.call("migrate-set-parameters", "max-bandwidth", 1L << 30, "downtime-limit", 2000);
                    JsonNode done = sq.awaitMigration(Duration.ofSeconds(300));
                    System.out.println(name + ": completed: total-time " + done.path("total-time") + " ms, downtime "
                            + done.path("downtime") + " ms, " + done.path("ram"));
                    // With the log on, the fill's pages are sent again: ~REGIONS * REGION_MIB MiB more.
                    System.out.println(name + ": pages sent after the fill: "
                            + (done.path("ram").path("normal").asLong() - after.path("ram").path("normal").asLong()));
                    // The guest goes on on the destination: the writers make progress there.
                    String first = d.awaitLine("^JVHOST-ROUND 0 ", Duration.ofSeconds(120));
                    int before = Integer.parseInt(first.split(" ")[2].trim());
                    d.awaitLine("^JVHOST-ROUND 0 " + (before + 2) + "$", Duration.ofSeconds(180));
                    assertThat(c.session()).as("the destination's session runs the rings").isNotSameAs(source);
                    d.sendLine("check");
                    checkDone = d.awaitLine("^JVHOST-CHECK-DONE ", Duration.ofSeconds(180));
                    System.out.println(name + ": " + checkDone);
                    exit = d.awaitExit(Duration.ofSeconds(300));
                    srcLines = s.lines();
                    dstLines = d.lines();
                    System.out.println(name + ": source saw " + srcLines.stream().filter(l -> l.startsWith("JVHOST-ROUND")).count()
                            + " rounds, destination " + dstLines.stream().filter(l -> l.startsWith("JVHOST-ROUND")).count());
                }
            }
            String[] cd = checkDone.trim().split(" +");
            String checkStart = dstLines.stream().filter(l -> l.startsWith("JVHOST-CHECK-START ")).findFirst().orElseThrow();
            long bufBefore = Long.parseLong(checkStart.trim().split(" +")[1]);
            long bufAfter = Long.parseLong(cd[2]);
            // The check must have read the cache the device filled, not the disk again: Buffers
            // (the block device's page cache) held the regions and did not grow while checking.
            assertThat(bufBefore).as("page cache (Buffers, KiB) before the check").isGreaterThanOrEqualTo((long) REGIONS * REGION_MIB * 1024);
            assertThat(bufAfter).as("Buffers after the check (it grows when a region is read from the disk again)")
                    .isLessThanOrEqualTo(bufBefore + 1024);
            int md5 = -1;
            if (strict) {
                Path dump = Files.createTempFile("jvhost-mig", ".img");
                try (FileChannel ch = FileChannel.open(dump, StandardOpenOption.WRITE)) {
                    ch.write(ram.memory().asByteBuffer());
                }
                try {
                    md5 = QemuGuest.verifyMd5Lines(dstLines, dump, "rc");
                } finally {
                    Files.delete(dump);
                }
            }
            return new Outcome(srcLines, dstLines, exit, logAll, Integer.parseInt(cd[1]), bufBefore, bufAfter,
                    c.stats.failedRequests.get(), c.stats.ringLeaseRefusals.get(), md5);
        } finally {
            try (var st = Files.list(sockDir)) {
                for (Path p : st.toList()) Files.deleteIfExists(p);
            }
            Files.deleteIfExists(sockDir);
        }
    }

    private static QemuGuest.Builder builder(String name, Controller c, String wantMd5) {
        return QemuGuest.builder(name).memoryMiB(256)
                .guestResource("reconnect-guest.sh", "/qemu/reconnect-guest.sh")
                .guestResource("migrate-guest.sh", "/qemu/migrate-guest.sh")
                .guestScript("sh /migrate-guest.sh /dev/vda " + REGION_MIB + wantMd5)
                // Debian's default init_on_alloc=1 zeroes each page-cache page with the CPU before
                // the DMA, so QEMU would resend it without jvhost's log (see the class comment).
                .kernelArgs("init_on_alloc=0")
                .qemuArgs("-chardev", "socket,id=c0,path=" + c.socketPath(),
                        "-device", "vhost-user-blk-pci,chardev=c0,num-queues=2");
    }

}
