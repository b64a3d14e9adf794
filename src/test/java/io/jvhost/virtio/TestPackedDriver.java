package io.jvhost.virtio;

import java.lang.foreign.MemorySegment;
import java.lang.invoke.VarHandle;

import static io.jvhost.virtio.PackedRing.*;

/**
 * A small driver side of a packed ring for the device tests (VIRTIO 1.2, 2.8, the driver's
 * half): writes chains at its avail position with the wrap counter's AVAIL/USED bits (the
 * head's flags last, with release), reads used descriptors in ring order and reclaims slots by
 * the buffer id's descriptor count, as Linux's virtio_ring does. Not the initiator's driver.
 */
final class TestPackedDriver {
    private static final VarHandle U16 = LittleEndian.ALIGNED_U16;

    final int size;
    final MemorySegment ring;
    final MemorySegment driverArea;
    final MemorySegment deviceArea;
    int availPos;
    boolean availWrap = true;
    int usedPos;
    boolean usedWrap = true;
    int free;
    /** Ring descriptors of each outstanding buffer id. */
    final int[] descsOfId = new int[65536];

    TestPackedDriver(int size, MemorySegment ring, MemorySegment driverArea, MemorySegment deviceArea) {
        this.size = size;
        this.ring = ring;
        this.driverArea = driverArea;
        this.deviceArea = deviceArea;
        this.free = size;
    }

    /** One buffer of a chain. */
    record Buf(long gpa, int len, boolean writable) {}

    static Buf r(long gpa, int len) { return new Buf(gpa, len, false); }

    static Buf w(long gpa, int len) { return new Buf(gpa, len, true); }

    int availBits() {
        return availWrap ? F_AVAIL : F_USED;
    }

    /** Makes a direct chain available under buffer id {@code id}; returns its head slot. */
    int add(int id, Buf... bufs) {
        if (bufs.length > free) throw new IllegalStateException("ring full");
        int head = availPos;
        int headFlags = 0;
        for (int i = 0; i < bufs.length; i++) {
            int flags = (bufs[i].writable() ? F_WRITE : 0) | (i < bufs.length - 1 ? F_NEXT : 0) | availBits();
            if (i == 0) headFlags = flags;
            write(availPos, bufs[i].gpa(), bufs[i].len(), i == bufs.length - 1 ? id : 0xdead, i == 0 ? -1 : flags);
            advanceAvail();
        }
        descsOfId[id] = bufs.length;
        free -= bufs.length;
        U16.setRelease(ring, (long) head * DESC_SIZE + DESC_FLAGS, (short) headFlags);
        return head;
    }

    /** Makes a chain of raw descriptors available (flags get the AVAIL/USED bits); for malformed chains. */
    int addRaw(int id, long[] gpas, int[] lens, int[] flags) {
        int head = availPos;
        int headFlags = 0;
        for (int i = 0; i < gpas.length; i++) {
            int f = flags[i] | availBits();
            if (i == 0) headFlags = f;
            write(availPos, gpas[i], lens[i], id, i == 0 ? -1 : f);
            advanceAvail();
        }
        descsOfId[id] = gpas.length;
        free -= gpas.length;
        U16.setRelease(ring, (long) head * DESC_SIZE + DESC_FLAGS, (short) headFlags);
        return head;
    }

    /** Makes an indirect chain available: one ring descriptor naming a table at {@code tableGpa} of {@code entries}. */
    int addIndirect(int id, long tableGpa, int entries) {
        return addRaw(id, new long[] {tableGpa}, new int[] {entries * DESC_SIZE}, new int[] {F_INDIRECT});
    }

    /** Writes entry {@code i} of an indirect table laid out in {@code table}. */
    static void tableEntry(MemorySegment table, int i, Buf b) {
        long at = (long) i * DESC_SIZE;
        table.set(LittleEndian.U64, at + DESC_ADDR, b.gpa());
        table.set(LittleEndian.U32, at + DESC_LEN, b.len());
        table.set(LittleEndian.U16, at + DESC_ID, (short) 0);
        table.set(LittleEndian.U16, at + DESC_FLAGS, (short) (b.writable() ? F_WRITE : 0));
    }

    private void write(int slot, long gpa, int len, int id, int flags) {
        long at = (long) slot * DESC_SIZE;
        ring.set(LittleEndian.U64, at + DESC_ADDR, gpa);
        ring.set(LittleEndian.U32, at + DESC_LEN, len);
        ring.set(LittleEndian.U16, at + DESC_ID, (short) id);
        if (flags >= 0) ring.set(LittleEndian.U16, at + DESC_FLAGS, (short) flags);
    }

    private void advanceAvail() {
        if (++availPos == size) {
            availPos = 0;
            availWrap = !availWrap;
        }
    }

    /** A used descriptor as the driver reads it. */
    record Used(int slot, int id, int len, int flags) {}

    /** The next used descriptor, or null when the device has not published one. */
    Used poll() {
        long at = (long) usedPos * DESC_SIZE;
        int flags = Short.toUnsignedInt((short) U16.getAcquire(ring, at + DESC_FLAGS));
        boolean avail = (flags & F_AVAIL) != 0;
        boolean used = (flags & F_USED) != 0;
        if (avail != usedWrap || used != usedWrap) return null;
        int id = Short.toUnsignedInt(ring.get(LittleEndian.U16, at + DESC_ID));
        int len = ring.get(LittleEndian.U32, at + DESC_LEN);
        Used u = new Used(usedPos, id, len, flags);
        int n = descsOfId[id];
        free += n;
        usedPos += n;
        if (usedPos >= size) {
            usedPos -= size;
            usedWrap = !usedWrap;
        }
        return u;
    }

    /** Reclaims the next used descriptor without allocating: its buffer id, or -1 when there is none. */
    int reclaim() {
        long at = (long) usedPos * DESC_SIZE;
        int flags = Short.toUnsignedInt((short) U16.getAcquire(ring, at + DESC_FLAGS));
        if (((flags & F_AVAIL) != 0) != usedWrap || ((flags & F_USED) != 0) != usedWrap) return -1;
        int id = Short.toUnsignedInt(ring.get(LittleEndian.U16, at + DESC_ID));
        int n = descsOfId[id];
        free += n;
        usedPos += n;
        if (usedPos >= size) {
            usedPos -= size;
            usedWrap = !usedWrap;
        }
        return id;
    }

    /** Sets the driver event suppression structure (what the device reads before notifying). */
    void driverEvent(int flags, int offWrap) {
        driverArea.set(LittleEndian.U16, EVENT_OFF_WRAP, (short) offWrap);
        driverArea.set(LittleEndian.U16, EVENT_FLAGS, (short) flags);
    }

    int deviceEventFlags() {
        return Short.toUnsignedInt(deviceArea.get(LittleEndian.U16, EVENT_FLAGS));
    }

    int deviceEventOffWrap() {
        return Short.toUnsignedInt(deviceArea.get(LittleEndian.U16, EVENT_OFF_WRAP));
    }
}
