package io.jvhost.vhost;

import io.jvhost.bdev.BlockChannel;
import io.jvhost.bdev.BlockRequest;
import io.jvhost.bdev.FileBlockDevice;
import io.jvhost.bdev.FileHandles;
import io.jvhost.bdev.FileIoEngine;
import io.jvhost.bdev.FileOps;
import io.jvhost.bdev.LoopDevice;
import io.jvhost.bdev.MallocBlockDevice;
import io.jvhost.initiator.BlkInitiator;
import io.jvhost.runtime.IdleStrategy;
import io.jvhost.sys.IoUring;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import static io.jvhost.virtio.BlkLayout.S_OK;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

/**
 * The reactor never blocks on a slow disk: a file bdev on a really stalled store (an ext4 file
 * system on a loop device, frozen with fsfreeze, so the kernel holds every write into it until
 * it is thawed) and a RAM bdev, each behind its own blk controller on the same, single reactor.
 * While one write to the frozen disk is outstanding, the RAM controller completes hundreds of
 * requests; the frozen write completes once the file system is thawed. Root only (losetup,
 * mount, fsfreeze); skipped with the reason otherwise. Asserts counts and order, no timings.
 */
class SlowStoreIsolationTest {
    @TempDir
    Path dir;

    /** Wraps an engine's channels to count requests handed to it (so the test knows the slow write has reached the disk). */
    private static FileIoEngine.Factory counting(FileIoEngine.Factory real, AtomicInteger submitted) {
        return new FileIoEngine.Factory() {
            @Override
            public FileIoEngine create(String name, FileOps ops) {
                throw new UnsupportedOperationException();
            }

            @Override
            public FileIoEngine create(String name, FileOps ops, FileHandles file) {
                FileIoEngine e = real.create(name, ops, file);
                return new FileIoEngine() {
                    @Override public String name() { return e.name(); }
                    @Override public void close() { e.close(); }

                    @Override
                    public BlockChannel openChannel(long sizeBytes) {
                        BlockChannel c = e.openChannel(sizeBytes);
                        return new BlockChannel() {
                            @Override
                            public int submit(BlockRequest r) {
                                int rc = c.submit(r);
                                if (rc == 0 && r.op == BlockRequest.Op.WRITE) submitted.incrementAndGet();
                                return rc;
                            }

                            @Override public int poll() { return c.poll(); }
                            @Override public int inFlight() { return c.inFlight(); }
                            @Override public int wakeFd() { return c.wakeFd(); }
                            @Override public void close() { c.close(); }
                        };
                    }
                };
            }
        };
    }

    @ParameterizedTest(name = "engine {0}")
    @ValueSource(strings = {"io_uring", "threads"})
    void aRamControllerKeepsServingWhileAWriteToAFrozenDiskOnTheSameReactorIsHeld(String engineName) throws Exception {
        if (engineName.equals("io_uring")) Assumptions.assumeTrue(IoUring.unavailableReason() == null, "io_uring unavailable");
        Path fsImage = dir.resolve("fs.img");
        try (var raf = new java.io.RandomAccessFile(fsImage.toFile(), "rw")) {
            raf.setLength(64 << 20);
        }
        ExecutorService slowClient = Executors.newSingleThreadExecutor();
        try (LoopDevice loop = LoopDevice.attach(fsImage, 512)) {
            Path mnt = loop.mountExt4(dir.resolve("mnt"));
            Path disk = mnt.resolve("disk.img");
            Files.write(disk, new byte[8 << 20]);
            AtomicInteger slowWrites = new AtomicInteger();
            // BACKOFF: the reactor may sleep (on the slow channel's wake fd) between bursts.
            try (VhostTarget target = new VhostTarget(dir, 1, IdleStrategy.BACKOFF)) {
                target.bdevs().register(new FileBlockDevice(FileBlockDevice.Kind.URING, "SLOW", disk.toString(), 512, false, null,
                        counting(engineName.equals("io_uring") ? FileIoEngine.AUTO : FileIoEngine.THREADS, slowWrites)));
                assertThat(((FileBlockDevice) target.bdevs().get("SLOW")).ioEngine()).isEqualTo(engineName);
                target.bdevs().register(new MallocBlockDevice("RAM", 16384, 512, null));
                target.createBlkController("slow", "SLOW", false, 1, null);
                target.createBlkController("ram", "RAM", false, 1, null);
                try (BlkInitiator slow = BlkInitiator.connect(dir.resolve("slow").toString(), 1, 64, 1 << 20);
                     BlkInitiator ram = BlkInitiator.connect(dir.resolve("ram").toString(), 1, 64, 1 << 20)) {
                    assertThat(slow.write(0, 0, 4096)).as("the slow disk works before the freeze").isEqualTo(S_OK);
                    int before = slowWrites.get();
                    loop.freeze();
                    try {
                        Future<Integer> held = slowClient.submit(() -> slow.write(0, 8, 4096));
                        // The write has reached the engine (it is in the kernel, held by the freeze).
                        await().atMost(Duration.ofSeconds(30)).until(() -> slowWrites.get() == before + 1);
                        int n = 500;
                        for (int i = 0; i < n; i++) {
                            assertThat(i % 2 == 0 ? ram.write(0, 8L * (i % 1000), 4096) : ram.read(0, 8L * (i % 1000), 4096))
                                    .as("RAM request %d while the slow write is held", i).isEqualTo(S_OK);
                        }
                        assertThat(held.isDone()).as("the frozen write is still outstanding after %d RAM requests", n).isFalse();
                        loop.thaw();
                        assertThat(held.get(60, TimeUnit.SECONDS)).as("the held write completes after the thaw").isEqualTo(S_OK);
                    } finally {
                        loop.thaw();
                    }
                    assertThat(slow.read(0, 8, 4096)).isEqualTo(S_OK);
                }
            }
        } finally {
            slowClient.shutdownNow();
        }
    }
}
