package io.jvhost.vhost;

import io.jvhost.bdev.BlockChannel;
import io.jvhost.bdev.BlockDevice;
import io.jvhost.bdev.BlockRequest;
import io.jvhost.bdev.MallocBlockDevice;
import io.jvhost.initiator.BlkInitiator;
import io.jvhost.runtime.IdleStrategy;
import io.jvhost.sys.EventFd;
import io.jvhost.sys.Fd;
import io.jvhost.virtio.LittleEndian;
import io.jvhost.virtio.DriverSplitQueue;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import static io.jvhost.virtio.BlkLayout.S_OK;
import static io.jvhost.virtio.BlkLayout.T_OUT;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

/**
 * Graceful shutdown (what {@code jvhost serve} runs on SIGTERM: {@link VhostTarget#close()}):
 * requests in flight when the shutdown begins still complete, are published to the used ring
 * and their data reaches the bdev, before the connection is closed.
 */
class GracefulShutdownTest {
    @TempDir
    Path dir;

    /** Holds every request until {@link #open()}; then passes them (and later ones) to a RAM disk. */
    static final class GatedBdev implements BlockDevice {
        final MallocBlockDevice inner;
        final AtomicInteger held = new AtomicInteger();
        volatile boolean open;
        volatile int wakeFd = -1;

        GatedBdev(MallocBlockDevice inner) {
            this.inner = inner;
        }

        void open() {
            open = true;
            EventFd.signal(wakeFd, Arena.ofAuto().allocate(8));
        }

        @Override public String name() { return inner.name(); }
        @Override public String productName() { return inner.productName(); }
        @Override public int blockSize() { return inner.blockSize(); }
        @Override public long numBlocks() { return inner.numBlocks(); }
        @Override public UUID uuid() { return inner.uuid(); }
        @Override public boolean readOnly() { return false; }
        @Override public boolean supportsUnmap() { return false; }
        @Override public boolean supportsWriteZeroes() { return false; }
        @Override public boolean volatileWriteCache() { return false; }
        @Override public void close() { } // the test reads the RAM disk after the target closed, then closes it

        @Override
        public BlockChannel openChannel() {
            BlockChannel ch = inner.openChannel();
            int fd = EventFd.create(true);
            wakeFd = fd;
            MemorySegment scratch = Arena.ofAuto().allocate(8);
            ArrayDeque<BlockRequest> waiting = new ArrayDeque<>();
            return new BlockChannel() {
                @Override
                public int submit(BlockRequest r) {
                    if (open) return ch.submit(r);
                    waiting.add(r);
                    held.incrementAndGet();
                    return 0;
                }

                @Override
                public int poll() {
                    int n = 0;
                    if (open) {
                        EventFd.drain(fd, scratch);
                        BlockRequest r;
                        while ((r = waiting.poll()) != null) {
                            int rc = ch.submit(r);
                            if (rc != 0) r.complete(rc);
                            n++;
                        }
                    }
                    return n + ch.poll();
                }

                @Override public int inFlight() { return waiting.size() + ch.inFlight(); }
                @Override public int wakeFd() { return fd; }
                @Override public void close() { ch.close(); Fd.closeQuietly(fd); }
            };
        }
    }

    @Test
    void requestsInFlightWhenShutdownBeginsCompleteBeforeTheConnectionCloses() throws Exception {
        GatedBdev bdev = new GatedBdev(new MallocBlockDevice("G", 8192, 512, null));
        VhostTarget target = new VhostTarget(dir, 1, IdleStrategy.BACKOFF);
        target.bdevs().register(bdev);
        Controller c = target.createBlkController("v", "G", false, 1, null);
        final int n = 4;
        try (BlkInitiator ini = BlkInitiator.connect(dir.resolve("v").toString(), 1, 64, 1 << 20)) {
            MemorySegment data = ini.data();
            DriverSplitQueue dq = ini.queue(0);
            int[] heads = new int[n];
            for (int i = 0; i < n; i++) {
                long hdr = 64L * i; // header at data[64 i], status byte at data[64 i + 32]
                data.set(LittleEndian.U32, hdr, T_OUT);
                data.set(LittleEndian.U32, hdr + 4, 0);
                data.set(LittleEndian.U64, hdr + 8, 8L * i);
                data.set(ValueLayout.JAVA_BYTE, hdr + 32, (byte) 0xff);
                long buf = 4096L * (i + 1);
                data.asSlice(buf, 4096).fill((byte) (0x40 + i));
                dq.begin(3);
                dq.add(ini.dataGpa() + hdr, 16, false);
                dq.add(ini.dataGpa() + buf, 4096, false);
                dq.add(ini.dataGpa() + hdr + 32, 1, true);
                heads[i] = dq.end();
            }
            ini.publishAndKick(0);
            await().atMost(Duration.ofSeconds(10)).until(() -> bdev.held.get() == n);
            Session s = c.session();

            CompletableFuture<Void> shutdown = CompletableFuture.runAsync(target::close);
            // Once the session has handed its ring stop to the reactor (and the reactor has run
            // it), the ring is draining: only then are the held requests let go.
            await().atMost(Duration.ofSeconds(10)).until(() -> s.stopsRequested() > 0);
            target.reactors()[0].runAndWait(() -> { }, 10);
            assertThat(shutdown).as("shutdown waits for the requests in flight").isNotDone();
            // The front-end must not see the connection end while completions are still to be
            // published: QEMU takes the used index it reads at that moment as the ring's base.
            assertThat(ini.frontend().connection().socket().peerClosed()).as("connection still open while draining").isFalse();
            // A message the front-end sends meanwhile (QEMU: a SET_VRING_CALL on an interrupt
            // mask change) must not fail: a failed send is how QEMU would notice the end early.
            MemorySegment getFeatures = Arena.ofAuto().allocate(12);
            getFeatures.set(ValueLayout.JAVA_INT, 0, 1);   // VHOST_USER_GET_FEATURES
            getFeatures.set(ValueLayout.JAVA_INT, 4, 0x1); // version 1
            ini.frontend().connection().socket().send(getFeatures, 12);
            bdev.open();
            shutdown.get(30, TimeUnit.SECONDS);

            java.util.Set<Integer> used = new java.util.HashSet<>();
            await().atMost(Duration.ofSeconds(5)).until(() -> {
                dq.pollUsed((h, len) -> used.add(h));
                return used.size() == n;
            });
            for (int i = 0; i < n; i++) {
                assertThat(used).contains(heads[i]);
                assertThat(data.get(ValueLayout.JAVA_BYTE, 64L * i + 32)).as("status of request %d", i).isEqualTo((byte) S_OK);
            }
            for (int i = 0; i < n; i++) {
                assertThat(bdev.inner.memory().get(ValueLayout.JAVA_BYTE, 4096L * i + 100)).as("data of request %d on the disk", i)
                        .isEqualTo((byte) (0x40 + i));
            }
            assertThat(s.runningQueues()).isEmpty();
            assertThat(ini.frontend().connection().socket().peerClosed()).as("closed once drained").isTrue();
        } finally {
            target.close();
            bdev.inner.close();
        }
    }
}
