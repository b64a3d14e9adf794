package io.jvhost.scsi;

import io.jvhost.bdev.BlockChannel;
import io.jvhost.bdev.BlockDevice;
import io.jvhost.bdev.BlockRequest;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;

/**
 * A block device wrapper for tests: overrides capabilities, records the operations submitted
 * through its channels, and can fail submissions or completions.
 */
final class TestBdev implements BlockDevice {
    final BlockDevice inner;
    boolean readOnly;
    boolean unmap = true;
    boolean writeZeroes = true;
    boolean volatileCache;
    String product;
    /** Returned by submit instead of submitting, when non-zero. */
    int submitError;
    /** Submits answered -EAGAIN ("no room now") before {@link #submitError} applies. */
    int busySubmitsLeft;
    /** Completion status forced on every completed request, when non-zero. */
    int completionError;
    final List<String> ops = new ArrayList<>();

    TestBdev(BlockDevice inner) {
        this.inner = inner;
        this.product = inner.productName();
    }

    @Override public String name() { return inner.name(); }
    @Override public String productName() { return product; }
    @Override public int blockSize() { return inner.blockSize(); }
    @Override public long numBlocks() { return inner.numBlocks(); }
    @Override public UUID uuid() { return inner.uuid(); }
    @Override public boolean readOnly() { return readOnly; }
    @Override public boolean supportsUnmap() { return unmap; }
    @Override public boolean supportsWriteZeroes() { return writeZeroes; }
    @Override public boolean volatileWriteCache() { return volatileCache; }
    @Override public void close() { inner.close(); }

    @Override
    public BlockChannel openChannel() {
        BlockChannel ch = inner.openChannel();
        return new BlockChannel() {
            private final ArrayDeque<BlockRequest> failed = new ArrayDeque<>();

            @Override
            public int submit(BlockRequest r) {
                ops.add(r.op + "@" + r.offset + "+" + r.length);
                if (busySubmitsLeft > 0) {
                    busySubmitsLeft--;
                    return -io.jvhost.sys.Errno.EAGAIN;
                }
                if (submitError != 0) return submitError;
                if (completionError != 0) {
                    failed.add(r); // not executed; completes with the error from poll()
                    return 0;
                }
                return ch.submit(r);
            }

            @Override
            public int poll() {
                int n = 0;
                for (int k = failed.size(); k > 0; k--, n++) failed.poll().complete(completionError);
                return n + ch.poll();
            }

            @Override
            public int inFlight() {
                return failed.size() + ch.inFlight();
            }

            @Override
            public void close() {
                ch.close();
            }
        };
    }
}
