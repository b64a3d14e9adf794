package io.jvhost.vhost;

import io.jvhost.bdev.MallocBlockDevice;
import io.jvhost.initiator.BlkInitiator;
import io.jvhost.runtime.IdleStrategy;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Random;

import static io.jvhost.virtio.BlkLayout.*;
import static org.assertj.core.api.Assertions.assertThat;

/** The blk target driven in-process by our own initiator over a real Unix socket. */
class BlkTargetTest {
    @TempDir
    Path dir;
    VhostTarget target;
    MallocBlockDevice ram;

    @BeforeEach
    void setUp() {
        target = new VhostTarget(dir, 1, IdleStrategy.BACKOFF);
        ram = new MallocBlockDevice("Malloc0", 64 * 2048, 512, null);
        target.bdevs().register(ram);
        target.createBlkController("vhost.0", "Malloc0", false, 4, null);
    }

    @AfterEach
    void tearDown() {
        target.close();
    }

    private String sock() {
        return dir.resolve("vhost.0").toString();
    }

    private static void fill(MemorySegment s, long len, long seed) {
        Random r = new Random(seed);
        for (long i = 0; i < len; i++) s.set(ValueLayout.JAVA_BYTE, i, (byte) r.nextInt());
    }

    @Test
    void configSpaceDescribesTheDisk() throws Exception {
        try (BlkInitiator ini = BlkInitiator.connect(sock(), 1, 128, 1 << 20)) {
            MemorySegment c = MemorySegment.ofArray(ini.config());
            assertThat(c.get(ValueLayout.JAVA_LONG_UNALIGNED, C_CAPACITY)).isEqualTo(64L * 2048);
            assertThat(c.get(ValueLayout.JAVA_INT_UNALIGNED, C_BLK_SIZE)).isEqualTo(512);
            assertThat(c.get(ValueLayout.JAVA_INT_UNALIGNED, C_SEG_MAX)).isEqualTo(BlkDevice.SEG_MAX);
            assertThat(c.get(ValueLayout.JAVA_SHORT_UNALIGNED, C_NUM_QUEUES)).isEqualTo((short) 4);
            assertThat(c.get(ValueLayout.JAVA_INT_UNALIGNED, C_MAX_DISCARD_SEG)).isEqualTo(1);
            assertThat(ini.negotiatedFeatures() & (1L << F_DISCARD)).isNotZero();
            assertThat(ini.negotiatedFeatures() & (1L << F_RO)).isZero();
        }
    }

    @Test
    void requestsBeyondTheAdvertisedSegMaxAndSizeMaxFailAndAreCounted() throws Exception {
        try (BlkInitiator ini = BlkInitiator.connect(sock(), 1, 256, 4 << 20)) {
            Duration t = Duration.ofSeconds(10);
            int segMax = BlkDevice.SEG_MAX;
            // exactly seg_max segments, and one segment of exactly size_max, are served
            assertThat(ini.request(0, T_OUT, 0, segMax * 512L, 512, t).status()).isEqualTo(S_OK);
            assertThat(ini.request(0, T_IN, 0, segMax * 512L, 512, t).status()).isEqualTo(S_OK);
            assertThat(ini.request(0, T_OUT, 0, BlkDevice.SIZE_MAX, BlkDevice.SIZE_MAX, t).status()).isEqualTo(S_OK);
            var stats = target.controller("vhost.0").session().runningQueues().get(0).stats();
            assertThat(stats.chainErrors()).isZero();
            // one segment more, or one segment longer, fails with an I/O error and is counted
            ram.memory().asSlice(0, 1 << 20).fill((byte) 0x5a);
            ini.data().asSlice(0, 2 << 20).fill((byte) 0x11);
            assertThat(ini.request(0, T_OUT, 0, (segMax + 1) * 512L, 512, t).status()).isEqualTo(S_IOERR);
            assertThat(ini.request(0, T_IN, 0, (segMax + 1) * 512L, 512, t).status()).isEqualTo(S_IOERR);
            assertThat(ini.request(0, T_OUT, 0, 2L * BlkDevice.SIZE_MAX, BlkDevice.SIZE_MAX + 512, t).status()).isEqualTo(S_IOERR);
            assertThat(stats.chainErrors()).isEqualTo(3);
            assertThat(ram.memory().get(ValueLayout.JAVA_BYTE, 0)).as("refused writes were not served").isEqualTo((byte) 0x5a);
            // the queue goes on serving
            assertThat(ini.read(0, 0, 4096)).isEqualTo(S_OK);
        }
    }

    @Test
    void writesAndReadsBackOnEveryQueue() throws Exception {
        try (BlkInitiator ini = BlkInitiator.connect(sock(), 2, 128, 4 << 20)) {
            long[] sectors = {0, 1, 7, 4096, 64 * 2048 - 8};
            long[] sizes = {512, 4096, 3 * 512, 1 << 20, 4096};
            for (int i = 0; i < sectors.length; i++) {
                int q = i % 2;
                fill(ini.data(), sizes[i], i);
                assertThat(ini.write(q, sectors[i], sizes[i])).as("write status").isEqualTo(S_OK);
                // the bytes are on the RAM disk exactly where they belong
                assertThat(ram.memory().asSlice(sectors[i] * 512, sizes[i]).mismatch(ini.data().asSlice(0, sizes[i]))).isEqualTo(-1);
                ini.data().asSlice(0, sizes[i]).fill((byte) 0);
                assertThat(ini.read(1 - q, sectors[i], sizes[i])).as("read status").isEqualTo(S_OK);
                MemorySegment expect = MemorySegment.ofArray(new byte[(int) sizes[i]]);
                fill(expect, sizes[i], i);
                assertThat(ini.data().asSlice(0, sizes[i]).mismatch(expect)).isEqualTo(-1);
            }
        }
    }

    @Test
    void smallDescriptorsAndUsedLengths() throws Exception {
        try (BlkInitiator ini = BlkInitiator.connect(sock(), 1, 128, 1 << 20)) {
            fill(ini.data(), 64 * 1024, 42);
            // 64 KiB in 512-byte descriptors: 128 data descriptors + header + status > 128: use 32 KiB
            BlkInitiator.Completion w = ini.request(0, T_OUT, 100, 32 * 1024, 512, Duration.ofSeconds(5));
            assertThat(w.status()).isEqualTo(S_OK);
            assertThat(w.usedLen()).isEqualTo(1);
            ini.data().fill((byte) 0);
            BlkInitiator.Completion r = ini.request(0, T_IN, 100, 32 * 1024, 1024, Duration.ofSeconds(5));
            assertThat(r.status()).isEqualTo(S_OK);
            assertThat(r.usedLen()).isEqualTo(32 * 1024 + 1);
            MemorySegment expect = MemorySegment.ofArray(new byte[64 * 1024]);
            fill(expect, 64 * 1024, 42);
            assertThat(ini.data().asSlice(0, 32 * 1024).mismatch(expect.asSlice(0, 32 * 1024))).isEqualTo(-1);
        }
    }

    @Test
    void flushGetIdAndUnsupported() throws Exception {
        try (BlkInitiator ini = BlkInitiator.connect(sock(), 1, 128, 1 << 20)) {
            assertThat(ini.request(0, T_FLUSH, 0, 0, 512, Duration.ofSeconds(5)).status()).isEqualTo(S_OK);
            BlkInitiator.Completion id = ini.request(0, T_GET_ID, 0, ID_BYTES, 512, Duration.ofSeconds(5));
            assertThat(id.status()).isEqualTo(S_OK);
            assertThat(id.usedLen()).isEqualTo(ID_BYTES + 1);
            byte[] idBytes = new byte[7];
            MemorySegment.copy(ini.data(), ValueLayout.JAVA_BYTE, 0, idBytes, 0, 7);
            assertThat(new String(idBytes, StandardCharsets.US_ASCII)).isEqualTo("Malloc0");
            assertThat(ini.data().get(ValueLayout.JAVA_BYTE, 7)).isZero();
            assertThat(ini.request(0, 99, 0, 0, 512, Duration.ofSeconds(5)).status()).isEqualTo(S_UNSUPP);
            assertThat(ini.request(0, T_GET_LIFETIME, 0, 0, 512, Duration.ofSeconds(5)).status()).isEqualTo(S_UNSUPP);
        }
    }

    @Test
    void outOfRangeAndMisalignedRequestsFailWithIoErr() throws Exception {
        try (BlkInitiator ini = BlkInitiator.connect(sock(), 1, 128, 1 << 20)) {
            long cap = 64L * 2048;
            assertThat(ini.read(0, cap, 512)).isEqualTo(S_IOERR);
            assertThat(ini.read(0, cap - 1, 1024)).isEqualTo(S_IOERR);
            assertThat(ini.write(0, -1L, 512)).isEqualTo(S_IOERR);
            assertThat(ini.read(0, cap - 1, 512)).isEqualTo(S_OK);
            // data length not a multiple of 512
            assertThat(ini.request(0, T_IN, 0, 100, 512, Duration.ofSeconds(5)).status()).isEqualTo(S_IOERR);
            // the target still serves normal I/O afterwards
            assertThat(ini.read(0, 0, 4096)).isEqualTo(S_OK);
        }
    }

    @Test
    void discardAndWriteZeroes() throws Exception {
        try (BlkInitiator ini = BlkInitiator.connect(sock(), 1, 128, 1 << 20)) {
            ram.memory().asSlice(0, 1 << 20).fill((byte) 0x5a);
            MemorySegment seg = ini.data();
            // discard sectors 8..15
            seg.set(ValueLayout.JAVA_LONG_UNALIGNED, 0, 8);
            seg.set(ValueLayout.JAVA_INT_UNALIGNED, 8, 8);
            seg.set(ValueLayout.JAVA_INT_UNALIGNED, 12, 0);
            assertThat(ini.request(0, T_DISCARD, 0, 16, 16, Duration.ofSeconds(5)).status()).isEqualTo(S_OK);
            assertThat(ram.memory().get(ValueLayout.JAVA_BYTE, 8 * 512 - 1)).isEqualTo((byte) 0x5a);
            assertThat(ram.memory().asSlice(8 * 512, 8 * 512).mismatch(MemorySegment.ofArray(new byte[8 * 512]))).isEqualTo(-1);
            assertThat(ram.memory().get(ValueLayout.JAVA_BYTE, 16 * 512)).isEqualTo((byte) 0x5a);
            // discard with the unmap flag is UNSUPP (5.2.6.2)
            seg.set(ValueLayout.JAVA_INT_UNALIGNED, 12, WZ_FLAG_UNMAP);
            assertThat(ini.request(0, T_DISCARD, 0, 16, 16, Duration.ofSeconds(5)).status()).isEqualTo(S_UNSUPP);
            // write zeroes with unmap is fine
            seg.set(ValueLayout.JAVA_LONG_UNALIGNED, 0, 100);
            seg.set(ValueLayout.JAVA_INT_UNALIGNED, 8, 4);
            assertThat(ini.request(0, T_WRITE_ZEROES, 0, 16, 16, Duration.ofSeconds(5)).status()).isEqualTo(S_OK);
            assertThat(ram.memory().asSlice(100 * 512, 4 * 512).mismatch(MemorySegment.ofArray(new byte[4 * 512]))).isEqualTo(-1);
            assertThat(ram.memory().get(ValueLayout.JAVA_BYTE, 104 * 512)).isEqualTo((byte) 0x5a);
            // unknown flag bits: UNSUPP; two segments (max_discard_seg is 1): UNSUPP; past the end: IOERR
            seg.set(ValueLayout.JAVA_INT_UNALIGNED, 12, 0x2);
            assertThat(ini.request(0, T_WRITE_ZEROES, 0, 16, 16, Duration.ofSeconds(5)).status()).isEqualTo(S_UNSUPP);
            seg.set(ValueLayout.JAVA_INT_UNALIGNED, 12, 0);
            assertThat(ini.request(0, T_DISCARD, 0, 32, 32, Duration.ofSeconds(5)).status()).isEqualTo(S_UNSUPP);
            seg.set(ValueLayout.JAVA_LONG_UNALIGNED, 0, 64L * 2048 - 2);
            assertThat(ini.request(0, T_DISCARD, 0, 16, 16, Duration.ofSeconds(5)).status()).isEqualTo(S_IOERR);
        }
    }

    @Test
    void readOnlyControllerRejectsWrites() throws Exception {
        target.bdevs().register(new MallocBlockDevice("Malloc1", 2048, 512, null));
        target.createBlkController("vhost.ro", "Malloc1", true, 1, null);
        try (BlkInitiator ini = BlkInitiator.connect(dir.resolve("vhost.ro").toString(), 1, 128, 1 << 20)) {
            assertThat(ini.negotiatedFeatures() & (1L << F_RO)).isNotZero();
            assertThat(ini.negotiatedFeatures() & (1L << F_DISCARD)).isZero();
            assertThat(ini.write(0, 0, 512)).isEqualTo(S_IOERR);
            assertThat(ini.read(0, 0, 512)).isEqualTo(S_OK);
        }
    }

    @Test
    void reconnectsAfterTheFrontEndLeaves() throws Exception {
        for (int round = 0; round < 3; round++) {
            try (BlkInitiator ini = BlkInitiator.connect(sock(), 1, 128, 1 << 20)) {
                fill(ini.data(), 4096, round);
                assertThat(ini.write(0, 8 * round, 4096)).isEqualTo(S_OK);
            }
        }
        MemorySegment expect = MemorySegment.ofArray(new byte[4096]);
        fill(expect, 4096, 2);
        assertThat(ram.memory().asSlice(16 * 512, 4096).mismatch(expect)).isEqualTo(-1);
    }

    @Test
    void memoryHotplugWhileIoRunsLosesNothing() throws Exception {
        try (BlkInitiator ini = BlkInitiator.connect(sock(), 1, 128, 1 << 20);
             io.jvhost.initiator.SharedMemory extra = new io.jvhost.initiator.SharedMemory(4 << 20, 0x200000000L)) {
            java.util.concurrent.atomic.AtomicReference<Throwable> failure = new java.util.concurrent.atomic.AtomicReference<>();
            java.util.concurrent.atomic.AtomicBoolean stop = new java.util.concurrent.atomic.AtomicBoolean();
            java.util.concurrent.atomic.AtomicLong ios = new java.util.concurrent.atomic.AtomicLong();
            Thread io = new Thread(() -> {
                try {
                    long n = 0;
                    while (!stop.get()) {
                        long sector = (n * 8) % 4096;
                        fill(ini.data(), 4096, n);
                        if (ini.write(0, sector, 4096) != S_OK) throw new AssertionError("write failed at " + n);
                        ini.data().asSlice(0, 4096).fill((byte) 0);
                        if (ini.read(0, sector, 4096) != S_OK) throw new AssertionError("read failed at " + n);
                        MemorySegment expect = MemorySegment.ofArray(new byte[4096]);
                        fill(expect, 4096, n);
                        if (ini.data().asSlice(0, 4096).mismatch(expect) != -1) throw new AssertionError("data mismatch at " + n);
                        n++;
                        ios.set(n);
                    }
                } catch (Throwable t) {
                    failure.set(t);
                }
            });
            io.start();
            for (int i = 0; i < 10; i++) {
                ini.frontend().addMemRegion(extra, extra.gpaBase(), 0, extra.size());
                Thread.sleep(5);
                ini.frontend().removeMemRegion(extra, extra.gpaBase(), 0, extra.size());
                Thread.sleep(5);
            }
            // and a whole-table replacement with the same memory
            ini.frontend().setMemTable(ini.memory());
            long before = ios.get();
            long deadline = System.nanoTime() + 5_000_000_000L;
            while (ios.get() < before + 20 && failure.get() == null && System.nanoTime() < deadline) Thread.sleep(1);
            stop.set(true);
            io.join(10_000);
            assertThat(failure.get()).isNull();
            assertThat(ios.get()).isGreaterThan(before + 19);
        }
    }

    @Test
    void buffersInAnAddedRegionWorkAndFailAfterItIsRemoved() throws Exception {
        try (BlkInitiator ini = BlkInitiator.connect(sock(), 1, 128, 1 << 20);
             io.jvhost.initiator.SharedMemory extra = new io.jvhost.initiator.SharedMemory(1 << 20, 0x300000000L)) {
            ini.frontend().addMemRegion(extra, extra.gpaBase(), 0, extra.size());
            var q = ini.queue(0);
            MemorySegment hdr = ini.data();
            hdr.set(ValueLayout.JAVA_INT_UNALIGNED, 0, T_OUT);
            hdr.set(ValueLayout.JAVA_LONG_UNALIGNED, 8, 40);
            fill(extra.segment(), 8192, 99);
            q.begin(3);
            q.add(ini.dataGpa(), 16, false);
            q.add(extra.gpa(0), 8192, false);
            q.add(ini.dataGpa() + 100, 1, true);
            int head = q.end();
            q.publish();
            io.jvhost.sys.EventFd.signal(ini.kickFd(0), java.lang.foreign.Arena.ofAuto().allocate(8));
            ini.waitFor(0, head, Duration.ofSeconds(5));
            assertThat(ini.data().get(ValueLayout.JAVA_BYTE, 100)).isEqualTo((byte) S_OK);
            assertThat(ram.memory().asSlice(40 * 512, 8192).mismatch(extra.segment().asSlice(0, 8192))).isEqualTo(-1);
            ini.frontend().removeMemRegion(extra, extra.gpaBase(), 0, extra.size());
            ini.data().set(ValueLayout.JAVA_BYTE, 100, (byte) 0x77);
            q.begin(3);
            q.add(ini.dataGpa(), 16, false);
            q.add(extra.gpa(0), 8192, false);
            q.add(ini.dataGpa() + 100, 1, true);
            head = q.end();
            q.publish();
            io.jvhost.sys.EventFd.signal(ini.kickFd(0), java.lang.foreign.Arena.ofAuto().allocate(8));
            ini.waitFor(0, head, Duration.ofSeconds(5));
            // returned unprocessed (length 0): the status byte is untouched
            assertThat(ini.data().get(ValueLayout.JAVA_BYTE, 100)).isEqualTo((byte) 0x77);
            assertThat(ini.write(0, 0, 512)).isEqualTo(S_OK);
        }
    }

    @Test
    void aHeaderSplitOverDescriptorsIsReadLikeAWholeOne() throws Exception {
        try (BlkInitiator ini = BlkInitiator.connect(sock(), 1, 128, 1 << 20)) {
            var q = ini.queue(0);
            MemorySegment d = ini.data();
            // Header at 0 (16 bytes), data at 4096, status at 100.
            d.set(ValueLayout.JAVA_INT_UNALIGNED, 0, T_OUT);
            d.set(ValueLayout.JAVA_INT_UNALIGNED, 4, 0);
            d.set(ValueLayout.JAVA_LONG_UNALIGNED, 8, 40);
            fill(d.asSlice(4096), 4096, 7);
            q.begin(4);
            q.add(ini.dataGpa(), 5, false);        // type and one byte of ioprio
            q.add(ini.dataGpa() + 5, 11, false);   // the rest of ioprio and the sector
            q.add(ini.dataGpa() + 4096, 4096, false);
            q.add(ini.dataGpa() + 100, 1, true);
            int head = q.end();
            q.publish();
            io.jvhost.sys.EventFd.signal(ini.kickFd(0), java.lang.foreign.Arena.ofAuto().allocate(8));
            ini.waitFor(0, head, Duration.ofSeconds(5));
            assertThat(d.get(ValueLayout.JAVA_BYTE, 100)).isEqualTo((byte) S_OK);
            MemorySegment expect = MemorySegment.ofArray(new byte[4096]);
            fill(expect, 4096, 7);
            assertThat(ram.memory().asSlice(40 * 512, 4096).mismatch(expect)).isEqualTo(-1);

            // The same sector read back with the header split 12 + 4 (type and ioprio, then half the sector).
            d.asSlice(4096, 4096).fill((byte) 0);
            d.set(ValueLayout.JAVA_INT_UNALIGNED, 0, T_IN);
            q.begin(4);
            q.add(ini.dataGpa(), 12, false);
            q.add(ini.dataGpa() + 12, 4, false);
            q.add(ini.dataGpa() + 4096, 4096, true);
            q.add(ini.dataGpa() + 100, 1, true);
            head = q.end();
            q.publish();
            io.jvhost.sys.EventFd.signal(ini.kickFd(0), java.lang.foreign.Arena.ofAuto().allocate(8));
            ini.waitFor(0, head, Duration.ofSeconds(5));
            assertThat(d.get(ValueLayout.JAVA_BYTE, 100)).isEqualTo((byte) S_OK);
            assertThat(d.asSlice(4096, 4096).mismatch(expect)).isEqualTo(-1);
            // And whole (one 16-byte descriptor), through the in-place header path.
            assertThat(ini.read(0, 40, 4096)).isEqualTo(S_OK);
            assertThat(d.asSlice(0, 4096).mismatch(expect)).isEqualTo(-1);
        }
    }
}
