package io.jvhost.qemu;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

class NewcCpioTest {

    /** One parsed newc entry. */
    record Entry(String name, int mode, int nlink, byte[] data) {}

    /** An independent reader for what the writer produces: checks magic, alignment and the trailer. */
    static List<Entry> parse(byte[] a) {
        List<Entry> entries = new ArrayList<>();
        int pos = 0;
        while (true) {
            assertThat(pos % 4).as("header alignment").isZero();
            assertThat(new String(a, pos, 6, StandardCharsets.US_ASCII)).isEqualTo("070701");
            long[] f = new long[13];
            for (int i = 0; i < 13; i++) {
                f[i] = Long.parseLong(new String(a, pos + 6 + 8 * i, 8, StandardCharsets.US_ASCII), 16);
            }
            int namesize = (int) f[11];
            int filesize = (int) f[6];
            String name = new String(a, pos + 110, namesize - 1, StandardCharsets.UTF_8);
            assertThat(a[pos + 110 + namesize - 1]).as("name NUL").isZero();
            int data = align4(pos + 110 + namesize);
            byte[] content = java.util.Arrays.copyOfRange(a, data, data + filesize);
            pos = align4(data + filesize);
            if (name.equals("TRAILER!!!")) {
                assertThat(pos).as("archive ends after the trailer").isEqualTo(a.length);
                return entries;
            }
            entries.add(new Entry(name, (int) f[1], (int) f[4], content));
        }
    }

    private static int align4(int x) {
        return (x + 3) & ~3;
    }

    @Test
    void writesEntriesWithParentDirectoriesAndPadding() {
        byte[] odd = new byte[1001];
        for (int i = 0; i < odd.length; i++) odd[i] = (byte) (i * 31 + 7);
        byte[] archive = new NewcCpio()
                .file("/guest-test.sh", "#!/bin/sh\necho hi\n", 0755)
                .file("a/b/data.bin", odd, 0644)
                .file("a/empty", new byte[0], 0600)
                .finish();

        assertThat(archive.length % 4).isZero();
        List<Entry> e = parse(archive);
        assertThat(e).extracting(Entry::name)
                .containsExactly("guest-test.sh", "a", "a/b", "a/b/data.bin", "a/empty");
        assertThat(e.get(0).mode()).isEqualTo(NewcCpio.S_IFREG | 0755);
        assertThat(new String(e.get(0).data(), StandardCharsets.UTF_8)).isEqualTo("#!/bin/sh\necho hi\n");
        assertThat(e.get(1).mode()).isEqualTo(NewcCpio.S_IFDIR | 0755);
        assertThat(e.get(1).nlink()).isEqualTo(2);
        assertThat(e.get(3).data()).isEqualTo(odd);
        assertThat(e.get(4).mode()).isEqualTo(NewcCpio.S_IFREG | 0600);
        assertThat(e.get(4).data()).isEmpty();
    }

    @Test
    void rejectsBadOrDuplicatePaths() {
        assertThatThrownBy(() -> new NewcCpio().file("../x", new byte[1], 0644))
                .isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> new NewcCpio().file("/", new byte[1], 0644))
                .isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> new NewcCpio().file("x", new byte[1], 0644).file("/x", new byte[1], 0644))
                .isInstanceOf(IllegalArgumentException.class);
    }

    /** GNU cpio, a second independent reader, extracts the same files and modes. */
    @Test
    void gnuCpioExtractsTheArchive(@TempDir Path dir) throws Exception {
        assumeTrue(Files.isExecutable(Path.of("/usr/bin/cpio")) || Files.isExecutable(Path.of("/bin/cpio")),
                "cpio is not installed");
        byte[] bin = new byte[70_000];
        new java.util.Random(42).nextBytes(bin);
        byte[] archive = new NewcCpio()
                .file("guest-test.sh", "sh /blk-workload.sh /dev/vda t\n", 0755)
                .file("sub/dir/blob", bin, 0640)
                .finish();
        Path a = dir.resolve("x.cpio");
        Files.write(a, archive);
        Path out = Files.createDirectory(dir.resolve("out"));
        Process p = new ProcessBuilder("cpio", "-idm", "--quiet", "--no-absolute-filenames", "-F", a.toString())
                .directory(out.toFile()).redirectErrorStream(true).start();
        String msg = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertThat(p.waitFor(30, TimeUnit.SECONDS)).isTrue();
        assertThat(p.exitValue()).as(msg).isZero();

        assertThat(Files.readString(out.resolve("guest-test.sh"))).isEqualTo("sh /blk-workload.sh /dev/vda t\n");
        assertThat(Files.getPosixFilePermissions(out.resolve("guest-test.sh")))
                .contains(PosixFilePermission.OWNER_EXECUTE, PosixFilePermission.OTHERS_EXECUTE);
        assertThat(Files.readAllBytes(out.resolve("sub/dir/blob"))).isEqualTo(bin);
        assertThat(Files.getPosixFilePermissions(out.resolve("sub/dir/blob")))
                .doesNotContain(PosixFilePermission.OTHERS_READ, PosixFilePermission.OWNER_EXECUTE);
    }

    @Test
    void finishIsIdempotentAndSealsTheArchive() {
        NewcCpio c = new NewcCpio().file("f", "x", 0644);
        byte[] first = c.finish();
        assertThat(c.finish()).isEqualTo(first);
        assertThatThrownBy(() -> c.file("g", "y", 0644)).isInstanceOf(IllegalStateException.class);
    }
}
