package io.jvhost.memory;

import net.jqwik.api.*;
import net.jqwik.api.constraints.IntRange;
import net.jqwik.api.constraints.LongRange;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Address translation across region boundaries, checked against a naive model: walking a range
 * piece by piece visits exactly the model's bytes, in order, and never leaves a region.
 */
class GuestMemoryProperties {
    /** Regions laid out from sizes and gaps (in 4 KiB pages) starting at a base. */
    record Layout(long base, List<long[]> regions) {}

    @Provide
    Arbitrary<Layout> layouts() {
        Arbitrary<Long> base = Arbitraries.longs().between(0, 1L << 40).map(v -> v & ~0xfffL);
        Arbitrary<List<int[]>> shapes = Arbitraries.integers().between(1, 8).list().ofMinSize(1).ofMaxSize(5)
                .flatMap(sizes -> Arbitraries.integers().between(0, 3).list().ofSize(sizes.size()).map(gaps -> {
                    List<int[]> l = new ArrayList<>();
                    for (int i = 0; i < sizes.size(); i++) l.add(new int[] {sizes.get(i), gaps.get(i)});
                    return l;
                }));
        return Combinators.combine(base, shapes).as((b, sh) -> {
            List<long[]> regions = new ArrayList<>();
            long at = b;
            for (int[] s : sh) {
                at += s[1] * 4096L;
                regions.add(new long[] {at, s[0] * 4096L});
                at += s[0] * 4096L;
            }
            return new Layout(b, regions);
        });
    }

    @Property(tries = 300)
    void piecewiseTranslationMatchesTheModel(@ForAll("layouts") Layout layout, @ForAll @LongRange(min = -8192, max = 80000) long startDelta,
                                             @ForAll @IntRange(min = 0, max = 50000) int len) {
        try (Arena arena = Arena.ofConfined()) {
            List<MemoryRegion> rs = new ArrayList<>();
            for (long[] r : layout.regions()) {
                MemorySegment seg = arena.allocate(r[1], 8);
                // fill each byte with a function of its guest-physical address
                for (long i = 0; i < r[1]; i += 8) seg.set(java.lang.foreign.ValueLayout.JAVA_LONG_UNALIGNED, i, r[0] + i);
                rs.add(MemoryRegion.ofSegment(r[0], 0x7000_0000_0000L + r[0], seg));
            }
            GuestMemory mem = new GuestMemory(rs);
            long gpa = layout.base() + startDelta;
            // model: is every byte of [gpa, gpa+len) inside some region?
            boolean modelOk = true;
            for (long a = gpa; a < gpa + len && modelOk; a++) {
                boolean in = false;
                for (long[] r : layout.regions()) if (a >= r[0] && a < r[0] + r[1]) in = true;
                modelOk = in;
            }
            // walk like the ring walker does
            long addr = gpa, left = len;
            boolean ok = true;
            while (left > 0) {
                int r = mem.regionOfGpa(addr);
                if (r < 0) { ok = false; break; }
                long piece = Math.min(left, mem.contiguous(r, addr));
                long off = mem.offsetInRegion(r, addr);
                assertThat(off).isBetween(0L, mem.segment(r).byteSize() - 1);
                assertThat(off + piece).isLessThanOrEqualTo(mem.segment(r).byteSize());
                // the bytes there are the ones at that guest-physical address
                long aligned = (addr + 7) & ~7L;
                if (aligned + 8 <= addr + piece) {
                    assertThat(mem.segment(r).get(java.lang.foreign.ValueLayout.JAVA_LONG_UNALIGNED, mem.offsetInRegion(r, aligned)))
                            .isEqualTo(aligned - ((aligned - rs.get(r).guestPhysAddr()) % 8));
                }
                addr += piece;
                left -= piece;
            }
            assertThat(ok).isEqualTo(modelOk);
            // single-region slices agree with the model for the whole range
            MemorySegment slice = mem.sliceGpa(gpa, len);
            if (slice != null) assertThat(modelOk).isTrue();
        }
    }

    @Property(tries = 100)
    void overlappingRegionsAreRejected(@ForAll @LongRange(min = 0, max = 1 << 20) long a, @ForAll @LongRange(min = 1, max = 1 << 16) long sizeA,
                                       @ForAll @LongRange(min = 0, max = 1 << 20) long b, @ForAll @LongRange(min = 1, max = 1 << 16) long sizeB) {
        try (Arena arena = Arena.ofConfined()) {
            MemoryRegion ra = MemoryRegion.ofSegment(a, 0, arena.allocate(sizeA));
            MemoryRegion rb = MemoryRegion.ofSegment(b, 1L << 40, arena.allocate(sizeB));
            boolean overlap = a < b + sizeB && b < a + sizeA;
            if (overlap) {
                org.assertj.core.api.Assertions.assertThatThrownBy(() -> new GuestMemory(List.of(ra, rb))).hasMessageContaining("overlap");
            } else {
                assertThat(new GuestMemory(List.of(ra, rb)).regionCount()).isEqualTo(2);
            }
        }
    }
}
