package io.jvhost.qemu;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.List;
import java.util.regex.Matcher;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Validates the guest harness itself against QEMU's built-in virtio-blk (no jvhost involved):
 * boot, module loading, console input, the sg3-utils tools, blk-workload.sh and the host-side
 * md5 check of the backing file. One guest run serves all the checks.
 */
@Tag("qemu")
class QemuHarnessTest {
    static final String TAG = "builtin";
    static final long DISK_SIZE = 64L << 20;
    static final String HELLO = "hello from the host 42";

    static QemuGuest.Image image;
    static Path disk;
    static List<String> lines;
    static int exitCode;
    static Duration bootTime;
    static Duration runTime;
    static List<String> command;

    @BeforeAll
    static void runGuest() throws Exception {
        assumeTrue(QemuGuest.available(), () -> "QEMU guest tests skipped: " + QemuGuest.unavailableReason().orElse(""));
        long t0 = System.nanoTime();
        image = QemuGuest.image();
        Duration imageTime = Duration.ofNanos(System.nanoTime() - t0);

        QemuGuest.Builder b = QemuGuest.builder("harness-builtin-blk");
        disk = b.runDir().resolve("disk.img");
        try (RandomAccessFile f = new RandomAccessFile(disk.toFile(), "rw")) {
            f.setLength(DISK_SIZE);
        }
        b.guestResource("blk-workload.sh", "/qemu/blk-workload.sh")
                .guestScript("""
                        echo JVHOST-WAITING
                        read -r line
                        echo "JVHOST-GOT <$line>"
                        for t in sg_inq sg_vpd sg_readcap sg_modes sg_unmap sg_turs sg_luns; do
                          $t -V >/dev/null 2>&1 || echo "JVHOST-TOOL-BROKEN $t"
                        done
                        echo "JVHOST-MODULES $(cut -d' ' -f1 /proc/modules | tr '\\n' ' ')"
                        echo "JVHOST-QUEUES $(ls /sys/block/vda/mq | wc -l)"
                        sh /blk-workload.sh /dev/vda %s
                        """.formatted(TAG))
                .qemuArgs("-drive", "file=" + disk + ",if=none,id=d0,format=raw,cache=none",
                        "-device", "virtio-blk-pci,drive=d0,num-queues=2");
        long t1 = System.nanoTime();
        try (QemuGuest g = b.start()) {
            command = g.command();
            g.awaitLine(QemuGuest.BOOTED, Duration.ofSeconds(60));
            g.awaitLine("^JVHOST-WAITING$", Duration.ofSeconds(30));
            g.sendLine(HELLO);
            g.awaitLine("^JVHOST-GOT <", Duration.ofSeconds(30));
            exitCode = g.awaitExit(Duration.ofSeconds(120));
            runTime = Duration.ofNanos(System.nanoTime() - t1);
            bootTime = g.bootTime().orElseThrow();
            lines = g.lines();
        }
        System.out.printf("qemu harness: image %d ms, boot to marker %d ms, guest run %d ms%ncommand: %s%n",
                imageTime.toMillis(), bootTime.toMillis(), runTime.toMillis(), String.join(" ", command));
    }

    private static List<String> linesStarting(String prefix) {
        return lines.stream().filter(l -> l.startsWith(prefix)).toList();
    }

    @Test
    void guestBootsQuicklyAndLoadsEveryModule() {
        assertThat(bootTime).isLessThan(Duration.ofSeconds(60));
        assertThat(runTime).isLessThan(Duration.ofSeconds(90));
        assertThat(lines).noneMatch(l -> l.startsWith("JVHOST-INIT:")); // insmod failures
        assertThat(image.modules()).contains("virtio_pci", "virtio_blk", "virtio_scsi", "sd_mod", "sg", "ext4",
                "crc32c_generic");
        assertThat(image.modules().indexOf("crc32c_generic")).isLessThan(image.modules().indexOf("ext4"));
        List<String> mods = linesStarting("JVHOST-MODULES ");
        assertThat(mods).hasSize(1);
        List<String> loaded = List.of(mods.getFirst().substring("JVHOST-MODULES ".length()).trim().split(" +"));
        assertThat(loaded).containsExactlyInAnyOrderElementsOf(image.modules());
    }

    @Test
    void consoleInputReachesTheGuestWithoutEcho() {
        assertThat(lines).contains("JVHOST-GOT <" + HELLO + ">");
        assertThat(lines.stream().filter(l -> l.contains(HELLO))).hasSize(1);
    }

    @Test
    void sgToolsRunInTheGuest() {
        assertThat(linesStarting("JVHOST-TOOL-BROKEN")).isEmpty();
    }

    @Test
    void workloadPassesOnBuiltinVirtioBlk() {
        assertThat(linesStarting("JVHOST-BLK-FAIL")).isEmpty();
        assertThat(lines).contains("JVHOST-BLK-OK " + TAG);
        assertThat(exitCode).isZero();
        assertThat(lines).contains("JVHOST-QUEUES 2");
        assertThat(linesStarting("JVHOST-MD5 ")).hasSize(16).allMatch(l -> l.endsWith(" " + TAG));
    }

    @Test
    void backingFileMatchesEveryRegionTheGuestWrote() {
        assertThat(QemuGuest.verifyMd5Lines(lines, disk, TAG)).isEqualTo(16);
        // the regions include the last sector of the device
        assertThat(linesStarting("JVHOST-MD5 " + (DISK_SIZE - 512) + " 512 ")).hasSize(1);
    }

    @Test
    void flippedByteInTheBackingFileIsDetected() throws Exception {
        Path copy = disk.resolveSibling("disk-corrupt.img");
        Files.copy(disk, copy, StandardCopyOption.REPLACE_EXISTING);
        try {
            // the 127 KiB region at an offset that is not 4K-aligned: flip one byte in its middle
            Matcher m = linesStarting("JVHOST-MD5 ").stream().map(QemuGuest.MD5_LINE::matcher)
                    .filter(x -> x.find() && x.group(2).equals("130048")).findFirst().orElseThrow();
            long off = Long.parseLong(m.group(1));
            assertThat(off % 4096).isNotZero();
            try (RandomAccessFile f = new RandomAccessFile(copy.toFile(), "rw")) {
                long pos = off + 130048 / 2 + 3;
                f.seek(pos);
                int b = f.read();
                f.seek(pos);
                f.write(b ^ 0x01);
            }
            assertThatThrownBy(() -> QemuGuest.verifyMd5Lines(lines, copy, TAG))
                    .isInstanceOf(AssertionError.class)
                    .hasMessageContaining("1 of 16 regions differ")
                    .hasMessageContaining("offset " + off + " length 130048");
        } finally {
            Files.deleteIfExists(copy);
        }
    }

    /** The workload's failure path: on a read-only device it must say FAIL and exit non-zero. */
    @Test
    void workloadFailsOnReadOnlyDevice() throws Exception {
        QemuGuest.Builder b = QemuGuest.builder("harness-readonly-blk");
        Path ro = b.runDir().resolve("ro.img");
        try (RandomAccessFile f = new RandomAccessFile(ro.toFile(), "rw")) {
            f.setLength(DISK_SIZE);
        }
        b.guestResource("blk-workload.sh", "/qemu/blk-workload.sh")
                .guestScript("sh /blk-workload.sh /dev/vda ro\n")
                .qemuArgs("-drive", "file=" + ro + ",if=none,id=d0,format=raw,readonly=on",
                        "-device", "virtio-blk-pci,drive=d0");
        try (QemuGuest g = b.start()) {
            String verdict = g.awaitLine("JVHOST-BLK-(OK|FAIL) ro", Duration.ofSeconds(120));
            assertThat(verdict).startsWith("JVHOST-BLK-FAIL ro ");
            assertThat(g.awaitExit(Duration.ofSeconds(60))).isEqualTo(1);
            assertThat(g.lines()).noneMatch(l -> l.startsWith("JVHOST-MD5 "));
        }
        // nothing reached the backing file
        try (FileChannel ch = FileChannel.open(ro)) {
            ByteBuffer buf = ByteBuffer.allocate(1 << 20);
            ByteBuffer zeros = ByteBuffer.allocate(1 << 20);
            long pos = 0;
            for (int n; (n = ch.read(buf.clear(), pos)) > 0; pos += n) {
                assertThat(buf.flip().mismatch(zeros.clear().limit(n))).as("first non-zero byte after %d", pos).isEqualTo(-1);
            }
            assertThat(pos).isEqualTo(DISK_SIZE);
        }
    }
}
