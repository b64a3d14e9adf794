package io.jvhost.memory;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;

/**
 * A scatter-gather list: buffers as (segment, offset, length) triples, so that filling it
 * allocates nothing (no slices). Used by descriptor chains, block requests and SCSI tasks
 * alike. It starts small and grows on demand up to a fixed maximum, once per pooled owner, so
 * steady state allocates nothing. One owner thread; not thread-safe.
 */
public final class SgList {
    // Object[], not MemorySegment[]: storing into an interface-typed array costs a slow
    // secondary-supers type check per store (measured: ~25% of a chain walk); reads cast instead.
    private Object[] segs;
    private long[] offs;
    private long[] lens;
    private final int max;
    private int count;
    private long bytes;

    /** A list of at most {@code max} buffers, starting with room for {@code min(max, 16)}. */
    public SgList(int max) {
        this(Math.min(max, 16), max);
    }

    public SgList(int initial, int max) {
        if (max < 1 || initial < 1 || initial > max) throw new IllegalArgumentException("initial " + initial + ", max " + max);
        this.max = max;
        segs = new Object[initial];
        offs = new long[initial];
        lens = new long[initial];
    }

    /** Appends a buffer; false when the list is full (at its maximum). */
    public boolean add(MemorySegment segment, long offset, long length) {
        if (count == segs.length && !grow()) return false;
        segs[count] = segment;
        offs[count] = offset;
        lens[count] = length;
        count++;
        bytes += length;
        return true;
    }

    private boolean grow() {
        if (segs.length == max) return false;
        int n = Math.min(max, segs.length * 2);
        segs = Arrays.copyOf(segs, n);
        offs = Arrays.copyOf(offs, n);
        lens = Arrays.copyOf(lens, n);
        return true;
    }

    /** Empties the list and drops the segment references (a pooled owner must not pin old mappings). */
    public void clear() {
        for (int i = 0; i < count; i++) segs[i] = null;
        count = 0;
        bytes = 0;
    }

    public int count() { return count; }
    public int max() { return max; }
    /** Sum of the buffer lengths. */
    public long bytes() { return bytes; }
    public MemorySegment segment(int i) { return (MemorySegment) segs[i]; }
    public long offset(int i) { return offs[i]; }
    public long length(int i) { return lens[i]; }

    /**
     * Copies {@code n} bytes starting at byte {@code pos} of the stream formed by buffers
     * {@code [from, to)} into {@code dst}; returns the bytes copied.
     */
    public long copyOut(int from, int to, long pos, MemorySegment dst, long dstOff, long n) {
        long copied = 0;
        long skip = pos;
        for (int i = from; i < to && copied < n; i++) {
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

    /** Copies {@code n} bytes of {@code src} to byte {@code pos} of the stream of buffers {@code [from, to)}; returns bytes copied. */
    public long copyIn(int from, int to, long pos, MemorySegment src, long srcOff, long n) {
        long copied = 0;
        long skip = pos;
        for (int i = from; i < to && copied < n; i++) {
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

    /** Appends byte range {@code [pos, pos+n)} of the stream of buffers {@code [from, to)} to {@code dst}; false if it does not fit. */
    public boolean appendRangeTo(SgList dst, int from, int to, long pos, long n) {
        long added = 0;
        long skip = pos;
        for (int i = from; i < to && added < n; i++) {
            long len = lens[i];
            if (skip >= len) {
                skip -= len;
                continue;
            }
            long take = Math.min(len - skip, n - added);
            if (!dst.add((MemorySegment) segs[i], offs[i] + skip, take)) return false;
            added += take;
            skip = 0;
        }
        return added == n;
    }
}
