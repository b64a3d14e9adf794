package io.jvhost.memory;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/**
 * An immutable snapshot of the guest's memory regions with address translation.
 *
 * <p>Two address spaces come from the front-end: guest-physical addresses (GPA) in descriptors,
 * and front-end virtual addresses (UVA) for the ring locations in SET_VRING_ADDR. Both are
 * translated to (region, offset) here and every range is checked to lie inside one region;
 * a buffer that crosses a region boundary is split by the caller using {@link #contiguous}.
 *
 * <p>A memory-table change builds a new snapshot; the session swaps it in while its queues are
 * stopped, and only then closes regions that the new snapshot no longer uses. Lookups are
 * read-only and safe from any thread.
 */
public final class GuestMemory {
    public static final GuestMemory EMPTY = new GuestMemory(List.of());

    private final MemoryRegion[] regions;
    // Flat copies for the hot lookup: no pointer chasing.
    private final long[] gpaStart;
    private final long[] gpaEnd; // exclusive
    private final MemorySegment[] segments;

    public GuestMemory(List<MemoryRegion> list) {
        regions = list.toArray(new MemoryRegion[0]);
        gpaStart = new long[regions.length];
        gpaEnd = new long[regions.length];
        segments = new MemorySegment[regions.length];
        for (int i = 0; i < regions.length; i++) {
            gpaStart[i] = regions[i].guestPhysAddr();
            gpaEnd[i] = regions[i].guestPhysAddr() + regions[i].size();
            segments[i] = regions[i].segment();
        }
        for (int i = 0; i < regions.length; i++) {
            for (int j = i + 1; j < regions.length; j++) {
                if (Long.compareUnsigned(gpaStart[i], gpaEnd[j]) < 0 && Long.compareUnsigned(gpaStart[j], gpaEnd[i]) < 0) {
                    throw new IllegalArgumentException("memory regions overlap in guest-physical space: "
                            + regions[i] + " and " + regions[j]);
                }
            }
        }
    }

    public int regionCount() {
        return regions.length;
    }

    public List<MemoryRegion> regions() {
        return Collections.unmodifiableList(java.util.Arrays.asList(regions));
    }

    /**
     * The first region whose file no longer backs its mapping (truncated by the front-end), or
     * null. Cold path: one fstat per unsealed region.
     */
    public MemoryRegion vanishedRegion() {
        for (MemoryRegion r : regions) if (!r.intact()) return r;
        return null;
    }

    /** A new snapshot with {@code r} added. */
    public GuestMemory with(MemoryRegion r) {
        List<MemoryRegion> l = new ArrayList<>(List.of(regions));
        l.add(r);
        return new GuestMemory(l);
    }

    /** A new snapshot without {@code r}. */
    public GuestMemory without(MemoryRegion r) {
        List<MemoryRegion> l = new ArrayList<>(List.of(regions));
        l.remove(r);
        return new GuestMemory(l);
    }

    /** Index of the region containing guest-physical address {@code gpa}, or -1. */
    public int regionOfGpa(long gpa) {
        for (int i = 0; i < gpaStart.length; i++) {
            if (Long.compareUnsigned(gpa, gpaStart[i]) >= 0 && Long.compareUnsigned(gpa, gpaEnd[i]) < 0) return i;
        }
        return -1;
    }

    /** Bytes available from {@code gpa} to the end of region {@code region}. */
    public long contiguous(int region, long gpa) {
        return gpaEnd[region] - gpa;
    }

    public MemorySegment segment(int region) {
        return segments[region];
    }

    public long offsetInRegion(int region, long gpa) {
        return gpa - gpaStart[region];
    }

    /**
     * The segment for {@code [gpa, gpa+len)} if it lies inside one region, else {@code null}.
     * Control path and tests (allocates a slice).
     */
    public MemorySegment sliceGpa(long gpa, long len) {
        int r = regionOfGpa(gpa);
        if (r < 0 || len < 0 || Long.compareUnsigned(len, contiguous(r, gpa)) > 0) return null;
        return segments[r].asSlice(gpa - gpaStart[r], len);
    }

    /**
     * The segment for front-end virtual range {@code [uva, uva+len)} if it lies inside one region,
     * else {@code null}. Used for ring addresses (SET_VRING_ADDR).
     */
    public MemorySegment sliceUva(long uva, long len) {
        for (MemoryRegion r : regions) {
            long off = uva - r.userAddr();
            if (Long.compareUnsigned(uva, r.userAddr()) >= 0 && Long.compareUnsigned(off, r.size()) < 0) {
                if (len < 0 || Long.compareUnsigned(len, r.size() - off) > 0) return null;
                return r.segment().asSlice(off, len);
            }
        }
        return null;
    }

    /** Translates a front-end virtual address to guest-physical, or -1 when unmapped. */
    public long uvaToGpa(long uva) {
        for (MemoryRegion r : regions) {
            long off = uva - r.userAddr();
            if (Long.compareUnsigned(uva, r.userAddr()) >= 0 && Long.compareUnsigned(off, r.size()) < 0) {
                return r.guestPhysAddr() + off;
            }
        }
        return -1;
    }
}
