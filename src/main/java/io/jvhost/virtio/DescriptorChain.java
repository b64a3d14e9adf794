package io.jvhost.virtio;

import java.lang.foreign.MemorySegment;

/**
 * A walked descriptor chain as a reusable flyweight: the guest buffers it names, already
 * translated to (region segment, offset, length) and split at region boundaries, the
 * device-readable ones first, then the device-writable ones (VIRTIO 1.2, 2.7.4.2). Filled by
 * {@link SplitVirtQueue}; the device consumes it before the next chain is walked. No allocation.
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

    // Object[], not MemorySegment[]: storing into an interface-typed array costs a slow
    // secondary-supers type check per store (measured: ~25% of the walk); reads cast instead.
    private final Object[] segs;
    private final long[] offs;
    private final long[] lens;
    private int count;
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
        segs = new Object[capacity];
        offs = new long[capacity];
        lens = new long[capacity];
    }

    void reset(int head) {
        for (int i = 0; i < count; i++) segs[i] = null;
        this.head = head;
        count = 0;
        firstWritable = 0;
        readableBytes = 0;
        writableBytes = 0;
        descriptors = 0;
        longestDescriptor = 0;
    }

    /** Appends a translated buffer; false when the chain has no room left. */
    boolean add(MemorySegment seg, long off, long len, boolean writable) {
        if (count == segs.length) return false;
        segs[count] = seg;
        offs[count] = off;
        lens[count] = len;
        count++;
        if (writable) {
            writableBytes += len;
        } else {
            readableBytes += len;
            firstWritable = count;
        }
        return true;
    }

    public int head() { return head; }
    public int bufferCount() { return count; }
    /** Descriptors that named buffers, direct and indirect (what seg_max limits). */
    public int descriptorCount() { return descriptors; }
    /** Length of the longest descriptor (what size_max limits). */
    public long longestDescriptor() { return longestDescriptor; }
    public long readableBytes() { return readableBytes; }
    public long writableBytes() { return writableBytes; }
    public MemorySegment segment(int i) { return (MemorySegment) segs[i]; }
    public long offset(int i) { return offs[i]; }
    public long length(int i) { return lens[i]; }
    public boolean writable(int i) { return i >= firstWritable; }

    /** Copies {@code n} bytes at readable-stream position {@code pos} into {@code dst}; returns bytes copied. */
    public long copyFromReadable(long pos, MemorySegment dst, long dstOff, long n) {
        long copied = 0;
        long skip = pos;
        for (int i = 0; i < firstWritable && copied < n; i++) {
            long len = lens[i];
            if (skip >= len) {
                skip -= len;
                continue;
            }
            long take = Math.min(len - skip, n - copied);
            MemorySegment.copy((MemorySegment) segs[i], offs[i] + skip, dst, dstOff + copied, take);
            copied += take;
            skip = 0;
        }
        return copied;
    }

    /** Copies {@code n} bytes from {@code src} to writable-stream position {@code pos}; returns bytes copied. */
    public long copyToWritable(long pos, MemorySegment src, long srcOff, long n) {
        long copied = 0;
        long skip = pos;
        for (int i = firstWritable; i < count && copied < n; i++) {
            long len = lens[i];
            if (skip >= len) {
                skip -= len;
                continue;
            }
            long take = Math.min(len - skip, n - copied);
            MemorySegment.copy(src, srcOff + copied, (MemorySegment) segs[i], offs[i] + skip, take);
            copied += take;
            skip = 0;
        }
        return copied;
    }

    /** Hands the readable-stream range {@code [pos, pos+len)} to {@code sink}; false if it does not fit. */
    public boolean addReadableRange(BufferSink sink, long pos, long len) {
        return addRange(sink, 0, firstWritable, pos, len);
    }

    /** Hands the writable-stream range {@code [pos, pos+len)} to {@code sink}; false if it does not fit. */
    public boolean addWritableRange(BufferSink sink, long pos, long len) {
        return addRange(sink, firstWritable, count, pos, len);
    }

    private boolean addRange(BufferSink req, int from, int to, long pos, long n) {
        long added = 0;
        long skip = pos;
        for (int i = from; i < to && added < n; i++) {
            long len = lens[i];
            if (skip >= len) {
                skip -= len;
                continue;
            }
            long take = Math.min(len - skip, n - added);
            if (!req.add((MemorySegment) segs[i], offs[i] + skip, take)) return false;
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
        for (int i = firstWritable; i < count; i++) {
            if (skip < lens[i]) {
                locIndex = i;
                locOffset = offs[i] + skip;
                return true;
            }
            skip -= lens[i];
        }
        return false;
    }

    public MemorySegment locatedSegment() { return (MemorySegment) segs[locIndex]; }
    /** Bytes from the located byte to the end of its buffer. */
    public long locatedContiguous() { return lens[locIndex] - (locOffset - offs[locIndex]); }
    public long locatedOffset() { return locOffset; }
}
