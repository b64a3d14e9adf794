package io.jvhost.vhost;

import io.jvhost.bdev.BlockChannel;
import io.jvhost.bdev.BlockDevice;
import io.jvhost.bdev.BlockRequest;
import io.jvhost.bdev.MallocBlockDevice;
import io.jvhost.initiator.BlkInitiator;
import io.jvhost.initiator.SharedMemory;
import io.jvhost.runtime.IdleStrategy;
import io.jvhost.sys.EventFd;
import io.jvhost.sys.Fd;
import io.jvhost.virtio.DriverSplitQueue;
import io.jvhost.virtio.VirtQueue;
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
import java.util.concurrent.atomic.AtomicInteger;

import static io.jvhost.virtio.BlkLayout.*;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

/**
 * SET_VRING_CALL, ADD_MEM_REG and REM_MEM_REG on a running ring with requests in flight, through
 * a real vhost-user socket: the ring is not stopped (no drain), the requests in flight survive
 * and complete, the next interrupt goes to the new call fd, a buffer in an added region is
 * served, and a removed region is unmapped only after the request using it completed.
 */
class InPlaceRingChangesTest {
    @TempDir
    Path dir;

    /** Holds submitted requests (on the reactor thread) while {@code hold} is set; then passes them on. */
    static final class HoldingBdev implements BlockDevice {
        final BlockDevice inner;
        volatile boolean hold;
        final AtomicInteger held = new AtomicInteger();

        HoldingBdev(BlockDevice inner) {
            this.inner = inner;
        }

        @Override public String name() { return inner.name(); }
        @Override public String productName() { return inner.productName(); }
        @Override public int blockSize() { return inner.blockSize(); }
        @Override public long numBlocks() { return inner.numBlocks(); }
        @Override public UUID uuid() { return inner.uuid(); }
        @Override public boolean readOnly() { return false; }
        @Override public boolean supportsUnmap() { return true; }
        @Override public boolean supportsWriteZeroes() { return true; }
        @Override public boolean volatileWriteCache() { return false; }
        @Override public void close() { inner.close(); }

        @Override
        public BlockChannel openChannel() {
            BlockChannel ch = inner.openChannel();
            return new BlockChannel() {
                final ArrayDeque<BlockRequest> waiting = new ArrayDeque<>();

                @Override
                public int submit(BlockRequest r) {
                    if (hold) {
                        waiting.add(r);
                        held.incrementAndGet();
                        return 0;
                    }
                    return ch.submit(r);
                }

                @Override
                public int poll() {
                    int n = 0;
                    while (!hold && !waiting.isEmpty()) {
                        BlockRequest r = waiting.poll();
                        held.decrementAndGet();
                        int rc = ch.submit(r);
                        if (rc != 0) r.complete(rc);
                        n++;
                    }
                    return n + ch.poll();
                }

                @Override public int inFlight() { return waiting.size() + ch.inFlight(); }
                @Override public void close() { ch.close(); }
            };
        }
    }

    /** Queues a 4 KiB read of {@code sector} into {@code dataGpa}; header and status in the initiator's scratch area. */
    static int queueRead(BlkInitiator ini, int slot, long sector, long dataGpa) {
        MemorySegment s = ini.scratch();
        long off = 32L * slot;
        s.set(ValueLayout.JAVA_INT_UNALIGNED, off, T_IN);
        s.set(ValueLayout.JAVA_INT_UNALIGNED, off + 4, 0);
        s.set(ValueLayout.JAVA_LONG_UNALIGNED, off + 8, sector);
        s.set(ValueLayout.JAVA_BYTE, off + 16, (byte) 0x7f);
        DriverSplitQueue q = ini.queue(0);
        q.begin(3);
        q.add(ini.scratchGpa() + off, 16, false);
        q.add(dataGpa, 4096, true);
        q.add(ini.scratchGpa() + off + 16, 1, true);
        int head = q.end();
        ini.publishAndKick(0);
        return head;
    }

    static byte status(BlkInitiator ini, int slot) {
        return ini.scratch().get(ValueLayout.JAVA_BYTE, 32L * slot + 16);
    }

    @Test
    void callFdAndMemoryChangesDoNotDrainARunningRing() throws Exception {
        HoldingBdev bdev = new HoldingBdev(new MallocBlockDevice("M", 8192, 512, null));
        MemorySegment scratch = Arena.ofAuto().allocate(8, 8);
        int newCall = EventFd.create(true);
        try (VhostTarget target = new VhostTarget(dir, 1, IdleStrategy.BACKOFF);
             SharedMemory extra = new SharedMemory(1 << 20, 0x40000000000L)) {
            target.bdevs().register(bdev);
            Controller ctrl = target.createBlkController("v", "M", false, 1, null);
            try (BlkInitiator ini = BlkInitiator.connect(dir.resolve("v").toString(), 1, 128, 1 << 20)) {
                // A recognisable block at sector 8.
                ini.data().asSlice(0, 4096).fill((byte) 0x5a);
                assertThat(ini.write(0, 8, 4096)).isEqualTo(S_OK);
                Session session = ctrl.session();
                VirtQueue running = session.runningQueues().get(0);
                long stops = session.ringStops();
                long swaps = session.inPlaceSwaps();

                // Three reads held in the block layer.
                bdev.hold = true;
                int[] heads = new int[4];
                for (int i = 0; i < 3; i++) heads[i] = queueRead(ini, i, 8, ini.dataGpa() + 8192L * (i + 1));
                await().atMost(Duration.ofSeconds(10)).until(() -> bdev.held.get() == 3);

                // QEMU masks the interrupt: a new call fd, then a memory region plugged in.
                ini.frontend().setVringCall(0, newCall);
                ini.frontend().addMemRegion(extra, extra.gpaBase(), 0, extra.size());
                // An error fd, and SET_FEATURES repeating the negotiated features (QEMU does at start).
                int newErr = EventFd.create(true);
                try {
                    ini.frontend().setVringErr(0, newErr);
                } finally {
                    Fd.closeQuietly(newErr); // the target has its own copy
                }
                ini.frontend().setFeatures(session.negotiatedFeatures());
                assertThat(session.ringStops()).as("no ring was stopped (drained)").isEqualTo(stops);
                assertThat(session.inPlaceSwaps()).isEqualTo(swaps + 3);
                assertThat(session.runningQueues()).containsExactly(running);
                assertThat(bdev.held.get()).as("the requests are still in flight").isEqualTo(3);

                // A fourth read into the added region, walked through the swapped memory.
                extra.segment().asSlice(0, 4096).fill((byte) 0);
                heads[3] = queueRead(ini, 3, 8, extra.gpa(0));
                await().atMost(Duration.ofSeconds(10)).until(() -> bdev.held.get() == 4);
                bdev.hold = false;
                java.util.Set<Integer> back = new java.util.HashSet<>();
                await().atMost(Duration.ofSeconds(10)).until(() -> {
                    ini.queue(0).pollUsed((head, len) -> back.add(head));
                    return back.size() == 4;
                });
                assertThat(back).containsExactlyInAnyOrder(heads[0], heads[1], heads[2], heads[3]);
                for (int i = 0; i < 4; i++) assertThat(status(ini, i)).as("read %d", i).isEqualTo((byte) S_OK);
                assertThat(extra.segment().get(ValueLayout.JAVA_BYTE, 4095)).isEqualTo((byte) 0x5a);
                await().atMost(Duration.ofSeconds(10)).until(() -> EventFd.drain(newCall, scratch) > 0);

                // REM_MEM_REG while a read into that region is held: the region stays mapped until
                // the read completed (its data lands there), and the ring is not stopped.
                extra.segment().asSlice(0, 4096).fill((byte) 0);
                bdev.hold = true;
                int h = queueRead(ini, 4, 8, extra.gpa(0));
                await().atMost(Duration.ofSeconds(10)).until(() -> bdev.held.get() == 1);
                CompletableFuture<Void> removed = CompletableFuture.runAsync(() -> {
                    try {
                        ini.frontend().removeMemRegion(extra, extra.gpaBase(), 0, extra.size());
                    } catch (java.io.IOException e) {
                        throw new java.io.UncheckedIOException(e);
                    }
                });
                // The session waits for the grace period: it cannot have answered yet.
                assertThat(removed).isNotDone();
                bdev.hold = false;
                ini.waitFor(0, h, Duration.ofSeconds(10));
                removed.get(10, java.util.concurrent.TimeUnit.SECONDS);
                assertThat(status(ini, 4)).isEqualTo((byte) S_OK);
                assertThat(extra.segment().get(ValueLayout.JAVA_BYTE, 0)).isEqualTo((byte) 0x5a);
                assertThat(session.ringStops()).isEqualTo(stops);
                assertThat(running.isFaulted()).isFalse();
                assertThat(running.stats().faults()).isZero();
                // Still serving.
                assertThat(ini.read(0, 8, 4096)).isEqualTo(S_OK);
            }
        } finally {
            Fd.closeQuietly(newCall);
        }
    }
}
