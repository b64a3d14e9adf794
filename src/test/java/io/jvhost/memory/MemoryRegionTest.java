package io.jvhost.memory;

import io.jvhost.sys.Fd;
import io.jvhost.sys.MemFd;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** Sealing guest memory against shrinking, and telling a truncated region from an intact one. */
class MemoryRegionTest {
    @Test
    void aSealableMemfdIsSealedAgainstShrinking() {
        int fd = MemFd.create("sealable", 1 << 20);
        try (MemoryRegion r = MemoryRegion.map(fd, 0, 1 << 20, 0x1000_0000L, 0)) {
            assertThat(r.sealed()).isTrue();
            assertThat(Fd.seals(fd) & Fd.F_SEAL_SHRINK).isNotZero();
            assertThatThrownBy(() -> Fd.ftruncate(fd, 0)).isInstanceOf(RuntimeException.class);
            assertThat(r.intact()).isTrue();
        } finally {
            Fd.closeQuietly(fd);
        }
    }

    @Test
    void aMemfdSealedByTheFrontEndIsRecognised() {
        // QEMU seals its memfds itself (shrink, grow and seal): adding a seal then fails, yet the region is safe.
        int fd = MemFd.create("qemu-like", 1 << 20);
        try {
            assertThat(Fd.addSeals(fd, Fd.F_SEAL_SHRINK | Fd.F_SEAL_GROW | Fd.F_SEAL_SEAL)).isZero();
            try (MemoryRegion r = MemoryRegion.map(fd, 0, 1 << 20, 0x1000_0000L, 0)) {
                assertThat(r.sealed()).isTrue();
            }
        } finally {
            Fd.closeQuietly(fd);
        }
    }

    @Test
    void anUnsealableRegionReportsItsTruncation() {
        int fd = MemFd.create("unsealable", 2 << 20, false);
        try (MemoryRegion r = MemoryRegion.map(fd, 0x4000_0000L, 1 << 20, 0x1000_0000L, 1 << 20)) {
            assertThat(r.sealed()).isFalse();
            assertThat(r.intact()).isTrue();
            GuestMemory mem = new GuestMemory(List.of(r));
            assertThat(mem.vanishedRegion()).isNull();
            Fd.ftruncate(fd, (1 << 20) + 4096); // cuts the region (which starts at file offset 1 MiB)
            assertThat(r.intact()).isFalse();
            assertThat(mem.vanishedRegion()).isSameAs(r);
            Fd.ftruncate(fd, 2 << 20); // grown back: backed again (zero pages), no longer faulting
            assertThat(r.intact()).isTrue();
        } finally {
            Fd.closeQuietly(fd);
        }
    }

    @Test
    void closingReleasesTheDuplicateFd() {
        int fd = MemFd.create("dup", 1 << 20, false);
        MemoryRegion r = MemoryRegion.map(fd, 0, 1 << 20, 0x1000_0000L, 0);
        long fdsOpen = openFds();
        r.close();
        r.close(); // idempotent
        assertThat(openFds()).isEqualTo(fdsOpen - 1);
        assertThat(r.intact()).as("a closed region is not reported as vanished").isTrue();
        Fd.closeQuietly(fd);
    }

    private static long openFds() {
        try (var s = java.nio.file.Files.list(java.nio.file.Path.of("/proc/self/fd"))) {
            return s.count();
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }
}
