package io.jvhost.virtio;

import io.jvhost.memory.SgList;

import java.lang.foreign.MemorySegment;

/**
 * A walked descriptor chain as a reusable flyweight: the guest buffers it names, already
 * translated to (region segment, offset, length) and split at region boundaries, the
 * device-readable ones first, then the device-writable ones (VIRTIO 1.2, 2.7.4.2). Filled by
 * {@link SplitVirtQueue} or {@link PackedVirtQueue}; the device consumes it before the next chain is walked. No allocation.
 *
 * <p>The readable buffers form one byte stream and the writable buffers another; helpers below
 * copy from / map ranges of those streams so devices never assume a particular framing.
 */
public final class DescriptorChain {
    /** Receives the (segment, offset, length) pieces of a range; false = no room. */
    @FunctionalInterface
    public interface BufferSink {
        boolean add(MemorySegment segment, long offset, long length);
    }

    private final SgList bufs;
    private int firstWritable; // index of the first writable buffer (== count if none)
    private long readableBytes;
    private long writableBytes;
    int head;
    /** Buffer descriptors in the chain (an indirect-table pointer is not one). */
    int descriptors;
    /** Length of the longest buffer descriptor, before any split at region boundaries. */
    long longestDescriptor;

    // result of locate*()
    private int locIndex;
    private long locOffset;

    public DescriptorChain(int capacity) {
        bufs = new SgList(capacity, capacity);
    }

    void reset(int head) {
        bufs.clear();
        this.head = head;
        firstWritable = 0;
        readableBytes = 0;
        writableBytes = 0;
        descriptors = 0;
        longestDescriptor = 0;
    }

    /** Appends a translated buffer; false when the chain has no room left. */
    boolean add(MemorySegment seg, long off, long len, boolean writable) {
        if (!bufs.add(seg, off, len)) return false;
        if (writable) {
            writableBytes += len;
        } else {
            readableBytes += len;
            firstWritable = bufs.count();
        }
        return true;
    }

    public int head() { return head; }
    public int bufferCount() { return bufs.count(); }
    /** The buffers: readable ones at {@code [0, firstWritable)}, writable ones after. */
    public SgList buffers() { return bufs; }
    /** Descriptors that named buffers, direct and indirect (what seg_max limits). */
    public int descriptorCount() { return descriptors; }
    /** Length of the longest descriptor (what size_max limits). */
    public long longestDescriptor() { return longestDescriptor; }
    public long readableBytes() { return readableBytes; }
    public long writableBytes() { return writableBytes; }
    public MemorySegment segment(int i) { return bufs.segment(i); }
    public long offset(int i) { return bufs.offset(i); }
    public long length(int i) { return bufs.length(i); }
    public boolean writable(int i) { return i >= firstWritable; }

    /** Copies {@code n} bytes at readable-stream position {@code pos} into {@code dst}; returns bytes copied. */
    public long copyFromReadable(long pos, MemorySegment dst, long dstOff, long n) {
        return bufs.copyOut(0, firstWritable, pos, dst, dstOff, n);
    }

    /** Copies {@code n} bytes from {@code src} to writable-stream position {@code pos}; returns bytes copied. */
    public long copyToWritable(long pos, MemorySegment src, long srcOff, long n) {
        return bufs.copyIn(firstWritable, bufs.count(), pos, src, srcOff, n);
    }

    /** Hands the readable-stream range {@code [pos, pos+len)} to {@code sink}; false if it does not fit. */
    public boolean addReadableRange(BufferSink sink, long pos, long len) {
        return addRange(sink, 0, firstWritable, pos, len);
    }

    /** Hands the writable-stream range {@code [pos, pos+len)} to {@code sink}; false if it does not fit. */
    public boolean addWritableRange(BufferSink sink, long pos, long len) {
        return addRange(sink, firstWritable, bufs.count(), pos, len);
    }

    private boolean addRange(BufferSink req, int from, int to, long pos, long n) {
        long added = 0;
        long skip = pos;
        for (int i = from; i < to && added < n; i++) {
            long len = bufs.length(i);
            if (skip >= len) {
                skip -= len;
                continue;
            }
            long take = Math.min(len - skip, n - added);
            if (!req.add(bufs.segment(i), bufs.offset(i) + skip, take)) return false;
            added += take;
            skip = 0;
        }
        return added == n;
    }

    /**
     * Finds writable-stream byte {@code pos}; afterwards {@link #locatedSegment()} and
     * {@link #locatedOffset()} address it. Returns false when {@code pos} is past the end.
     */
    public boolean locateWritable(long pos) {
        long skip = pos;
        for (int i = firstWritable, count = bufs.count(); i < count; i++) {
            long len = bufs.length(i);
            if (skip < len) {
                locIndex = i;
                locOffset = bufs.offset(i) + skip;
                return true;
            }
            skip -= len;
        }
        return false;
    }

    public MemorySegment locatedSegment() { return bufs.segment(locIndex); }
    /** Bytes from the located byte to the end of its buffer. */
    public long locatedContiguous() { return bufs.length(locIndex) - (locOffset - bufs.offset(locIndex)); }
    public long locatedOffset() { return locOffset; }
}
