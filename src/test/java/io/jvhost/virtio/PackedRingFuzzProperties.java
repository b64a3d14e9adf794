package io.jvhost.virtio;

import io.jvhost.memory.GuestMemory;
import io.jvhost.memory.MemoryRegion;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.constraints.IntRange;
import net.jqwik.api.constraints.Size;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Random packed descriptor rings and indirect tables (a guest writing garbage, flipping AVAIL/USED
 * bits at random): over several polls with completions in random order, the walker terminates,
 * never throws, never consumes more chains than the budget, only hands out buffers inside guest
 * memory and within the chain limit, keeps at most the queue size of chains in flight, and every
 * chain it took is completed exactly once. Queue sizes: every size up to 16 and larger ones that
 * are not powers of two (packed rings may have any size, VIRTIO 1.2 2.8; the walker must not
 * assume a mask).
 */
class PackedRingFuzzProperties {
    /** 1..16, and sizes around and between powers of two up to the session bound. */
    @Provide
    Arbitrary<Integer> sizes() {
        return Arbitraries.oneOf(Arbitraries.integers().between(1, 16), Arbitraries.of(17, 31, 33, 100, 127, 129, 255, 257, 1000, 1023));
    }

    @Property(tries = 400)
    void garbageRingsAreHandledSafely(@ForAll @Size(value = 16 * 16) byte[] ringBytes, @ForAll @Size(value = 64 * 16) byte[] tableBytes,
                                      @ForAll boolean indirect, @ForAll boolean eventIdx, @ForAll @IntRange(min = 0, max = 0xffff) int seed,
                                      @ForAll @IntRange(min = 1, max = 20) int budget, @ForAll("sizes") int size) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment region = arena.allocate(0x10000, 4096);
            GuestMemory mem = new GuestMemory(List.of(MemoryRegion.ofSegment(0, region.address(), region)));
            MemorySegment ring = region.asSlice(0, PackedRing.ringBytes(size));
            // rings larger than the drawn bytes repeat them (then the loop below varies every descriptor)
            for (long at = 0; at < ring.byteSize(); at += ringBytes.length) {
                MemorySegment.copy(ringBytes, 0, ring, ValueLayout.JAVA_BYTE, at, (int) Math.min(ringBytes.length, ring.byteSize() - at));
            }
            MemorySegment table = region.asSlice(0x4000, tableBytes.length);
            MemorySegment.copy(tableBytes, 0, table, ValueLayout.JAVA_BYTE, 0, tableBytes.length);
            Random rnd = new Random(seed);
            // Make some descriptors plausible (addresses in memory, small lengths, indirect tables at 0x4000).
            for (MemorySegment t : List.of(ring, table)) {
                for (long at = 0; at < t.byteSize(); at += 16) {
                    if (rnd.nextInt(3) > 0) t.set(LittleEndian.U64, at, 0x1000L + rnd.nextInt(0xe000));
                    if (rnd.nextInt(3) > 0) t.set(LittleEndian.U32, at + 8, rnd.nextInt(0x800));
                    if (rnd.nextInt(8) == 0) {
                        t.set(LittleEndian.U64, at, 0x4000L + 16L * rnd.nextInt(32));
                        t.set(LittleEndian.U32, at + 8, 16 * rnd.nextInt(20));
                    }
                }
            }
            MemorySegment driverArea = region.asSlice(0x8000, 4);
            MemorySegment deviceArea = region.asSlice(0x8010, 4);
            PackedVirtQueue q = new PackedVirtQueue(0, size, mem, ring, driverArea, deviceArea, eventIdx, indirect, seed & 0x8000 | (seed % size),
                    Notifier.NONE, 8);
            List<Integer> inFlight = new ArrayList<>();
            int taken = 0;
            int handled = 0;
            for (int round = 0; round < 6; round++) {
                int got = q.poll((qq, c) -> {
                    assertThat(c.descriptorCount()).isLessThanOrEqualTo(qq.chainLimit());
                    for (int i = 0; i < c.bufferCount(); i++) {
                        assertThat(c.segment(i)).isSameAs(region);
                        assertThat(c.offset(i) + c.length(i)).isLessThanOrEqualTo(region.byteSize());
                    }
                    assertThat(inFlight).doesNotContain(c.head());
                    inFlight.add(c.head());
                }, budget);
                assertThat(got).isBetween(0, budget);
                taken += got;
                handled = inFlight.size();
                assertThat(q.inFlight()).isEqualTo(inFlight.size()).isLessThanOrEqualTo(size);
                // complete a random part, in random order
                for (int k = inFlight.size(); k > 0; k--) {
                    if (rnd.nextBoolean()) q.complete(inFlight.remove(rnd.nextInt(inFlight.size())), rnd.nextInt(100));
                }
                q.flush();
                // the guest scribbles on a flag word between polls
                ring.set(LittleEndian.U16, 16L * rnd.nextInt(size) + 14, (short) rnd.nextInt(0x10000));
                if (q.isBroken()) break;
            }
            for (int h : inFlight) q.complete(h, 0);
            q.flush();
            assertThat(q.inFlight()).isZero();
            assertThat(q.stats.requests()).isEqualTo(taken);
            assertThat(handled).isLessThanOrEqualTo(taken);
        }
    }
}
