package io.jvhost.sys;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

/** The raw io_uring wrapper on its own: ring indices wrapping, batching, data ops, the CQ eventfd. */
class IoUringTest {
    @TempDir
    Path dir;

    private final Arena arena = Arena.ofConfined();
    private final List<long[]> completions = new ArrayList<>();
    private final IoUring.CompletionHandler record = (userData, res) -> completions.add(new long[] {userData, res});

    @BeforeEach
    void needIoUring() {
        Assumptions.assumeTrue(IoUring.unavailableReason() == null, () -> "io_uring unavailable here: " + IoUring.unavailableReason());
    }

    @AfterEach
    void close() {
        arena.close();
    }

    @Test
    void aSmallRingWrapsAroundManyTimesAndDeliversEveryCompletionOnceInOrder() {
        try (IoUring ring = IoUring.create(4, 8)) {
            assertThat(ring.sqEntries()).isEqualTo(4);
            assertThat(ring.cqEntries()).isEqualTo(8);
            int total = 1003; // not a multiple of the ring size: the indices end mid-ring
            long next = 0;
            int batches = 0;
            while (next < total) {
                int prepared = 0;
                while (next < total && ring.prepare(IoUring.OP_NOP, (byte) 0, -1, 0, 0, 0, 0, next)) {
                    next++;
                    prepared++;
                }
                assertThat(prepared).as("a full SQ refuses the fifth entry").isBetween(1, 4);
                assertThat(ring.sqSpace()).as("prepared entries hold their SQ slots until submitted").isEqualTo(4 - prepared);
                assertThat(ring.submit()).as("one enter takes the whole batch").isEqualTo(prepared);
                assertThat(ring.unsubmitted()).isZero();
                batches++;
                // NOPs complete inline: the CQ holds the batch; reap it all.
                assertThat(ring.ready()).isEqualTo(prepared);
                assertThat(ring.reap(record, 100)).isEqualTo(prepared);
            }
            assertThat(batches).isGreaterThanOrEqualTo(total / 4);
            assertThat(completions).hasSize(total);
            for (int i = 0; i < total; i++) {
                assertThat(completions.get(i)[0]).as("user_data of completion %d", i).isEqualTo(i);
                assertThat(completions.get(i)[1]).isZero();
            }
            assertThat(ring.submit()).as("nothing pending: no system call, 0").isZero();
        }
    }

    @Test
    void completionsBeyondWhatIsReapedStayInTheCqForTheNextReap() {
        try (IoUring ring = IoUring.create(4, 8)) {
            for (int round = 0; round < 50; round++) {
                for (int i = 0; i < 4; i++) assertThat(ring.prepare(IoUring.OP_NOP, (byte) 0, -1, 0, 0, 0, 0, round * 4L + i)).isTrue();
                assertThat(ring.submit()).isEqualTo(4);
                assertThat(ring.reap(record, 3)).isEqualTo(3);
                assertThat(ring.reap(record, 3)).isEqualTo(1);
            }
            assertThat(completions).hasSize(200);
            for (int i = 0; i < 200; i++) assertThat(completions.get(i)[0]).isEqualTo(i);
        }
    }

    @Test
    void readvWritevFsyncAndFallocateOnRegisteredFilesWithTheEventFdSignalled() throws Exception {
        Path f = dir.resolve("data");
        Files.write(f, new byte[64 << 10]);
        int fd = Fd.open(f.toString(), Fd.O_RDWR, 0);
        int efd = EventFd.create(true);
        MemorySegment scratch = EventFd.scratch(arena);
        try (IoUring ring = IoUring.create(8, 16)) {
            ring.registerFiles(fd);
            ring.registerEventFd(efd);
            MemorySegment a = arena.allocate(4096, 4096), b = arena.allocate(4096, 4096);
            for (int i = 0; i < 4096; i++) {
                a.set(ValueLayout.JAVA_BYTE, i, (byte) i);
                b.set(ValueLayout.JAVA_BYTE, i, (byte) (255 - i));
            }
            MemorySegment iov = arena.allocate(32, 8);
            iov.set(ValueLayout.JAVA_LONG, 0, a.address());
            iov.set(ValueLayout.JAVA_LONG, 8, 4096);
            iov.set(ValueLayout.JAVA_LONG, 16, b.address());
            iov.set(ValueLayout.JAVA_LONG, 24, 4096);
            assertThat(ring.prepare(IoUring.OP_WRITEV, IoUring.IOSQE_FIXED_FILE, 0, 8192, iov.address(), 2, 0, 1)).isTrue();
            assertThat(ring.submitAndWait(1)).isEqualTo(1);
            assertThat(ring.reap(record, 10)).isEqualTo(1);
            assertThat(completions.get(0)).containsExactly(1, 8192);
            assertThat(EventFd.drain(efd, scratch)).as("the kernel signalled the CQ eventfd").isPositive();

            MemorySegment back = arena.allocate(8192, 4096);
            assertThat(ring.prepare(IoUring.OP_READ, IoUring.IOSQE_FIXED_FILE, 0, 8192, back.address(), 8192, 0, 2)).isTrue();
            assertThat(ring.prepare(IoUring.OP_FSYNC, IoUring.IOSQE_FIXED_FILE, 0, 0, 0, 0, IoUring.IORING_FSYNC_DATASYNC, 3)).isTrue();
            assertThat(ring.submit()).isEqualTo(2);
            while (completions.size() < 3) {
                if (ring.ready() == 0) ring.submitAndWait(1);
                ring.reap(record, 10);
            }
            assertThat(completions.get(1)).containsExactly(2, 8192);
            assertThat(completions.get(2)).containsExactly(3, 0);
            assertThat(back.asSlice(0, 4096).mismatch(a)).isEqualTo(-1);
            assertThat(back.asSlice(4096, 4096).mismatch(b)).isEqualTo(-1);

            // FALLOCATE: off = offset, addr = length, len = mode
            assertThat(ring.prepare(IoUring.OP_FALLOCATE, IoUring.IOSQE_FIXED_FILE, 0, 8192, 4096,
                    Fd.FALLOC_FL_PUNCH_HOLE | Fd.FALLOC_FL_KEEP_SIZE, 0, 4)).isTrue();
            assertThat(ring.submitAndWait(1)).isEqualTo(1);
            ring.reap(record, 10);
            assertThat(completions.get(3)).containsExactly(4, 0);
            byte[] file = Files.readAllBytes(f);
            assertThat(file).hasSize(64 << 10);
            for (int i = 8192; i < 12288; i++) assertThat(file[i]).isZero();
            assertThat(file[12288 + 1]).isEqualTo((byte) 254);

            // A failed operation completes with -errno in res (fixed file index out of range: EBADF).
            assertThat(ring.prepare(IoUring.OP_READ, IoUring.IOSQE_FIXED_FILE, 5, 0, back.address(), 512, 0, 5)).isTrue();
            ring.submit();
            while (completions.size() < 5) {
                if (ring.ready() == 0) ring.submitAndWait(1);
                ring.reap(record, 10);
            }
            assertThat(completions.get(4)[0]).isEqualTo(5);
            assertThat(completions.get(4)[1]).isEqualTo(-Errno.EBADF);
        } finally {
            Fd.closeQuietly(fd);
            Fd.closeQuietly(efd);
        }
    }

    @Test
    void aKernelRefusingTheTaskRunFlagsStillGivesAWorkingRing() {
        // DEFER_TASKRUN without SINGLE_ISSUER is invalid on every kernel (EINVAL): set-up retries without them.
        try (IoUring ring = IoUring.create(4, 8, IoUring.IORING_SETUP_DEFER_TASKRUN)) {
            assertThat(ring.setupFlags() & IoUring.IORING_SETUP_DEFER_TASKRUN).isZero();
            assertThat(ring.taskRunPending()).as("no TASKRUN_FLAG: never pending").isFalse();
            assertThat(ring.prepare(IoUring.OP_NOP, (byte) 0, -1, 0, 0, 0, 0, 7)).isTrue();
            assertThat(ring.submitAndFlush()).isEqualTo(1);
            assertThat(ring.reap(record, 4)).isEqualTo(1);
            assertThat(completions.get(0)).containsExactly(7, 0);
        }
        try (IoUring ring = IoUring.create(4, 8)) {
            assertThat(ring.setupFlags() & IoUring.DEFAULT_TASKRUN).as("this kernel (5.19+) takes the default COOP_TASKRUN|TASKRUN_FLAG")
                    .isEqualTo(IoUring.DEFAULT_TASKRUN);
        }
    }

    @Test
    void fixedReadsAndWritesGoThroughASparseBufferTableSlotBySlot() throws Exception {
        Path f = dir.resolve("fixed");
        Files.write(f, new byte[64 << 10]);
        int fd = Fd.open(f.toString(), Fd.O_RDWR, 0);
        MemorySegment scratch = arena.allocate(48, 8);
        try (IoUring ring = IoUring.create(8, 16)) {
            ring.registerFiles(fd);
            ring.registerSparseBuffers(4);
            assertThat(ring.registeredBuffers()).isEqualTo(4);
            MemorySegment buf = arena.allocate(16384, 4096);
            for (int i = 0; i < 8192; i++) buf.set(ValueLayout.JAVA_BYTE, i, (byte) (i * 13));
            ring.updateBuffer(2, buf.address(), buf.byteSize(), scratch);
            // WRITE_FIXED from the first 8 KiB of slot 2, READ_FIXED back into its second 8 KiB
            assertThat(ring.prepare(IoUring.OP_WRITE_FIXED, IoUring.IOSQE_FIXED_FILE, 0, 4096, buf.address(), 8192, 0, 1, 2)).isTrue();
            ring.submitAndWait(1);
            ring.reap(record, 4);
            assertThat(ring.prepare(IoUring.OP_READ_FIXED, IoUring.IOSQE_FIXED_FILE, 0, 4096, buf.address() + 8192, 8192, 0, 2, 2)).isTrue();
            ring.submitAndWait(1);
            ring.reap(record, 4);
            assertThat(completions).containsExactly(new long[] {1, 8192}, new long[] {2, 8192});
            assertThat(buf.asSlice(8192, 8192).mismatch(buf.asSlice(0, 8192))).isEqualTo(-1);
            byte[] file = Files.readAllBytes(f);
            assertThat(file[4096 + 5]).isEqualTo((byte) (5 * 13));

            // beyond the registered buffer, or in an empty slot: EFAULT from the kernel, not a stray access
            assertThat(ring.prepare(IoUring.OP_READ_FIXED, IoUring.IOSQE_FIXED_FILE, 0, 0, buf.address() + 12288, 8192, 0, 3, 2)).isTrue();
            assertThat(ring.prepare(IoUring.OP_READ_FIXED, IoUring.IOSQE_FIXED_FILE, 0, 0, buf.address(), 4096, 0, 4, 1)).isTrue();
            ring.submit();
            while (completions.size() < 4) {
                if (ring.ready() == 0) ring.submitAndWait(1);
                ring.reap(record, 4);
            }
            assertThat(completions.get(2)).containsExactly(3, -Errno.EFAULT);
            assertThat(completions.get(3)[1]).as("an empty slot").isNegative();

            // emptying slot 2: the same read that worked now fails
            ring.updateBuffer(2, 0, 0, scratch);
            assertThat(ring.prepare(IoUring.OP_READ_FIXED, IoUring.IOSQE_FIXED_FILE, 0, 4096, buf.address() + 8192, 8192, 0, 5, 2)).isTrue();
            ring.submitAndWait(1);
            ring.reap(record, 4);
            assertThat(completions.get(4)[0]).isEqualTo(5);
            assertThat(completions.get(4)[1]).isNegative();
            ring.unregisterBuffers();
            assertThat(ring.registeredBuffers()).isZero();
        } finally {
            Fd.closeQuietly(fd);
        }
    }

    @Test
    void aFileMappingOnADiskFileSystemCannotBeRegistered() throws Exception {
        Path f = dir.resolve("mapped");
        Files.write(f, new byte[1 << 20]);
        Assumptions.assumeFalse("tmpfs".equals(Files.getFileStore(f).type()), "shmem mappings can be pinned");
        MemorySegment scratch = arena.allocate(48, 8);
        try (var fc = java.nio.channels.FileChannel.open(f, java.nio.file.StandardOpenOption.READ, java.nio.file.StandardOpenOption.WRITE);
             Arena mapArena = Arena.ofConfined();
             IoUring ring = IoUring.create(4, 8)) {
            MemorySegment m = fc.map(java.nio.channels.FileChannel.MapMode.READ_WRITE, 0, 1 << 20, mapArena);
            ring.registerSparseBuffers(2);
            org.assertj.core.api.Assertions.assertThatThrownBy(() -> ring.updateBuffer(0, m.address(), m.byteSize(), scratch))
                    .isInstanceOf(NativeException.class);
        }
    }
}
