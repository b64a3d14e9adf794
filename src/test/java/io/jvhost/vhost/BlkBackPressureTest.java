package io.jvhost.vhost;

import io.jvhost.bdev.BlockChannel;
import io.jvhost.bdev.BlockDevice;
import io.jvhost.bdev.BlockRequest;
import io.jvhost.bdev.MallocBlockDevice;
import io.jvhost.initiator.BlkInitiator;
import io.jvhost.runtime.IdleStrategy;
import io.jvhost.sys.Errno;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.UUID;
import java.util.concurrent.atomic.AtomicLong;

import static io.jvhost.virtio.BlkLayout.S_OK;
import static org.assertj.core.api.Assertions.assertThat;

/**
 * "No room now" from the block layer (-EAGAIN, -ENOMEM) is back-pressure, not an error: the blk
 * queue keeps the request on its retry list and resubmits it on a later poll, and the guest
 * sees only successful requests with the right data.
 */
class BlkBackPressureTest {
    @TempDir
    Path dir;

    /** Answers every other submit with -EAGAIN or -ENOMEM (alternating), otherwise passes through. */
    static final class BusyBdev implements BlockDevice {
        final BlockDevice inner;
        final AtomicLong pushedBack = new AtomicLong();

        BusyBdev(BlockDevice inner) {
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
                long submits;

                @Override
                public int submit(BlockRequest r) {
                    long n = submits++;
                    if (n % 2 == 0) {
                        pushedBack.incrementAndGet();
                        return n % 4 == 0 ? -Errno.EAGAIN : -Errno.ENOMEM;
                    }
                    return ch.submit(r);
                }

                @Override public int poll() { return ch.poll(); }
                @Override public int inFlight() { return ch.inFlight(); }
                @Override public void close() { ch.close(); }
            };
        }
    }

    @Test
    void pushedBackRequestsAreRetriedAndSucceed() throws Exception {
        BusyBdev bdev = new BusyBdev(new MallocBlockDevice("M", 8192, 512, null));
        try (VhostTarget target = new VhostTarget(dir, 1, IdleStrategy.BACKOFF)) {
            target.bdevs().register(bdev);
            target.createBlkController("v", "M", false, 1, null);
            try (BlkInitiator ini = BlkInitiator.connect(dir.resolve("v").toString(), 1, 128, 1 << 20)) {
                for (int i = 0; i < 200; i++) {
                    for (int b = 0; b < 4096; b++) ini.data().set(ValueLayout.JAVA_BYTE, b, (byte) (i + b));
                    assertThat(ini.write(0, 8L * i, 4096)).as("write %d", i).isEqualTo(S_OK);
                }
                for (int i = 0; i < 200; i++) {
                    assertThat(ini.read(0, 8L * i, 4096)).as("read %d", i).isEqualTo(S_OK);
                    for (int b = 0; b < 4096; b += 511) {
                        assertThat(ini.data().get(ValueLayout.JAVA_BYTE, b)).as("byte %d of block %d", b, i).isEqualTo((byte) (i + b));
                    }
                }
            }
        }
        assertThat(bdev.pushedBack.get()).as("the device did push back").isGreaterThanOrEqualTo(400);
    }
}
