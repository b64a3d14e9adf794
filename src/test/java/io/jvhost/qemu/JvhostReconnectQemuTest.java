package io.jvhost.qemu;

import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Reconnect without loss: a guest writes and verifies random blocks on a vhost-user-blk disk
 * (QEMU {@code -chardev socket,...,reconnect=1}) while jvhost is killed with {@code kill -9} and
 * started again twice (aimed at moments with requests in flight), then stopped with SIGTERM and
 * started again. QEMU reconnects each time and hands the inflight area to the new process
 * (SET_INFLIGHT_FD), which resubmits what its predecessor left in flight. The workload must
 * finish verified, with no I/O error in the guest's kernel log, and the file behind the disk
 * must hold what the guest last wrote.
 */
@Tag("qemu")
class JvhostReconnectQemuTest {
    static final long DISK = 64L << 20;

    @Test
    void guestIoSurvivesTwoKillsAndAGracefulRestart() throws Exception {
        assumeTrue(QemuGuest.available(), () -> "QEMU guest tests skipped: " + QemuGuest.unavailableReason().orElse(""));
        QemuGuest.image();
        QemuGuest.Builder b = QemuGuest.builder("jvhost-reconnect");
        Path dir = Files.createTempDirectory("jvhost-reconnect");
        Path disk = b.runDir().resolve("disk.img");
        try (RandomAccessFile f = new RandomAccessFile(disk.toFile(), "rw")) {
            f.setLength(DISK);
        }
        Path sock = dir.resolve("vhost.0");
        List<String> lines;
        int exit;
        long resubmitted;
        try (JvhostProcess jv = new JvhostProcess(b.runDir(), "-S", dir.toString(), "--file", disk.toString(), "--num-queues", "2")) {
            jv.start();
            b.guestResource("reconnect-guest.sh", "/qemu/reconnect-guest.sh")
                    .guestScript("sh /reconnect-guest.sh /dev/vda")
                    .qemuArgs("-chardev", "socket,id=c0,path=" + sock + ",reconnect=1",
                            "-device", "vhost-user-blk-pci,chardev=c0,num-queues=2");
            try (QemuGuest g = b.start()) {
                g.awaitLine(QemuGuest.BOOTED, Duration.ofSeconds(120));
                g.awaitLine("^JVHOST-ROUND 1 5$", Duration.ofSeconds(120));
                // At least two kills; more (up to 8) until one of them caught requests in flight,
                // so the inflight area's resubmission path has run against QEMU.
                for (int kill = 0; kill < 2 || (kill < 8 && jv.resubmissions() == 0); kill++) {
                    killWithRequestsInFlight(jv, g);
                    jv.start();
                    // QEMU reconnects within a second or so; the writers go on from where they were.
                    g.awaitLine("^JVHOST-ROUND 0 " + (roundOf(g, 0) + 5) + "$", Duration.ofSeconds(180));
                }
                // 143: the JVM's exit status for SIGTERM once its shutdown hooks (the drain) ran.
                assertThat(jv.sigterm()).as("exit code after SIGTERM").isIn(0, 143);
                assertThat(Files.readString(jv.log())).as("the SIGTERM drained the rings").contains("nothing left in flight");
                jv.start();
                g.awaitLine("^JVHOST-ROUND 1 " + (roundOf(g, 1) + 5) + "$", Duration.ofSeconds(180));
                g.sendLine("stop");
                exit = g.awaitExit(Duration.ofSeconds(300));
                lines = g.lines();
            }
            resubmitted = jv.resubmissions();
            assertThat(Files.readString(jv.log())).contains("inflight area set");
        } finally {
            Files.deleteIfExists(sock);
            try (var s = Files.list(dir)) {
                for (Path p : s.toList()) Files.deleteIfExists(p);
            }
            Files.deleteIfExists(dir);
        }
        System.out.println("reconnect test: rings resubmitted requests after " + resubmitted + " restart(s)");
        assertThat(resubmitted).as("a restart resubmitted requests its killed predecessor left in flight").isPositive();
        assertThat(lines).noneMatch(l -> l.startsWith("JVHOST-RECONNECT-FAIL") || l.startsWith("JVHOST-DMESG-ERROR"));
        assertThat(lines).contains("JVHOST-RECONNECT-OK");
        assertThat(exit).isZero();
        assertThat(QemuGuest.verifyMd5Lines(lines, disk, "rc")).isEqualTo(16);
    }

    /** The writer's last printed round. */
    private static int roundOf(QemuGuest g, int writer) {
        List<String> l = g.lines();
        for (int i = l.size() - 1; i >= 0; i--) {
            if (l.get(i).startsWith("JVHOST-ROUND " + writer + " ")) return Integer.parseInt(l.get(i).split(" ")[2].trim());
        }
        return 0;
    }

    /**
     * Kills jvhost at a moment when it has requests in flight: freezes it (SIGSTOP), reads the
     * inflight area through QEMU's fd of it (/proc/QEMU/fd; QEMU keeps the area across
     * back-end restarts), and kills it frozen if some head is marked in flight; otherwise lets
     * it run a little and samples again (up to 15 s, then kills it anyway).
     */
    private static void killWithRequestsInFlight(JvhostProcess jv, QemuGuest g) throws Exception {
        long pid = jv.process().pid();
        long deadline = System.nanoTime() + Duration.ofSeconds(15).toNanos();
        while (System.nanoTime() < deadline) {
            signal("-STOP", pid);
            byte[] area = inflightArea(g.process().pid());
            if (area != null && anyInFlight(area)) break;
            signal("-CONT", pid);
            java.util.concurrent.locks.LockSupport.parkNanos(Duration.ofMillis(7).toNanos()); // sampling interval
        }
        jv.kill9();
    }

    private static void signal(String sig, long pid) throws Exception {
        new ProcessBuilder("kill", sig, Long.toString(pid)).inheritIO().start().waitFor();
    }

    /** The inflight area QEMU holds (the memfd jvhost created), or null. */
    private static byte[] inflightArea(long qemuPid) {
        try (var fds = Files.list(Path.of("/proc", Long.toString(qemuPid), "fd"))) {
            for (Path fd : fds.toList()) {
                try {
                    if (Files.readSymbolicLink(fd).toString().contains("jvhost-inflight")) return Files.readAllBytes(fd);
                } catch (java.io.IOException e) {
                    // closed meanwhile
                }
            }
        } catch (java.io.IOException e) {
            return null;
        }
        return null;
    }

    /** Any head marked in flight in any queue region (vhost-user.rst split layout: desc_num at 10, states from 16). */
    private static boolean anyInFlight(byte[] area) {
        java.nio.ByteBuffer b = java.nio.ByteBuffer.wrap(area).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        int descNum = Short.toUnsignedInt(b.getShort(10));
        if (descNum == 0) return false;
        long region = io.jvhost.virtio.InflightSplitQueue.regionBytes(descNum);
        for (long r = 0; r + region <= area.length; r += region) {
            for (int h = 0; h < descNum; h++) if (area[(int) (r + 16 + 16L * h)] != 0) return true;
        }
        return false;
    }
}
