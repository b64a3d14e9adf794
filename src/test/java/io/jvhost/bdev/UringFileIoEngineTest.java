package io.jvhost.bdev;

import io.jvhost.sys.Errno;
import io.jvhost.sys.IoUring;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.IdentityHashMap;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

/**
 * The io_uring file engine through its channel: a small ring wrapping around many times,
 * short transfers resubmitted, failed and end-of-file completions, O_DIRECT with the per-request
 * buffered fallback, and the zero-writing fallback of WRITE_ZEROES.
 */
class UringFileIoEngineTest {
    @TempDir
    Path dir;

    private final Arena arena = Arena.ofShared();
    private FileBlockDevice dev;
    private BlockChannel ch;
    private UringFileIoEngine engine;
    /** Completions per request (identity). */
    private final Map<BlockRequest, int[]> done = new IdentityHashMap<>();
    private int completions;

    @BeforeEach
    void needIoUring() {
        Assumptions.assumeTrue(IoUring.unavailableReason() == null, () -> "io_uring unavailable here: " + IoUring.unavailableReason());
    }

    @AfterEach
    void tearDown() {
        if (ch != null) ch.close();
        if (dev != null) dev.close();
        arena.close();
    }

    private void open(int entries, UringFileIoEngine.ResultFilter filter) throws Exception {
        Path f = dir.resolve("disk.img");
        Files.write(f, new byte[1 << 20]);
        dev = new FileBlockDevice(FileBlockDevice.Kind.URING, "U", f.toString(), 512, false, null, new FileIoEngine.Factory() {
            @Override
            public FileIoEngine create(String name, FileOps ops) {
                throw new UnsupportedOperationException();
            }

            @Override
            public FileIoEngine create(String name, FileOps ops, FileHandles file) {
                return engine = new UringFileIoEngine(name, file, entries, filter);
            }
        });
        ch = dev.openChannel();
    }

    private Path file() {
        return dir.resolve("disk.img");
    }

    private BlockRequest request() {
        BlockRequest r = new BlockRequest(8);
        r.completion((q, st) -> {
            done.computeIfAbsent(q, k -> new int[] {0, 1}); // {count, status}
            int[] c = done.get(q);
            c[0]++;
            c[1] = st;
            completions++;
        });
        return r;
    }

    private int status(BlockRequest r) {
        int[] c = done.get(r);
        assertThat(c).as("completed").isNotNull();
        assertThat(c[0]).as("exactly one completion").isEqualTo(1);
        return c[1];
    }

    private void pollUntil(int n) {
        await().atMost(Duration.ofSeconds(20)).pollInSameThread().pollInterval(Duration.ofMillis(1)).until(() -> {
            ch.poll();
            return completions >= n;
        });
    }

    private static void pattern(MemorySegment s, int seed) {
        for (long i = 0; i < s.byteSize(); i++) s.set(ValueLayout.JAVA_BYTE, i, (byte) (seed * 31 + i * 7));
    }

    @Test
    void aFourEntryRingServesHundredsOfRequestsRefusingOnlyBeyondItsDepth() throws Exception {
        open(4, null);
        MemorySegment[] bufs = new MemorySegment[4];
        BlockRequest[] reqs = new BlockRequest[5];
        for (int i = 0; i < 4; i++) bufs[i] = arena.allocate(4096, 4096);
        for (int i = 0; i < 5; i++) reqs[i] = request();
        int rounds = 150; // 600 writes + 600 reads through a 4-entry SQ / 8-entry CQ
        for (int round = 0; round < rounds; round++) {
            done.clear();
            completions = 0;
            for (int i = 0; i < 4; i++) {
                pattern(bufs[i], round * 4 + i);
                reqs[i].reset(BlockRequest.Op.WRITE, 4096L * ((round * 4 + i) % 256));
                reqs[i].addBuffer(bufs[i], 0, 4096);
                assertThat(ch.submit(reqs[i])).isZero();
            }
            reqs[4].reset(BlockRequest.Op.READ, 0);
            reqs[4].addBuffer(arena.allocate(512), 0, 512);
            assertThat(ch.submit(reqs[4])).as("a fifth request while four are in flight").isEqualTo(-Errno.EAGAIN);
            assertThat(ch.inFlight()).isEqualTo(4);
            pollUntil(4);
            for (int i = 0; i < 4; i++) assertThat(status(reqs[i])).isZero();
            // read back into zeroed buffers
            done.clear();
            completions = 0;
            for (int i = 0; i < 4; i++) {
                bufs[i].fill((byte) 0);
                reqs[i].reset(BlockRequest.Op.READ, 4096L * ((round * 4 + i) % 256));
                reqs[i].addBuffer(bufs[i], 0, 4096);
                assertThat(ch.submit(reqs[i])).isZero();
            }
            pollUntil(4);
            MemorySegment expect = arena.allocate(4096);
            for (int i = 0; i < 4; i++) {
                assertThat(status(reqs[i])).isZero();
                pattern(expect, round * 4 + i);
                assertThat(bufs[i].mismatch(expect)).as("round %d request %d", round, i).isEqualTo(-1);
            }
            assertThat(ch.inFlight()).isZero();
        }
        assertThat(engine.lastOpened.directIos).as("aligned requests went O_DIRECT").isEqualTo(rounds * 8L);
    }

    @Test
    void shortTransfersAreResubmittedForTheRestAndTheDataIsWhole() throws Exception {
        int[] calls = {0};
        // Every first completion of a transfer reports only 700 bytes done (a split inside the
        // second buffer), and makes that true: a read's bytes after 700 are wiped from the guest
        // buffers, a write's are overwritten with garbage in the file. Only a correct resubmission
        // of exactly the rest (offset and iovecs advanced) leaves whole data behind.
        open(8, (r, res) -> {
            if (calls[0]++ % 2 != 0 || res <= 700) return res;
            if (r.op == BlockRequest.Op.READ) {
                MemorySegment zeros = MemorySegment.ofArray(new byte[(int) r.length]);
                r.buffers().copyIn(0, r.bufferCount(), 700, zeros, 0, r.length - 700);
            } else {
                try (FileChannel fc = FileChannel.open(file(), StandardOpenOption.WRITE)) {
                    byte[] junk = new byte[(int) r.length - 700];
                    java.util.Arrays.fill(junk, (byte) 0xee);
                    fc.write(java.nio.ByteBuffer.wrap(junk), r.offset + 700);
                } catch (java.io.IOException e) {
                    throw new java.io.UncheckedIOException(e);
                }
            }
            return 700;
        });
        MemorySegment buf = arena.allocate(8192, 4096);
        pattern(buf, 5);
        BlockRequest w = request();
        w.reset(BlockRequest.Op.WRITE, 4096);
        w.addBuffer(buf, 0, 512);
        w.addBuffer(buf, 4096, 4096);
        w.addBuffer(buf, 512, 3584);
        assertThat(ch.submit(w)).isZero();
        pollUntil(1);
        assertThat(status(w)).isZero();
        byte[] file = Files.readAllBytes(file());
        for (int i = 0; i < 512; i++) assertThat(file[4096 + i]).isEqualTo(buf.get(ValueLayout.JAVA_BYTE, i));
        for (int i = 0; i < 4096; i++) assertThat(file[4608 + i]).isEqualTo(buf.get(ValueLayout.JAVA_BYTE, 4096 + i));
        for (int i = 0; i < 3584; i++) assertThat(file[8704 + i]).isEqualTo(buf.get(ValueLayout.JAVA_BYTE, 512 + i));

        MemorySegment back = arena.allocate(8192, 4096);
        BlockRequest rd = request();
        rd.reset(BlockRequest.Op.READ, 4096);
        rd.addBuffer(back, 0, 8192);
        assertThat(ch.submit(rd)).isZero();
        pollUntil(2);
        assertThat(status(rd)).isZero();
        for (int i = 0; i < 8192; i++) assertThat(back.get(ValueLayout.JAVA_BYTE, i)).isEqualTo(file[4096 + i]);
        assertThat(engine.lastOpened.resubmits).as("one resubmission per request").isEqualTo(2);
    }

    @Test
    void aFailedCompletionFailsOnlyItsRequestAndEndOfFileIsEio() throws Exception {
        open(8, (r, res) -> r.tag == 7 ? -Errno.EIO : res);
        BlockRequest bad = request(), good = request();
        bad.tag = 7;
        bad.reset(BlockRequest.Op.WRITE, 0);
        bad.addBuffer(arena.allocate(4096, 4096), 0, 4096);
        good.reset(BlockRequest.Op.WRITE, 4096);
        good.addBuffer(arena.allocate(4096, 4096), 0, 4096);
        assertThat(ch.submit(bad)).isZero();
        assertThat(ch.submit(good)).isZero();
        pollUntil(2);
        assertThat(status(bad)).isEqualTo(-Errno.EIO);
        assertThat(status(good)).isZero();

        // The file shrinks under the device: a read beyond its new end transfers nothing: EIO, not a hang.
        try (FileChannel fc = FileChannel.open(file(), StandardOpenOption.WRITE)) {
            fc.truncate(512 << 10);
        }
        BlockRequest past = request();
        past.reset(BlockRequest.Op.READ, 768 << 10);
        past.addBuffer(arena.allocate(4096, 4096), 0, 4096);
        assertThat(ch.submit(past)).isZero();
        pollUntil(3);
        assertThat(status(past)).isEqualTo(-Errno.EIO);
        assertThat(ch.inFlight()).isZero();
    }

    @Test
    void unalignedGuestBuffersFallBackToTheBufferedFdPerRequestAndNeverFail() throws Exception {
        open(8, null);
        assertThat(dev.directIo()).as("ext4/xfs temp dirs allow O_DIRECT").isTrue();
        MemorySegment big = arena.allocate(3 * 4096, 4096);
        MemorySegment aligned = big.asSlice(0, 4096);
        pattern(aligned, 1);
        MemorySegment odd = big.asSlice(4096 + 3, 4096); // address not aligned to 512
        pattern(odd, 2);
        BlockRequest a = request(), u = request(), shortLen = request();
        a.reset(BlockRequest.Op.WRITE, 0);
        a.addBuffer(aligned, 0, 4096);
        u.reset(BlockRequest.Op.WRITE, 8192);
        u.addBuffer(odd, 0, 4096);
        shortLen.reset(BlockRequest.Op.WRITE, 16384);
        shortLen.addBuffer(aligned, 0, 100); // a length that is no multiple of the alignment
        assertThat(ch.submit(a)).isZero();
        assertThat(ch.submit(u)).isZero();
        assertThat(ch.submit(shortLen)).isZero();
        pollUntil(3);
        assertThat(status(a)).isZero();
        assertThat(status(u)).isZero();
        assertThat(status(shortLen)).isZero();
        UringFileIoEngine.Channel c = engine.lastOpened;
        assertThat(c.directIos).isEqualTo(1);
        assertThat(c.bufferedIos).isEqualTo(2);
        byte[] file = Files.readAllBytes(file());
        for (int i = 0; i < 4096; i++) {
            assertThat(file[i]).isEqualTo(aligned.get(ValueLayout.JAVA_BYTE, i));
            assertThat(file[8192 + i]).isEqualTo(odd.get(ValueLayout.JAVA_BYTE, i));
        }
        for (int i = 0; i < 100; i++) assertThat(file[16384 + i]).isEqualTo(aligned.get(ValueLayout.JAVA_BYTE, i));
        // Reading the buffered write back through O_DIRECT sees it (the kernel keeps both coherent).
        BlockRequest r = request();
        MemorySegment back = arena.allocate(4096, 4096);
        r.reset(BlockRequest.Op.READ, 8192);
        r.addBuffer(back, 0, 4096);
        assertThat(ch.submit(r)).isZero();
        pollUntil(4);
        assertThat(status(r)).isZero();
        assertThat(c.directIos).isEqualTo(2);
        assertThat(back.mismatch(odd)).isEqualTo(-1);
    }

    @Test
    void writeZeroesFallsBackToWritingZerosWhereFallocateIsRefused() throws Exception {
        boolean[] refused = {false};
        open(8, (r, res) -> {
            if (r.op == BlockRequest.Op.WRITE_ZEROES && !refused[0]) {
                refused[0] = true;
                return -Errno.ENOTSUP;
            }
            return res;
        });
        Path f = file();
        byte[] ones = new byte[1 << 20];
        java.util.Arrays.fill(ones, (byte) 0x5a);
        Files.write(f, ones);
        BlockRequest z = request(), u = request(), fl = request();
        z.reset(BlockRequest.Op.WRITE_ZEROES, 4096);
        z.length = 600 << 10;
        u.reset(BlockRequest.Op.UNMAP, 700 << 10);
        u.length = 64 << 10;
        fl.reset(BlockRequest.Op.FLUSH, 0);
        assertThat(ch.submit(z)).isZero();
        assertThat(ch.submit(u)).isZero();
        assertThat(ch.submit(fl)).isZero();
        pollUntil(3);
        assertThat(status(z)).isZero();
        assertThat(status(u)).isZero();
        assertThat(status(fl)).isZero();
        assertThat(refused[0]).isTrue();
        byte[] file = Files.readAllBytes(f);
        assertThat(file[4095]).isEqualTo((byte) 0x5a);
        for (int i = 4096; i < 4096 + (600 << 10); i++) assertThat(file[i]).as("byte %d", i).isZero();
        assertThat(file[4096 + (600 << 10)]).isEqualTo((byte) 0x5a);
        for (int i = 700 << 10; i < (764 << 10); i++) assertThat(file[i]).as("punched byte %d", i).isZero();
        assertThat(file[764 << 10]).isEqualTo((byte) 0x5a);
    }

    @Test
    void steadyStateSubmitAndPollAllocateNothing() throws Exception {
        open(8, null);
        var mx = (com.sun.management.ThreadMXBean) java.lang.management.ManagementFactory.getThreadMXBean();
        int[] count = {0};
        BlockRequest r = new BlockRequest(4);
        r.completion((q, st) -> {
            if (st != 0) throw new AssertionError("status " + st);
            count[0]++;
        });
        MemorySegment buf = arena.allocate(8192, 4096);
        MemorySegment odd = arena.allocate(8192, 4096).asSlice(100, 4096); // the buffered path too
        for (int phase = 0; phase < 2; phase++) {
            int n = phase == 0 ? 20000 : 5000;
            long before = mx.getCurrentThreadAllocatedBytes();
            for (int i = 0; i < n; i++) {
                r.reset((i & 1) == 0 ? BlockRequest.Op.WRITE : BlockRequest.Op.READ, 4096L * (i % 200));
                if ((i & 2) == 0) r.addBuffer(buf, 0, 4096);
                else r.addBuffer(odd, 0, 4096);
                int want = count[0] + 1;
                if (ch.submit(r) != 0) throw new AssertionError("submit refused");
                while (count[0] < want) ch.poll();
            }
            long bytes = mx.getCurrentThreadAllocatedBytes() - before;
            if (phase == 1) {
                System.out.printf("uring engine: %d B over %d requests (fixed %d, registrations %d, refused %d)%n", bytes, n, engine.lastOpened.fixedIos, engine.lastOpened.fixedBuffers().registrations, engine.lastOpened.fixedBuffers().refusals);
                assertThat((double) bytes / n).as("bytes allocated per request (%d in total)", bytes).isLessThan(1.0);
            }
        }
    }

    /**
     * Writes {@code seed}'s pattern from {@code mem} at {@code wOff} to the device at
     * {@code offset}, reads it back into {@code mem} at {@code rOff} (cleared first); both must
     * succeed and the bytes match. One segment object, as guest memory regions are.
     */
    private void writeThenReadBack(MemorySegment mem, long wOff, long rOff, long len, long offset, int seed) {
        pattern(mem.asSlice(wOff, len), seed);
        mem.asSlice(rOff, len).fill((byte) 0);
        BlockRequest w = request(), r = request();
        w.reset(BlockRequest.Op.WRITE, offset);
        w.addBuffer(mem, wOff, len);
        assertThat(ch.submit(w)).isZero();
        pollUntil(completions + 1);
        assertThat(status(w)).as("write status").isZero();
        r.reset(BlockRequest.Op.READ, offset);
        r.addBuffer(mem, rOff, len);
        assertThat(ch.submit(r)).isZero();
        pollUntil(completions + 1);
        assertThat(status(r)).as("read status").isZero();
        assertThat(mem.asSlice(rOff, len).mismatch(mem.asSlice(wOff, len))).as("read back what was written").isEqualTo(-1);
    }

    @Test
    void singleBufferRequestsGoOnFixedBuffersRegisteringEachChunkOnce() throws Exception {
        open(8, null);
        UringFileIoEngine.Channel c = engine.lastOpened;
        assertThat(c.fixedBuffers()).as("fixed buffers on this kernel").isNotNull();
        MemorySegment mem = arena.allocate(64 << 10, 4096);
        for (int i = 0; i < 4; i++) writeThenReadBack(mem, 0, 32 << 10, 16 << 10, 4096L * i, i);
        assertThat(c.fixedIos).as("all 8 on fixed buffers").isEqualTo(8);
        assertThat(c.fixedBuffers().registrations).as("64 KiB: one chunk, or two if it straddles a 4 MiB boundary").isBetween(1L, 2L);
        // another segment object over the same chunk (a slice) does not take the slot over: unregistered
        MemorySegment other = mem.asSlice(0, 48 << 10);
        long regs = c.fixedBuffers().registrations;
        writeThenReadBack(other, 0, 16 << 10, 8192, 0, 9);
        assertThat(c.fixedBuffers().registrations).isEqualTo(regs);
        assertThat(c.fixedFallbacks).isZero();
    }

    @Test
    void aBufferAcrossTwoChunksAndMemoryThatCannotBeRegisteredGoUnregisteredAndStillWork() throws Exception {
        open(8, null);
        UringFileIoEngine.Channel c = engine.lastOpened;
        // 8 KiB straddling a 4 MiB boundary
        MemorySegment big = arena.allocate(3 * UringFixedBuffers.CHUNK, UringFixedBuffers.CHUNK);
        writeThenReadBack(big, UringFixedBuffers.CHUNK - 4096, 2 * UringFixedBuffers.CHUNK, 8192, 0, 1);
        assertThat(c.fixedIos).as("only the read inside one chunk is fixed").isEqualTo(1);
        // a file mapping on the disk file system: the kernel will not pin it for long
        Path mf = dir.resolve("mapped");
        Files.write(mf, new byte[64 << 10]);
        Assumptions.assumeFalse("tmpfs".equals(Files.getFileStore(mf).type()), "shmem mappings can be pinned");
        try (FileChannel fc = FileChannel.open(mf, StandardOpenOption.READ, StandardOpenOption.WRITE); Arena ma = Arena.ofConfined()) {
            MemorySegment m = fc.map(FileChannel.MapMode.READ_WRITE, 0, 64 << 10, ma);
            writeThenReadBack(m, 0, 8192, 4096, 8192, 2);
            assertThat(c.fixedBuffers().refusals).isEqualTo(1);
            assertThat(c.fixedIos).as("nothing more on fixed buffers").isEqualTo(1);
            assertThat(c.fixedBuffers().on()).as("one refused chunk does not turn registration off").isTrue();
        }
    }

    @Test
    void withRegistrationOffRequestsGoUnregistered() throws Exception {
        open(8, null);
        UringFileIoEngine.Channel c = engine.lastOpened;
        c.fixedBuffers().turnOffForTest();
        MemorySegment mem = arena.allocate(16 << 10, 4096);
        writeThenReadBack(mem, 0, 8192, 8192, 4096, 3);
        assertThat(c.fixedIos).isZero();
        assertThat(c.fixedBuffers().registrations).isZero();
    }

    @Test
    void aFixedTransferTheKernelFaultsIsRedoneUnregistered() throws Exception {
        int[] faults = {0};
        open(8, (r, res) -> r.op == BlockRequest.Op.READ && faults[0]++ == 0 ? -Errno.EFAULT : res);
        UringFileIoEngine.Channel c = engine.lastOpened;
        MemorySegment mem = arena.allocate(16 << 10, 4096);
        writeThenReadBack(mem, 0, 8192, 8192, 0, 4);
        assertThat(c.fixedFallbacks).isEqualTo(1);
        assertThat(c.fixedIos).isEqualTo(2);
    }
}
