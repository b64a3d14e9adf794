package io.jvhost.virtio;

import io.jvhost.memory.GuestMemory;
import io.jvhost.memory.MemoryRegion;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.constraints.IntRange;
import net.jqwik.api.constraints.Size;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Random descriptor tables and available rings (a guest writing garbage): the walker
 * terminates, never throws, only hands out buffers inside guest memory, and accounts for every
 * head it consumed (completed by the device or returned as malformed).
 */
class RingFuzzProperties {
    @Property(tries = 500)
    void garbageRingsAreHandledSafely(@ForAll @Size(value = 16 * 16) byte[] descBytes, @ForAll @Size(value = 16) short[] availEntries,
                                      @ForAll @IntRange(min = 0, max = 40) int availIdx, @ForAll boolean indirect,
                                      @ForAll @IntRange(min = 0, max = 0xffff) int gpaSeed) {
        int size = 16;
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment region = arena.allocate(0x10000, 4096);
            GuestMemory mem = new GuestMemory(List.of(MemoryRegion.ofSegment(0, region.address(), region)));
            MemorySegment desc = region.asSlice(0, SplitRing.descTableBytes(size));
            MemorySegment avail = region.asSlice(0x1000, SplitRing.availBytes(size));
            MemorySegment used = region.asSlice(0x2000, SplitRing.usedBytes(size));
            MemorySegment.copy(descBytes, 0, desc, ValueLayout.JAVA_BYTE, 0, descBytes.length);
            // make some addresses plausible so walks go deeper than the first descriptor
            for (int i = 0; i < size; i++) {
                if (((gpaSeed >> (i % 16)) & 1) == 0) desc.set(ValueLayout.JAVA_LONG_UNALIGNED, i * 16L, 0x3000 + (gpaSeed & 0xfff0));
                if (((gpaSeed >> ((i + 3) % 16)) & 1) == 0) desc.set(ValueLayout.JAVA_INT_UNALIGNED, i * 16L + 8, (gpaSeed & 0x7ff));
            }
            for (int i = 0; i < size; i++) avail.set(ValueLayout.JAVA_SHORT_UNALIGNED, 4 + 2L * i, availEntries[i]);
            avail.set(ValueLayout.JAVA_SHORT, 2, (short) availIdx);
            SplitVirtQueue q = new SplitVirtQueue(0, size, mem, desc, avail, used, false, indirect, 0, Notifier.NONE, 64);
            int[] handled = {0};
            int consumed = q.poll((qq, c) -> {
                for (int i = 0; i < c.bufferCount(); i++) {
                    assertThat(c.segment(i)).isSameAs(region);
                    assertThat(c.offset(i) + c.length(i)).isLessThanOrEqualTo(region.byteSize());
                }
                handled[0]++;
                qq.complete(c.head(), 0);
            }, 64);
            q.flush();
            assertThat(consumed).isLessThanOrEqualTo(size);
            if (!q.isBroken()) {
                // every consumed head is back on the used ring
                assertThat(Short.toUnsignedInt(used.get(ValueLayout.JAVA_SHORT, 2))).isEqualTo(consumed);
                assertThat(q.inFlight()).isZero();
                assertThat(handled[0] + q.stats.chainErrors()).isEqualTo(consumed);
            }
        }
    }
}
