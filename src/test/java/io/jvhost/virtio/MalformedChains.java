package io.jvhost.virtio;

import org.junit.jupiter.params.provider.Arguments;

import java.util.stream.Stream;

import static io.jvhost.virtio.SplitRing.F_INDIRECT;
import static io.jvhost.virtio.SplitRing.F_NEXT;
import static io.jvhost.virtio.SplitRing.F_WRITE;

/**
 * The catalogue of malformed chains a hostile driver can build, as data: each case lays out
 * abstract descriptors through a {@link RingWriter} and names the error the device must report.
 * The ring format is the writer's business, so packed rings can run the same table (cases that
 * need {@code next} links only the split format can express say so in their name).
 *
 * <p>Guest memory the cases assume: RAM at [0x10000, 0x50000) in two adjacent regions and at
 * [0x100000, 0x110000), nothing between; queue size 16; the writer's indirect table at
 * {@link RingWriter#indirectTableGpa()} in the last region.
 */
final class MalformedChains {
    private MalformedChains() {}

    /** Where a ring format puts descriptors. Flags and links use the split ring's bits. */
    interface RingWriter {
        int queueSize();
        /** Descriptor {@code index} of the ring's own table. */
        void descriptor(int index, long gpa, int len, int flags, int next);
        /** Guest address of the scratch area for an indirect table. */
        long indirectTableGpa();
        /** Entry {@code index} of the table at {@link #indirectTableGpa()}. */
        void indirectEntry(int index, long gpa, int len, int flags, int next);
    }

    /** Lays a chain out; returns the head to make available. */
    @FunctionalInterface
    interface Layout {
        int build(RingWriter w);
    }

    /**
     * @param indirect         whether VIRTIO_RING_F_INDIRECT_DESC is negotiated
     * @param chainCapacity    buffers the device's chain flyweight holds
     * @param queueStaysUsable false for ring-level corruption that stops the queue
     */
    record Case(String name, Layout layout, ChainError expected, boolean queueStaysUsable, boolean indirect, int chainCapacity) {
        @Override
        public String toString() {
            return name;
        }
    }

    static final long RAM = 0x20000;
    static final long GAP = 0x60000;
    static final long END_OF_RAM = 0x110000;

    private static Case bad(String name, ChainError why, Layout layout) {
        return new Case(name, layout, why, true, true, 64);
    }

    static Stream<Arguments> catalogue() {
        return Stream.of(
                bad("loop between two descriptors", ChainError.LOOP, w -> {
                    w.descriptor(0, RAM, 16, F_NEXT, 1);
                    w.descriptor(1, RAM, 16, F_NEXT, 0);
                    return 0;
                }),
                bad("descriptor pointing at itself", ChainError.LOOP, w -> {
                    w.descriptor(3, RAM, 16, F_NEXT, 3);
                    return 3;
                }),
                bad("next index past the table", ChainError.NEXT_OUT_OF_RANGE, w -> {
                    w.descriptor(0, RAM, 16, F_NEXT, w.queueSize());
                    return 0;
                }),
                bad("buffer in a hole of guest memory", ChainError.ADDRESS_OUT_OF_RANGE, w -> {
                    w.descriptor(0, GAP, 16, 0, 0);
                    return 0;
                }),
                bad("buffer running off the end of guest memory", ChainError.ADDRESS_OUT_OF_RANGE, w -> {
                    w.descriptor(0, END_OF_RAM - 0x1000, 0x2000, 0, 0);
                    return 0;
                }),
                bad("buffer address wrapping around 2^64", ChainError.ADDRESS_OUT_OF_RANGE, w -> {
                    w.descriptor(0, -16L, 0x100, 0, 0);
                    return 0;
                }),
                bad("device-readable after device-writable", ChainError.READABLE_AFTER_WRITABLE, w -> {
                    w.descriptor(0, RAM, 16, F_NEXT | F_WRITE, 1);
                    w.descriptor(1, RAM, 16, 0, 0);
                    return 0;
                }),
                new Case("indirect without the feature", w -> {
                    w.descriptor(0, w.indirectTableGpa(), 32, F_INDIRECT, 0);
                    return 0;
                }, ChainError.INDIRECT_NOT_NEGOTIATED, true, false, 64),
                bad("indirect table inside an indirect table", ChainError.NESTED_INDIRECT, w -> {
                    w.indirectEntry(0, w.indirectTableGpa() + 0x100, 32, F_INDIRECT, 0);
                    w.descriptor(0, w.indirectTableGpa(), 16, F_INDIRECT, 0);
                    return 0;
                }),
                bad("indirect and next together", ChainError.INDIRECT_WITH_NEXT, w -> {
                    w.descriptor(0, w.indirectTableGpa(), 16, F_INDIRECT | F_NEXT, 1);
                    return 0;
                }),
                bad("indirect table length not a multiple of 16", ChainError.BAD_INDIRECT_LENGTH, w -> {
                    w.descriptor(0, w.indirectTableGpa(), 24, F_INDIRECT, 0);
                    return 0;
                }),
                bad("indirect table of length 0", ChainError.BAD_INDIRECT_LENGTH, w -> {
                    w.descriptor(1, w.indirectTableGpa(), 0, F_INDIRECT, 0);
                    return 1;
                }),
                bad("indirect table running off the end of guest memory", ChainError.ADDRESS_OUT_OF_RANGE, w -> {
                    w.descriptor(0, END_OF_RAM - 16, 32, F_INDIRECT, 0);
                    return 0;
                }),
                bad("loop inside an indirect table", ChainError.LOOP, w -> {
                    w.indirectEntry(0, RAM, 16, F_NEXT, 1);
                    w.indirectEntry(1, RAM, 16, F_NEXT, 0);
                    w.descriptor(0, w.indirectTableGpa(), 32, F_INDIRECT, 0);
                    return 0;
                }),
                bad("zero-length loop filling a queue-size indirect table", ChainError.LOOP, w -> {
                    int n = w.queueSize();
                    for (int i = 0; i < n; i++) w.indirectEntry(i, RAM, 0, F_NEXT, (i + 1) % n);
                    w.descriptor(0, w.indirectTableGpa(), n * 16, F_INDIRECT, 0);
                    return 0;
                }),
                new Case("more buffers than the device takes", w -> {
                    for (int i = 0; i < 5; i++) w.descriptor(i, RAM, 16, i < 4 ? F_NEXT : 0, i + 1);
                    return 0;
                }, ChainError.TOO_MANY_BUFFERS, true, false, 4),
                // The whole-chain budget (VIRTIO 1.2, 2.7.5.3.1): indirect entries count too.
                bad("indirect table longer than the queue", ChainError.INDIRECT_TABLE_TOO_LONG, w -> {
                    int n = w.queueSize() + 1;
                    for (int i = 0; i < n; i++) w.indirectEntry(i, RAM, 16, i < n - 1 ? F_NEXT : 0, i + 1);
                    w.descriptor(0, w.indirectTableGpa(), n * 16, F_INDIRECT, 0);
                    return 0;
                }),
                bad("indirect table of 2^16 entries", ChainError.INDIRECT_TABLE_TOO_LONG, w -> {
                    w.descriptor(0, w.indirectTableGpa(), 65536 * 16, F_INDIRECT, 0);
                    return 0;
                }),
                bad("direct descriptors plus an indirect table longer than the queue together", ChainError.CHAIN_TOO_LONG, w -> {
                    int n = w.queueSize();
                    // split only: n - 2 direct buffers, then a pointer to a table of 3 (n + 1 buffers)
                    for (int i = 0; i < n - 2; i++) w.descriptor(i, RAM, 16, F_NEXT, i + 1);
                    w.descriptor(n - 2, w.indirectTableGpa(), 48, F_INDIRECT, 0);
                    w.indirectEntry(0, RAM, 16, F_NEXT, 1);
                    w.indirectEntry(1, RAM, 16, F_NEXT, 2);
                    w.indirectEntry(2, RAM, 16, 0, 0);
                    return 0;
                }),
                new Case("head index past the queue (ring-level)", w -> w.queueSize() + 3,
                        ChainError.HEAD_OUT_OF_RANGE, false, true, 64)
        ).map(Arguments::of);
    }
}
