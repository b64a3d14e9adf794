package io.jvhost.virtio;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;

/**
 * A minimal device side of a packed ring for tests of {@link DriverPackedQueue}, written from
 * VIRTIO 1.2 2.8 alone (not from the target's {@code PackedVirtQueue}): it takes available
 * buffers in ring order, checking every descriptor's AVAIL/USED bits against its own avail wrap
 * counter and that all descriptors of a chain carry one buffer id, and writes used descriptors
 * at its own used position. Guest addresses are offsets into {@code memory}.
 */
final class PackedTestDevice {
    /** One buffer as the device sees it. */
    record Buffer(long addr, int len, boolean writable) {}

    /** One available chain: its id, the ring slots it took, whether it was indirect, its buffers. */
    record Chain(int id, int slots, boolean indirect, List<Buffer> buffers) {}

    private final int size;
    private final MemorySegment ring, driverEvent, deviceEvent, memory;
    int availPos, usedPos;
    boolean availWrap = true, usedWrap = true;

    PackedTestDevice(int size, MemorySegment ring, MemorySegment driverEvent, MemorySegment deviceEvent, MemorySegment memory) {
        this.size = size;
        this.ring = ring;
        this.driverEvent = driverEvent;
        this.deviceEvent = deviceEvent;
        this.memory = memory;
    }

    private int flags(int pos) {
        return Short.toUnsignedInt(ring.get(LittleEndian.U16, pos * 16L + 14));
    }

    private boolean available(int pos, boolean wrap) {
        int f = flags(pos);
        boolean a = (f & DriverPackedQueue.F_AVAIL) != 0, u = (f & DriverPackedQueue.F_USED) != 0;
        return a == wrap && u != wrap;
    }

    /** The next available chain, or null when the descriptor at our avail position is not available. */
    Chain take() {
        if (!available(availPos, availWrap)) return null;
        int pos = availPos;
        boolean wrap = availWrap;
        List<Buffer> bufs = new ArrayList<>();
        int id = -1;
        int slots = 0;
        boolean indirect = false;
        while (true) {
            if (!available(pos, wrap)) throw new AssertionError("descriptor " + pos + " of a chain is not marked available for wrap " + wrap);
            long at = pos * 16L;
            int f = flags(pos);
            int thisId = Short.toUnsignedInt(ring.get(LittleEndian.U16, at + 12));
            if (id >= 0 && thisId != id) throw new AssertionError("chain mixes buffer ids " + id + " and " + thisId);
            id = thisId;
            long addr = ring.get(LittleEndian.U64, at);
            int len = ring.get(LittleEndian.U32, at + 8);
            slots++;
            if ((f & DriverPackedQueue.F_INDIRECT) != 0) {
                if (slots != 1 || (f & DriverPackedQueue.F_NEXT) != 0) throw new AssertionError("indirect descriptor inside a chain");
                if (len % 16 != 0 || len == 0) throw new AssertionError("indirect table length " + len);
                indirect = true;
                for (int i = 0; i < len / 16; i++) {
                    long t = addr + i * 16L;
                    int tf = Short.toUnsignedInt(memory.get(LittleEndian.U16, t + 14));
                    bufs.add(new Buffer(memory.get(LittleEndian.U64, t), memory.get(LittleEndian.U32, t + 8), (tf & DriverPackedQueue.F_WRITE) != 0));
                }
            } else {
                bufs.add(new Buffer(addr, len, (f & DriverPackedQueue.F_WRITE) != 0));
            }
            if (++pos == size) {
                pos = 0;
                wrap = !wrap;
            }
            if ((f & DriverPackedQueue.F_NEXT) == 0) break;
            if (slots == size) throw new AssertionError("chain longer than the ring");
        }
        availPos = pos;
        availWrap = wrap;
        return new Chain(id, slots, indirect, bufs);
    }

    /** Every chain available now. */
    List<Chain> takeAll() {
        List<Chain> l = new ArrayList<>();
        for (Chain c; (c = take()) != null; ) l.add(c);
        return l;
    }

    /** Writes the used descriptor of {@code c} at our used position (flags last) and skips its slots. */
    void complete(Chain c, int len) {
        long at = usedPos * 16L;
        ring.set(LittleEndian.U32, at + 8, len);
        ring.set(LittleEndian.U16, at + 12, (short) c.id());
        int f = flags(usedPos) & ~(DriverPackedQueue.F_AVAIL | DriverPackedQueue.F_USED);
        if (usedWrap) f |= DriverPackedQueue.F_AVAIL | DriverPackedQueue.F_USED;
        LittleEndian.ALIGNED_U16.setRelease(ring, at + 14, (short) f);
        usedPos += c.slots();
        if (usedPos >= size) {
            usedPos -= size;
            usedWrap = !usedWrap;
        }
    }

    /**
     * Without allocating (for allocation tests): takes the chain at our avail position and
     * returns it used at once, in order; false when none is available.
     */
    boolean completeInOrder() {
        if (!available(availPos, availWrap)) return false;
        int slots = 0;
        int id;
        while (true) {
            int f = flags(availPos);
            id = Short.toUnsignedInt(ring.get(LittleEndian.U16, availPos * 16L + 12));
            slots++;
            if (++availPos == size) {
                availPos = 0;
                availWrap = !availWrap;
            }
            if ((f & DriverPackedQueue.F_NEXT) == 0) break;
        }
        long at = usedPos * 16L;
        ring.set(LittleEndian.U32, at + 8, 1);
        ring.set(LittleEndian.U16, at + 12, (short) id);
        LittleEndian.ALIGNED_U16.setRelease(ring, at + 14, (short) (usedWrap ? DriverPackedQueue.F_AVAIL | DriverPackedQueue.F_USED : 0));
        usedPos += slots;
        if (usedPos >= size) {
            usedPos -= size;
            usedWrap = !usedWrap;
        }
        return true;
    }

    /** Our event suppression structure (the driver reads it to decide on kicks). */
    void kickMode(int flags, int off, boolean wrap) {
        deviceEvent.set(LittleEndian.U16, 0, (short) (off | (wrap ? 0x8000 : 0)));
        deviceEvent.set(LittleEndian.U16, 2, (short) flags);
    }

    /** The driver's event suppression flags (whether it wants calls). */
    int driverEventFlags() {
        return Short.toUnsignedInt(driverEvent.get(LittleEndian.U16, 2));
    }
}
