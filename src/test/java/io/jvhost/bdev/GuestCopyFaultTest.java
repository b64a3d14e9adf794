package io.jvhost.bdev;

import io.jvhost.sys.Fd;
import io.jvhost.sys.MemFd;
import io.jvhost.sys.Mmap;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The RAM disk's guest-data copy ({@code MemorySegment.copy}, HotSpot's copy stub once the
 * caller is C2-compiled) faulting on guest memory that its front-end truncated: the fault must
 * be an {@link InternalError} the caller contains, never the end of the process. Each case runs
 * in a fresh JVM (so a crash fails the test instead of taking the test run down, and the C2
 * compilation of the copy is seen from the start), with the JVM flags of the copy variants
 * measured in BENCHMARKS.md "Guest-data copy: variants measured": the default stub (AVX-512
 * loop from 4 KiB on this CPU kind) and {@code -XX:MaxVectorSize=32} (the stub copies with
 * {@code rep movs}). A copy through a {@code memmove} downcall fails this test (SIGBUS in libc
 * ends the child; tried by hand).
 */
class GuestCopyFaultTest {
    static final int REQUEST = 128 << 10;
    static final String CONTAINED = "fault contained: ";

    @TempDir
    Path dir;

    @ParameterizedTest
    @ValueSource(strings = {"", "-XX:MaxVectorSize=32"})
    void faultInsideTheCompiledCopyIsAnInternalErrorNotACrash(String flags) throws Exception {
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--enable-native-access=ALL-UNNAMED", "-Xmx256m"));
        if (!flags.isEmpty()) cmd.addAll(List.of(flags.split(" ")));
        cmd.addAll(List.of("-cp", System.getProperty("java.class.path"), GuestCopyFaultTest.class.getName()));
        // in a temporary directory: a crashing child leaves its hs_err file there
        Process p = new ProcessBuilder(cmd).directory(dir.toFile()).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertThat(p.waitFor(180, TimeUnit.SECONDS)).isTrue();
        assertThat(p.exitValue()).as("child JVM exit status (134 = SIGABRT after a fatal signal); output:%n%s", out).isZero();
        assertThat(out).contains(CONTAINED + "java.lang.InternalError");
    }

    /**
     * The child: warms a 128 KiB read of the RAM disk into a memfd mapping until the copy runs
     * as C2 code, checks that the compiled copy is right, truncates the memfd, reads again and
     * expects an {@link InternalError}; then reads into intact memory to show the device and the
     * process go on. Exit status 0 only when all of that held.
     */
    public static void main(String[] args) throws IOException {
        int fd = MemFd.create("truncated-guest", 1 << 20, false);
        try (MallocBlockDevice dev = new MallocBlockDevice("M", (4 << 20) / 512, 512, null);
             Mmap guest = Mmap.map(fd, 0, 1 << 20, true);
             Mmap intact = Mmap.anonymous(1 << 20);
             C2Watch c2 = new C2Watch(MallocBlockDevice.class.getName() + "$Channel", "execute")) {
            MemorySegment disk = dev.memory();
            for (long p = 0; p < disk.byteSize(); p += 8) disk.set(ValueLayout.JAVA_LONG, p, p * 0x9E3779B97F4A7C15L);
            BlockChannel ch = dev.openChannel();
            BlockRequest r = new BlockRequest(4);
            r.completion((req, status) -> { });
            long deadline = System.nanoTime() + 120_000_000_000L;
            for (int n = 0; !c2.compiled(); ) {
                if (System.nanoTime() > deadline) fail("the copy was not C2-compiled within 120 s: " + c2);
                for (int i = 0; i < 1000; i++, n++) {
                    read(ch, r, guest.segment(), (n & 7) * (long) REQUEST);
                    ch.poll();
                }
            }
            read(ch, r, guest.segment(), 3L * REQUEST);
            ch.poll();
            if (guest.segment().asSlice(0, REQUEST).mismatch(disk.asSlice(3L * REQUEST, REQUEST)) != -1) fail("compiled copy wrong");

            Fd.ftruncate(fd, 0); // the front-end takes the memory away
            InternalError caught = null;
            try {
                // HotSpot may deliver the fault a little after the copy (at the next safepoint poll)
                for (int i = 0; i < 1000; i++) {
                    read(ch, r, guest.segment(), 0);
                    ch.poll();
                }
            } catch (InternalError e) {
                caught = e;
            }
            if (caught == null) fail("no InternalError from 1000 reads into truncated memory");

            read(ch, r, intact.segment(), 5L * REQUEST);
            ch.poll();
            if (intact.segment().asSlice(0, REQUEST).mismatch(disk.asSlice(5L * REQUEST, REQUEST)) != -1) fail("read after the fault wrong");
            System.out.println(CONTAINED + caught);
        } finally {
            Fd.closeQuietly(fd);
        }
        System.exit(0);
    }

    private static void fail(String why) {
        System.out.println("FAILED: " + why);
        System.exit(1);
    }

    /** One 128 KiB read of disk offset {@code diskOff} into the start of {@code buf}. */
    private static void read(BlockChannel ch, BlockRequest r, MemorySegment buf, long diskOff) {
        r.reset(BlockRequest.Op.READ, diskOff);
        r.addBuffer(buf, 0, REQUEST);
        if (ch.submit(r) != 0) throw new AssertionError("submit refused");
    }
}
