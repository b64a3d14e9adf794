package io.jvhost.bdev;

import io.jvhost.sys.IoUring;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

/**
 * A file bdev on a real block device (a loop device with 4 KiB logical sectors over a file,
 * root only): size from BLKGETSIZE64, block size and O_DIRECT alignment from BLKSSZGET, reads
 * and writes (aligned on O_DIRECT, unaligned through the page cache), FLUSH, and DISCARD and
 * WRITE_ZEROES reaching the backing file as zeros; on both engines.
 */
class LoopBlockDeviceTest {
    @TempDir
    Path dir;

    private static final int SIZE = 32 << 20;
    private final Arena arena = Arena.ofShared();
    private final List<Integer> statuses = new ArrayList<>();

    @AfterEach
    void tearDown() {
        arena.close();
    }

    private BlockRequest request() {
        BlockRequest r = new BlockRequest(4);
        r.completion((q, st) -> statuses.add(st));
        return r;
    }

    private void run(BlockChannel ch, BlockRequest... rs) {
        statuses.clear();
        for (BlockRequest r : rs) assertThat(ch.submit(r)).isZero();
        await().atMost(Duration.ofSeconds(30)).pollInSameThread().pollInterval(Duration.ofMillis(1)).until(() -> {
            ch.poll();
            return statuses.size() == rs.length;
        });
        assertThat(statuses).as("statuses").containsOnly(0);
    }

    private static byte[] backing(Path f, long off, int len) throws Exception {
        try (FileChannel fc = FileChannel.open(f, StandardOpenOption.READ)) {
            ByteBuffer b = ByteBuffer.allocate(len);
            fc.read(b, off);
            return b.array();
        }
    }

    @ParameterizedTest(name = "engine {0}")
    @ValueSource(strings = {"io_uring", "threads"})
    void aLoopDeviceIsSizedAndServedWithDiscardAndWriteZeroesReachingTheBackingFile(String engineName) throws Exception {
        if (engineName.equals("io_uring")) Assumptions.assumeTrue(IoUring.unavailableReason() == null, "io_uring unavailable");
        Path f = dir.resolve("backing.img");
        try (FileChannel fc = FileChannel.open(f, StandardOpenOption.CREATE, StandardOpenOption.WRITE)) {
            ByteBuffer b = ByteBuffer.allocate(1 << 20);
            while (b.hasRemaining()) b.put((byte) 0x5a);
            for (int i = 0; i < SIZE >> 20; i++) fc.write(b.flip(), (long) i << 20);
        }
        try (LoopDevice loop = LoopDevice.attach(f, 4096);
             FileBlockDevice dev = new FileBlockDevice(FileBlockDevice.Kind.URING, "L", loop.device, 0, false, null,
                     engineName.equals("io_uring") ? FileIoEngine.AUTO : FileIoEngine.THREADS)) {
            assertThat(dev.ioEngine()).isEqualTo(engineName);
            assertThat(dev.isBlockDevice()).isTrue();
            assertThat(dev.blockSize()).as("BLKSSZGET: the loop device's 4 KiB logical blocks").isEqualTo(4096);
            assertThat(dev.sizeBytes()).as("BLKGETSIZE64").isEqualTo(SIZE);
            assertThat(dev.directIo()).isTrue();
            assertThat(dev.directAlignment()).isEqualTo(4096);
            BlockChannel ch = dev.openChannel();
            try {
                MemorySegment region = arena.allocate(4 * 4096, 4096);
                MemorySegment aligned = region.asSlice(0, 8192);
                MemorySegment unaligned = region.asSlice(8192 + 512, 4096); // 512-aligned: not enough for 4 KiB sectors
                for (int i = 0; i < 8192; i++) aligned.set(ValueLayout.JAVA_BYTE, i, (byte) (i * 3));
                for (int i = 0; i < 4096; i++) unaligned.set(ValueLayout.JAVA_BYTE, i, (byte) (i * 5 + 1));
                BlockRequest w1 = request(), w2 = request(), fl = request();
                w1.reset(BlockRequest.Op.WRITE, 1 << 20);
                w1.addBuffer(aligned, 0, 8192);
                w2.reset(BlockRequest.Op.WRITE, 2 << 20);
                w2.addBuffer(unaligned, 0, 4096);
                run(ch, w1, w2);
                fl.reset(BlockRequest.Op.FLUSH, 0);
                run(ch, fl); // the buffered write leaves the block device's page cache
                byte[] got = backing(f, 1 << 20, 8192);
                for (int i = 0; i < 8192; i++) assertThat(got[i]).as("aligned byte %d", i).isEqualTo((byte) (i * 3));
                got = backing(f, 2 << 20, 4096);
                for (int i = 0; i < 4096; i++) assertThat(got[i]).as("unaligned byte %d", i).isEqualTo((byte) (i * 5 + 1));

                // read back both ways
                MemorySegment back = arena.allocate(8192, 4096);
                MemorySegment oddBack = arena.allocate(8192, 4096).asSlice(1024, 4096); // unaligned read target
                BlockRequest r1 = request();
                r1.reset(BlockRequest.Op.READ, 2 << 20);
                r1.addBuffer(oddBack, 0, 4096);
                BlockRequest r2 = request();
                r2.reset(BlockRequest.Op.READ, 1 << 20);
                r2.addBuffer(back, 0, 8192);
                run(ch, r1, r2);
                assertThat(oddBack.mismatch(unaligned)).isEqualTo(-1);
                assertThat(back.mismatch(aligned)).isEqualTo(-1);

                BlockRequest d = request(), z = request();
                d.reset(BlockRequest.Op.UNMAP, 4 << 20);
                d.length = 256 << 10;
                z.reset(BlockRequest.Op.WRITE_ZEROES, 8 << 20);
                z.length = 128 << 10;
                run(ch, d, z);
                run(ch, fl);
                got = backing(f, (4 << 20) - 4096, (256 << 10) + 8192);
                assertThat(got[4095]).isEqualTo((byte) 0x5a);
                for (int i = 4096; i < 4096 + (256 << 10); i++) assertThat(got[i]).as("discarded byte %d", i).isZero();
                assertThat(got[4096 + (256 << 10)]).isEqualTo((byte) 0x5a);
                got = backing(f, (8 << 20) - 4096, (128 << 10) + 8192);
                assertThat(got[4095]).isEqualTo((byte) 0x5a);
                for (int i = 4096; i < 4096 + (128 << 10); i++) assertThat(got[i]).as("zeroed byte %d", i).isZero();
                assertThat(got[4096 + (128 << 10)]).isEqualTo((byte) 0x5a);
            } finally {
                ch.close();
            }
        }
    }
}
