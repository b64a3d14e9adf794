package io.jvhost.qemu;

import io.jvhost.bdev.MallocBlockDevice;
import io.jvhost.runtime.IdleStrategy;
import io.jvhost.vhost.Controller;
import io.jvhost.vhost.Session;
import io.jvhost.vhost.VhostTarget;
import io.jvhost.virtio.VirtioFeatures;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Live migration on one host: a source QEMU and a destination QEMU ({@code -incoming unix:...})
 * both connect to the same jvhost vhost-user-blk controller (two sessions; the ring lease lets
 * only one process rings at a time). The guest writes and verifies random blocks while QMP
 * {@code migrate} moves it; during migration jvhost logs every guest page it writes (VHOST_F_LOG_ALL,
 * SET_LOG_BASE), so the blocks it reads into guest buffers reach the destination. After the
 * switch-over the guest, now on the destination, verifies everything it wrote; the host checks
 * the RAM disk.
 */
@Tag("qemu")
class JvhostMigrationQemuTest {
    static final long DISK = 64L << 20;

    @Test
    void aRunningGuestMigratesWithItsDiskAndVerifiesEverythingItWrote() throws Exception {
        assumeTrue(QemuGuest.available(), () -> "QEMU guest tests skipped: " + QemuGuest.unavailableReason().orElse(""));
        QemuGuest.image();
        Path sockDir = Files.createTempDirectory("jvhost-migrate");
        List<String> lines; // the source's console, then the destination's
        int exit;
        MallocBlockDevice ram = new MallocBlockDevice("Malloc0", DISK / 512, 512, null);
        try (VhostTarget target = new VhostTarget(sockDir, 1, IdleStrategy.BACKOFF)) {
            target.bdevs().register(ram);
            Controller c = target.createBlkController("mig", "Malloc0", false, 2, null);
            // Four 8 MiB regions from 16 MiB, each different, the guest reads into its page cache
            // in turn (see migrate-guest.sh).
            java.util.Random rnd = new java.util.Random(42);
            StringBuilder want = new StringBuilder();
            for (int k = 0; k < 4; k++) {
                byte[] fill = new byte[8 << 20];
                rnd.nextBytes(fill);
                java.lang.foreign.MemorySegment.copy(java.lang.foreign.MemorySegment.ofArray(fill), 0, ram.memory(), (16L + 8 * k) << 20, fill.length);
                want.append(' ').append(java.util.HexFormat.of().formatHex(java.security.MessageDigest.getInstance("MD5").digest(fill)));
            }
            QemuGuest.Builder src = builder("jvhost-migrate-src", c, want.toString());
            QemuGuest.Builder dst = builder("jvhost-migrate-dst", c, want.toString());
            Path srcQmp = src.runDir().resolve("qmp.sock");
            Path dstQmp = dst.runDir().resolve("qmp.sock");
            Path migSock = dst.runDir().resolve("migrate.sock");
            src.qemuArgs("-qmp", "unix:" + srcQmp + ",server=on,wait=off");
            dst.qemuArgs("-qmp", "unix:" + dstQmp + ",server=on,wait=off", "-incoming", "unix:" + migSock);
            AtomicBoolean logged = new AtomicBoolean();
            try (QemuGuest s = src.start(); Qmp sq = Qmp.connect(srcQmp, Duration.ofSeconds(30))) {
                s.awaitLine(QemuGuest.BOOTED, Duration.ofSeconds(120));
                s.awaitLine("^JVHOST-ROUND 1 5$", Duration.ofSeconds(120));
                Session source = c.session();
                try (QemuGuest d = dst.start(); Qmp dq = Qmp.connect(dstQmp, Duration.ofSeconds(30))) {
                    await().atMost(Duration.ofSeconds(60)).until(() -> c.sessions().size() == 2);
                    // First a downtime limit the busy guest cannot meet, so the migration stays in
                    // its iterations while the guest reads into its page cache (device writes only
                    // the dirty log reveals); then one it can meet, to switch over.
                    sq.call("migrate-set-parameters", "max-bandwidth", 1L << 30, "downtime-limit", 1);
                    sq.call("migrate", "uri", "unix:" + migSock);
                    int reads = 0;
                    while (reads < 2 && !"completed".equals(sq.execute("query-migrate", null).path("status").asText())) {
                        if (VirtioFeatures.has(source.negotiatedFeatures(), VirtioFeatures.LOG_ALL)) logged.set(true);
                        s.awaitLine("^JVHOST-READ ", Duration.ofSeconds(180));
                        reads++;
                    }
                    System.out.println("migration: " + reads + " page-cache fills while migrating");
                    sq.call("migrate-set-parameters", "downtime-limit", 2000);
                    // While it runs, the source session logs: VHOST_F_LOG_ALL acked.
                    long deadline = System.nanoTime() + Duration.ofSeconds(600).toNanos();
                    while (true) {
                        if (VirtioFeatures.has(source.negotiatedFeatures(), VirtioFeatures.LOG_ALL)) logged.set(true);
                        String st = sq.execute("query-migrate", null).path("status").asText();
                        if (st.equals("completed")) break;
                        if (st.equals("failed") || st.equals("cancelled")) throw new AssertionError("migration " + st + "; see " + s.logFile());
                        if (System.nanoTime() > deadline) throw new AssertionError("migration did not complete");
                        Thread.sleep(100); // QEMU reports progress only when asked
                    }
                    // The guest goes on on the destination.
                    String first = d.awaitLine("^JVHOST-ROUND 0 ", Duration.ofSeconds(120));
                    int before = Integer.parseInt(first.split(" ")[2].trim());
                    d.awaitLine("^JVHOST-ROUND 0 " + (before + 5) + "$", Duration.ofSeconds(180));
                    assertThat(c.session()).as("the destination's session runs the rings").isNotSameAs(source);
                    d.sendLine("stop");
                    exit = d.awaitExit(Duration.ofSeconds(300));
                    lines = new java.util.ArrayList<>(s.lines());
                    lines.addAll(d.lines());
                    System.out.println("migration: source saw " + s.lines().stream().filter(l -> l.startsWith("JVHOST-ROUND")).count()
                            + " rounds, destination " + lines.stream().filter(l -> l.startsWith("JVHOST-ROUND")).count());
                }
            }
            assertThat(logged).as("the source session had VHOST_F_LOG_ALL on during the migration").isTrue();
            assertThat(c.stats.failedRequests.get()).as("failed vhost-user requests").isZero();
            assertThat(c.stats.ringLeaseRefusals.get()).isZero();
            assertThat(lines).noneMatch(l -> l.startsWith("JVHOST-RECONNECT-FAIL") || l.startsWith("JVHOST-DMESG-ERROR")
                    || l.startsWith("JVHOST-MIGRATE-FAIL"));
            assertThat(lines).anyMatch(l -> l.startsWith("JVHOST-READ "));
            assertThat(lines).contains("JVHOST-RECONNECT-OK");
            assertThat(exit).isZero();
            Path dump = Files.createTempFile("jvhost-mig", ".img");
            try (FileChannel ch = FileChannel.open(dump, StandardOpenOption.WRITE)) {
                ch.write(ram.memory().asByteBuffer());
            }
            try {
                assertThat(QemuGuest.verifyMd5Lines(lines, dump, "rc")).isEqualTo(16);
            } finally {
                Files.delete(dump);
            }
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
                .guestScript("sh /migrate-guest.sh /dev/vda" + wantMd5)
                .qemuArgs("-chardev", "socket,id=c0,path=" + c.socketPath(),
                        "-device", "vhost-user-blk-pci,chardev=c0,num-queues=2");
    }

}
