package io.jvhost.qemu;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** The host-side half of the md5 check, without a guest (QemuHarnessTest does it with one). */
class VerifyMd5LinesTest {

    private static String md5(byte[] b, int off, int len) throws Exception {
        return HexFormat.of().formatHex(MessageDigest.getInstance("MD5").digest(Arrays.copyOfRange(b, off, off + len)));
    }

    @Test
    void matchesRegionsAndReportsEveryMismatch(@TempDir Path dir) throws Exception {
        byte[] disk = new byte[3 << 20];
        new java.util.Random(7).nextBytes(disk);
        Path f = dir.resolve("disk.img");
        Files.write(f, disk);
        List<String> lines = List.of(
                "noise before",
                "JVHOST-MD5 0 512 " + md5(disk, 0, 512) + " a",
                "[  12.3] kernel message JVHOST-MD5 4096 1536 " + md5(disk, 4096, 1536) + " a",
                "JVHOST-MD5 1048576 2097152 " + md5(disk, 1048576, 2097152) + " b",
                "JVHOST-MD5 1536 512 " + md5(disk, 1536, 512), // no tag
                QemuGuest.STDERR_PREFIX + "JVHOST-MD5 0 512 00000000000000000000000000000000 a");

        assertThat(QemuGuest.verifyMd5Lines(lines, f)).isEqualTo(4);
        assertThat(QemuGuest.verifyMd5Lines(lines, f, "a")).isEqualTo(2);
        assertThat(QemuGuest.verifyMd5Lines(lines, f, "b")).isEqualTo(1);

        disk[4096 + 1535] ^= 1;          // last byte of the second region
        disk[2 * 1048576 + 12345] ^= 0x40; // inside the 2 MiB region
        Files.write(f, disk);
        assertThatThrownBy(() -> QemuGuest.verifyMd5Lines(lines, f))
                .isInstanceOf(AssertionError.class)
                .hasMessageContaining("2 of 4 regions differ")
                .hasMessageContaining("offset 4096 length 1536")
                .hasMessageContaining("offset 1048576 length 2097152");
        assertThatThrownBy(() -> QemuGuest.verifyMd5Lines(lines, f, "b"))
                .isInstanceOf(AssertionError.class).hasMessageContaining("1 of 1 regions differ");
        assertThatThrownBy(() -> QemuGuest.verifyMd5Lines(lines, f, "a"))
                .isInstanceOf(AssertionError.class).hasMessageContaining("1 of 2 regions differ");
    }

    @Test
    void regionBeyondTheFileOrNoLinesFails(@TempDir Path dir) throws Exception {
        Path f = dir.resolve("small.img");
        Files.write(f, new byte[4096]);
        String zeros = md5(new byte[4096], 0, 512);
        assertThatThrownBy(() -> QemuGuest.verifyMd5Lines(List.of("JVHOST-MD5 4096 512 " + zeros), f))
                .isInstanceOf(AssertionError.class).hasMessageContaining("beyond the end");
        assertThatThrownBy(() -> QemuGuest.verifyMd5Lines(List.of("JVHOST-BLK-OK x"), f))
                .isInstanceOf(AssertionError.class).hasMessageContaining("no JVHOST-MD5 lines");
        assertThatThrownBy(() -> QemuGuest.verifyMd5Lines(List.of("JVHOST-MD5 0 512 " + zeros + " a"), f, "b"))
                .isInstanceOf(AssertionError.class).hasMessageContaining("with tag b");
    }
}
