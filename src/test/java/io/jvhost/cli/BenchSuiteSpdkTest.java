package io.jvhost.cli;

import io.jvhost.sys.HugePages;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** {@code bench-suite --spdk DIR}: what it checks before starting anything (SPDK itself is never run in CI). */
class BenchSuiteSpdkTest {
    @TempDir
    Path dir;

    @Test
    void aDirectoryWithoutAnSpdkBuildIsRefusedByName() {
        assertThatThrownBy(() -> BenchSuiteCommand.SpdkPaths.check(dir, 1L << 30))
                .hasMessageContaining("no SPDK vhost target at " + dir.resolve("build/bin/vhost"));
    }

    @Test
    void aBuildWithoutRpcPyIsRefused() throws Exception {
        fakeVhost();
        assertThatThrownBy(() -> BenchSuiteCommand.SpdkPaths.check(dir, 1L << 30)).hasMessageContaining("scripts/rpc.py");
    }

    @Test
    void tooFewHugepagesForSpdkAndTheInitiatorSayHowManyToReserve() throws Exception {
        fakeVhost();
        Files.createDirectories(dir.resolve("scripts"));
        Files.writeString(dir.resolve("scripts/rpc.py"), "");
        HugePages pool = HugePages.read();
        // A malloc bdev bigger than the free pool: SPDK's -s must hold it.
        long mallocBytes = (pool.available() + 1) * HugePages.SIZE;
        long memMib = (mallocBytes >> 20) + BenchSuiteCommand.SPDK_EXTRA_MIB;
        long pages = memMib / 2 + BenchSuiteCommand.INITIATOR_PAGES;
        assertThatThrownBy(() -> BenchSuiteCommand.SpdkPaths.check(dir, mallocBytes))
                .hasMessageContaining("-s " + memMib + " MiB")
                .hasMessageContaining("needs " + pages + " free 2 MiB hugepages")
                .hasMessageContaining("> /proc/sys/vm/nr_hugepages");
    }

    @Test
    void aCompleteBuildWithEnoughHugepagesPasses() throws Exception {
        fakeVhost();
        Files.createDirectories(dir.resolve("scripts"));
        Files.writeString(dir.resolve("scripts/rpc.py"), "");
        // 0-byte malloc: SPDK_EXTRA_MIB plus the initiator's pages are still needed.
        long pages = BenchSuiteCommand.SPDK_EXTRA_MIB / 2 + BenchSuiteCommand.INITIATOR_PAGES;
        org.junit.jupiter.api.Assumptions.assumeTrue(HugePages.read().available() >= pages,
                "needs " + pages + " free 2 MiB hugepages (echo " + pages + " > /proc/sys/vm/nr_hugepages)");
        BenchSuiteCommand.SpdkPaths p = BenchSuiteCommand.SpdkPaths.check(dir, 0);
        assertThat(p.vhost()).isEqualTo(dir.resolve("build/bin/vhost"));
        assertThat(p.libDir()).isEqualTo(dir.resolve("build/lib"));
        assertThat(p.memMib()).isEqualTo(BenchSuiteCommand.SPDK_EXTRA_MIB);
    }

    private void fakeVhost() throws Exception {
        Path bin = Files.createDirectories(dir.resolve("build/bin"));
        Files.writeString(bin.resolve("vhost"), "#!/bin/sh\n");
        Files.setPosixFilePermissions(bin.resolve("vhost"), PosixFilePermissions.fromString("rwxr-xr-x"));
    }
}
