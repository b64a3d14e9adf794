package io.jvhost.bdev;

import io.jvhost.memory.SgList;

import java.lang.foreign.MemorySegment;

/**
 * A reusable I/O request: operation, byte range on the device, and a scatter-gather list of
 * buffers given as (segment, offset, length) triples so that filling it allocates nothing.
 * Owned by whoever pooled it (a virtqueue task); the block layer only reads it and calls
 * {@link #complete(int)} once.
 */
public final class BlockRequest {
    public enum Op { READ, WRITE, FLUSH, UNMAP, WRITE_ZEROES }

    /** Receives the single completion of a submitted request. */
    @FunctionalInterface
    public interface Completion {
        /** @param status 0 on success, -errno on failure */
        void onComplete(BlockRequest request, int status);
    }

    private final SgList buffers;

    public Op op;
    /** Device byte offset. */
    public long offset;
    /** Bytes covered on the device (for READ/WRITE the sum of the buffer lengths). */
    public long length;
    /** Owner's context, e.g. the task index. */
    public int tag;
    private Completion completion;
    /** Set by a counting channel at submit ({@link BdevIoStats}); cleared when counted. */
    BdevIoStats.Counters ioCounters;
    long submitNanos;
    /** Set by an {@link AsyncBlockChannel} while the request is out on another thread. */
    AsyncBlockChannel asyncChannel;
    /** The status a foreign thread finished the request with (published by the completion queue). */
    int asyncStatus;

    /**
     * @param maxSegments most buffers one request may carry. The lists start small and grow on
     *                    demand (once per pooled request, so steady state allocates nothing).
     */
    public BlockRequest(int maxSegments) {
        if (maxSegments < 1) throw new IllegalArgumentException("maxSegments must be positive");
        buffers = new SgList(maxSegments);
    }

    public void completion(Completion c) {
        this.completion = c;
    }

    public void reset(Op op, long offset) {
        this.op = op;
        this.offset = offset;
        this.length = 0;
        buffers.clear();
    }

    /** Appends a buffer; returns false when the list is full. */
    public boolean addBuffer(MemorySegment seg, long off, long len) {
        if (!buffers.add(seg, off, len)) return false;
        length += len;
        return true;
    }

    /** The buffers (read-only use by the block layer; filled through {@link #addBuffer}). */
    public SgList buffers() {
        return buffers;
    }

    public int bufferCount() {
        return buffers.count();
    }

    public int maxBuffers() {
        return buffers.max();
    }

    public MemorySegment bufferSegment(int i) {
        return buffers.segment(i);
    }

    public long bufferOffset(int i) {
        return buffers.offset(i);
    }

    public long bufferLength(int i) {
        return buffers.length(i);
    }

    /** Drops buffer references so a pooled request does not pin old guest mappings. */
    public void clearBuffers() {
        buffers.clear();
    }

    public void complete(int status) {
        BdevIoStats.Counters c = ioCounters;
        if (c != null) {
            // Counted before the callback: it may reuse this request for a new submit.
            ioCounters = null;
            c.record(op, length, status, c.clock.now() - submitNanos);
        }
        completion.onComplete(this, status);
    }
}
