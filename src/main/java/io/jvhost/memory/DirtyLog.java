package io.jvhost.memory;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;

/**
 * The dirty-page log of live migration (vhost-user.rst "Migration", SET_LOG_BASE; the kernel's
 * vhost log): a bitmap over guest-physical memory, one bit per 4 KiB page, bit {@code p % 64}
 * of the little-endian u64 at word {@code p / 64} for page {@code p}. The front-end maps the same
 * memory and reads and clears whole words atomically while the back-end sets bits, so bits are
 * set with an atomic OR. Pages beyond the log are not recorded (counted in {@link #beyond()}):
 * the front-end sized the log for its memory map, so such a page is no guest RAM.
 *
 * <p>Immutable mapping; {@link #mark} is safe from any thread. Nothing is allocated.
 */
public final class DirtyLog {
    /** VHOST_LOG_PAGE. */
    public static final int PAGE_SHIFT = 12;
    private static final VarHandle WORD = ValueLayout.JAVA_LONG.withOrder(ByteOrder.LITTLE_ENDIAN).varHandle();

    private final MemorySegment bitmap;
    private final long words;
    private long beyond;

    /** {@code bitmap}: the mapped log; its start must be 8-byte aligned. */
    public DirtyLog(MemorySegment bitmap) {
        if ((bitmap.address() & 7) != 0) throw new IllegalArgumentException("dirty log not 8-byte aligned");
        this.bitmap = bitmap;
        this.words = bitmap.byteSize() / 8;
    }

    /** Marks every page that {@code [gpa, gpa + length)} touches. */
    public void mark(long gpa, long length) {
        if (length <= 0) return;
        // The guest-memory stores this mark covers (done before the call) must be visible before
        // the bitmap is read below: otherwise the plain read may see a bit an earlier mark set,
        // the front-end then clear that word and copy the page, and our stores land after its
        // copy, unlogged (a store may pass a later load even on x86). DPDK and the kernel use an
        // atomic OR for every page, which orders the same way; one fence per range is cheaper.
        VarHandle.fullFence();
        long first = gpa >>> PAGE_SHIFT;
        long last = (gpa + length - 1) >>> PAGE_SHIFT;
        if (Long.compareUnsigned(last, first) < 0) last = -1L >>> PAGE_SHIFT; // wrapped: up to the top
        for (long p = first; Long.compareUnsigned(p, last) <= 0; p++) {
            long w = p >>> 6;
            if (Long.compareUnsigned(w, words) >= 0) {
                beyond++;
                return; // every later page is beyond too
            }
            long bit = 1L << (p & 63);
            // A plain read first: most pages of a busy ring are already marked.
            if (((long) WORD.get(bitmap, w * 8) & bit) == 0) WORD.getAndBitwiseOr(bitmap, w * 8, bit);
        }
    }

    /** Is page {@code page} marked? (tests) */
    public boolean isMarked(long page) {
        long w = page >>> 6;
        return Long.compareUnsigned(w, words) < 0 && ((long) WORD.getVolatile(bitmap, w * 8) & (1L << (page & 63))) != 0;
    }

    /** Ranges that reached past the log (racy count, for logs). */
    public long beyond() {
        return beyond;
    }

    public long sizeBytes() {
        return bitmap.byteSize();
    }
}
