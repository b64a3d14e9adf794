package io.jvhost.bdev;

import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.assertj.core.api.Assertions.assertThat;

/** The RAM disk: lazily backed memory, discard that gives pages back, and the host-memory admission rule. */
class MallocBlockDeviceTest {
    static final long MIB = 1L << 20, GIB = 1L << 30;

    /** Resident anonymous memory of this process (RssAnon, bytes). */
    static long rssAnon() throws Exception {
        for (String l : Files.readAllLines(Path.of("/proc/self/status"))) {
            if (l.startsWith("RssAnon:")) return Long.parseLong(l.replaceAll("\\D", "")) * 1024;
        }
        throw new AssertionError("no RssAnon");
    }

    @Test
    void aLargeRamDiskCostsNoMemoryUntilWritten() throws Exception {
        // Regression (issue 15): the disk was allocated and zeroed eagerly, so a big one blocked
        // the RPC thread while committing all of it (and got the process OOM-killed).
        long before = rssAnon();
        try (MallocBlockDevice dev = new MallocBlockDevice("Big", 2 * GIB / 512, 512, null)) {
            long after = rssAnon();
            assertThat(after - before).as("resident growth after creating a 2 GiB disk").isLessThan(256 * MIB);
            // Reads of untouched blocks are zeros; writes land.
            MemorySegment m = dev.memory();
            assertThat(m.get(ValueLayout.JAVA_LONG, GIB)).isZero();
            m.set(ValueLayout.JAVA_LONG, GIB, 0x1234L);
            assertThat(m.get(ValueLayout.JAVA_LONG, GIB)).isEqualTo(0x1234L);
            assertThat(dev.sizeBytes()).isEqualTo(2 * GIB);
        }
    }

    @Test
    void unmapAndWriteZeroesZeroExactlyTheRangeAndGiveWholePagesBack() throws Exception {
        try (Arena arena = Arena.ofConfined(); MallocBlockDevice dev = new MallocBlockDevice("Z", 64 * MIB / 512, 512, null)) {
            MemorySegment m = dev.memory();
            m.fill((byte) 0x5a); // all 64 MiB resident now
            long resident = rssAnon();
            BdevIoStatsTest.Done done = new BdevIoStatsTest.Done();
            BlockChannel ch = dev.openChannel();
            // Unaligned start and end: partial pages at both ends, whole pages in between.
            long off = 512 * 3, len = 48 * MIB + 512 * 5;
            assertThat(ch.submit(BdevIoStatsTest.req(done, BlockRequest.Op.UNMAP, off, null, len))).isZero();
            // Within a single page.
            assertThat(ch.submit(BdevIoStatsTest.req(done, BlockRequest.Op.WRITE_ZEROES, 60 * MIB + 512, null, 1024))).isZero();
            ch.poll();
            assertThat(done.statuses).containsExactly(0, 0);
            // The discarded 48 MiB went back to the kernel instead of being overwritten with zeros.
            assertThat(resident - rssAnon()).as("resident memory freed by the unmap").isGreaterThan(32 * MIB);
            assertThat(m.get(ValueLayout.JAVA_BYTE, off - 1)).isEqualTo((byte) 0x5a);
            for (long p = off; p < off + len; p += 509) {
                if (m.get(ValueLayout.JAVA_BYTE, p) != 0) throw new AssertionError("byte " + p + " not zeroed");
            }
            assertThat(m.get(ValueLayout.JAVA_BYTE, off + len - 1)).isZero();
            assertThat(m.get(ValueLayout.JAVA_BYTE, off + len)).isEqualTo((byte) 0x5a);
            assertThat(m.get(ValueLayout.JAVA_BYTE, 60 * MIB + 511)).isEqualTo((byte) 0x5a);
            assertThat(m.get(ValueLayout.JAVA_BYTE, 60 * MIB + 512)).isZero();
            assertThat(m.get(ValueLayout.JAVA_BYTE, 60 * MIB + 1535)).isZero();
            assertThat(m.get(ValueLayout.JAVA_BYTE, 60 * MIB + 1536)).isEqualTo((byte) 0x5a);
        }
    }

    @Test
    void admissionCountsExistingRamDisksAndKeepsHeadroom() {
        // The reported case: a 24 GiB host. 16 GiB with 12 GiB available is refused at once.
        HostMemory host = new HostMemory(24 * GIB, 12 * GIB);
        assertThat(host.headroomBytes()).isEqualTo(24 * GIB / 16);
        assertThat(host.refusal(16 * GIB, 0)).contains("16.0 GiB").contains("more than this host can back").contains("12.0 GiB available");
        assertThat(host.refusal(8 * GIB, 0)).isNull();
        // Disks that exist already count in full: 8 + 8 GiB does not fit in 12 GiB.
        assertThat(host.refusal(8 * GIB, 8 * GIB)).contains("8.0 GiB promised to existing RAM disks");
        // The headroom is kept: everything available minus nothing is refused.
        assertThat(host.refusal(12 * GIB, 0)).isNotNull();
        assertThat(host.refusal(1L << 50, 0)).contains("1.0 PiB");
        // Small hosts keep at least 256 MiB, large ones at most 4 GiB.
        assertThat(new HostMemory(1 * GIB, GIB).headroomBytes()).isEqualTo(256 * MIB);
        assertThat(new HostMemory(1024 * GIB, GIB).headroomBytes()).isEqualTo(4 * GIB);
    }

    @Test
    void theHostFigureIsReadFromProc() {
        HostMemory h = HostMemory.read();
        assertThat(h).isNotNull();
        assertThat(h.totalBytes()).isPositive();
        assertThat(h.availableBytes()).isBetween(0L, h.totalBytes());
    }
}
