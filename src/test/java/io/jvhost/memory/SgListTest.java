package io.jvhost.memory;

import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import static org.assertj.core.api.Assertions.assertThat;

class SgListTest {
    @Test
    void growsUpToItsMaximumAndClearDropsReferences() {
        MemorySegment m = MemorySegment.ofArray(new byte[64]);
        SgList l = new SgList(2, 5);
        for (int i = 0; i < 5; i++) assertThat(l.add(m, i, 10)).isTrue();
        assertThat(l.add(m, 0, 1)).as("full at max").isFalse();
        assertThat(l.count()).isEqualTo(5);
        assertThat(l.bytes()).isEqualTo(50);
        assertThat(l.offset(3)).isEqualTo(3);
        l.clear();
        assertThat(l.count()).isZero();
        assertThat(l.bytes()).isZero();
        assertThat(l.add(m, 7, 3)).isTrue();
        assertThat(l.segment(0)).isSameAs(m);
    }

    @Test
    void copiesAndRangesFollowTheByteStreamOfASubrange() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment m = a.allocate(100);
            for (int i = 0; i < 100; i++) m.set(ValueLayout.JAVA_BYTE, i, (byte) i);
            SgList l = new SgList(8);
            l.add(m, 0, 4);   // readable: bytes 0..3
            l.add(m, 50, 3);  //           bytes 50..52
            l.add(m, 90, 5);  // writable: bytes 90..94
            MemorySegment out = a.allocate(10);
            assertThat(l.copyOut(0, 2, 2, out, 0, 4)).isEqualTo(4);
            assertThat(out.toArray(ValueLayout.JAVA_BYTE)).startsWith(2, 3, 50, 51);
            assertThat(l.copyOut(0, 2, 5, out, 0, 10)).as("stops at the end of the subrange").isEqualTo(2);
            MemorySegment src = a.allocate(3).fill((byte) -1);
            assertThat(l.copyIn(2, 3, 1, src, 0, 3)).isEqualTo(3);
            assertThat(m.get(ValueLayout.JAVA_BYTE, 90)).isEqualTo((byte) 90);
            assertThat(m.get(ValueLayout.JAVA_BYTE, 91)).isEqualTo((byte) -1);
            assertThat(m.get(ValueLayout.JAVA_BYTE, 94)).isEqualTo((byte) 94);
            SgList dst = new SgList(2);
            assertThat(l.appendRangeTo(dst, 0, 2, 3, 3)).isTrue();
            assertThat(dst.count()).isEqualTo(2);
            assertThat(dst.offset(0)).isEqualTo(3);
            assertThat(dst.length(0)).isEqualTo(1);
            assertThat(dst.offset(1)).isEqualTo(50);
            assertThat(dst.length(1)).isEqualTo(2);
            assertThat(l.appendRangeTo(new SgList(8), 0, 2, 0, 8)).as("range past the end").isFalse();
            assertThat(l.appendRangeTo(new SgList(1), 0, 2, 0, 6)).as("no room").isFalse();
        }
    }
}
