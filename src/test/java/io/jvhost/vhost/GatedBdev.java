package io.jvhost.vhost;

import io.jvhost.bdev.BlockChannel;
import io.jvhost.bdev.BlockDevice;
import io.jvhost.bdev.BlockRequest;

import java.util.ArrayDeque;
import java.util.UUID;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A test bdev over another: while the gate is closed its channels hold every request submitted
 * (accepted, not completed); once it opens, the next poll passes them on. Lets a test keep a
 * request in flight on a chosen reactor for as long as it needs.
 */
final class GatedBdev implements BlockDevice {
    private final BlockDevice inner;
    private volatile boolean closed;
    /** Requests held right now, over all channels (any thread may read). */
    final AtomicInteger held = new AtomicInteger();

    GatedBdev(BlockDevice inner) {
        this.inner = inner;
    }

    void close(boolean gateClosed) {
        this.closed = gateClosed;
    }

    @Override public String name() { return inner.name(); }
    @Override public String productName() { return inner.productName(); }
    @Override public int blockSize() { return inner.blockSize(); }
    @Override public long numBlocks() { return inner.numBlocks(); }
    @Override public UUID uuid() { return inner.uuid(); }
    @Override public boolean readOnly() { return inner.readOnly(); }
    @Override public boolean supportsUnmap() { return inner.supportsUnmap(); }
    @Override public boolean supportsWriteZeroes() { return inner.supportsWriteZeroes(); }
    @Override public boolean volatileWriteCache() { return inner.volatileWriteCache(); }
    @Override public void close() { inner.close(); }

    @Override
    public BlockChannel openChannel() {
        BlockChannel ch = inner.openChannel();
        return new BlockChannel() {
            private final ArrayDeque<BlockRequest> waiting = new ArrayDeque<>();

            @Override
            public int submit(BlockRequest r) {
                if (!closed && waiting.isEmpty()) return ch.submit(r);
                waiting.add(r);
                held.incrementAndGet();
                return 0;
            }

            @Override
            public int poll() {
                int n = 0;
                while (!closed && !waiting.isEmpty()) {
                    BlockRequest r = waiting.poll();
                    held.decrementAndGet();
                    int rc = ch.submit(r);
                    if (rc < 0) r.complete(rc);
                    n++;
                }
                return n + ch.poll();
            }

            @Override
            public int inFlight() {
                return waiting.size() + ch.inFlight();
            }

            @Override
            public void close() {
                ch.close();
            }
        };
    }
}
