package io.jvhost.bench;

import io.jvhost.memory.GuestMemory;
import io.jvhost.memory.MemoryRegion;
import io.jvhost.virtio.DriverSplitQueue;
import io.jvhost.virtio.Notifier;
import io.jvhost.virtio.SplitVirtQueue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.List;

import static io.jvhost.virtio.SplitRing.*;

/**
 * One "guest RAM" region in plain off-heap memory with a split ring at its start and room for
 * virtio-blk-shaped buffers after it: per slot a 16-byte header, a 4 KiB data buffer and a
 * status byte. Both sides of the ring live here: a {@link DriverSplitQueue} playing the guest
 * and the target's {@link SplitVirtQueue}, as the tests build them.
 */
final class GuestRam implements AutoCloseable {
    static final long GPA_BASE = 0x4000_0000L;          // not zero, as in a real guest
    static final long DESC_OFF = 0x0000;
    static final long AVAIL_OFF = 0x4000;               // 4 + 2 * 1024 + 2 bytes max
    static final long USED_OFF = 0x5000;                // 4 + 8 * 1024 + 2 bytes max
    static final long HEADER_OFF = 0x8000;              // 16 bytes per slot
    static final long STATUS_OFF = 0xc000;              // 1 byte per slot
    static final long DATA_OFF = 0x10000;               // 4 KiB per slot
    static final int DATA_LEN = 4096;
    static final int MAX_SLOTS = 256;

    final Arena arena = Arena.ofShared();
    final MemorySegment ram;
    final GuestMemory memory;
    final int queueSize;

    GuestRam(int queueSize) {
        if (queueSize > 1024 || descTableBytes(queueSize) > AVAIL_OFF) throw new IllegalArgumentException("queue size " + queueSize);
        this.queueSize = queueSize;
        ram = arena.allocate(DATA_OFF + (long) DATA_LEN * MAX_SLOTS, 4096);
        memory = new GuestMemory(List.of(MemoryRegion.ofSegment(GPA_BASE, ram.address(), ram)));
    }

    DriverSplitQueue driver(boolean eventIdx) {
        return new DriverSplitQueue(queueSize, ram.asSlice(DESC_OFF), ram.asSlice(AVAIL_OFF), ram.asSlice(USED_OFF), eventIdx);
    }

    /** The target side, built the way the session builds it (ring slices, maxBuffers). */
    SplitVirtQueue device(boolean eventIdx) {
        return SplitVirtQueue.fromUserAddresses(0, queueSize, memory, ram.address() + DESC_OFF, ram.address() + AVAIL_OFF,
                ram.address() + USED_OFF, eventIdx, true, 0, Notifier.NONE, Math.max(queueSize, 256) + 64);
    }

    static long headerGpa(int slot) { return GPA_BASE + HEADER_OFF + 16L * slot; }
    static long statusGpa(int slot) { return GPA_BASE + STATUS_OFF + slot; }
    static long dataGpa(int slot) { return GPA_BASE + DATA_OFF + (long) DATA_LEN * slot; }

    /** Queues a virtio-blk-shaped chain for {@code slot}: header (R), 4 KiB data (W), status (W). */
    static void addBlkChain(DriverSplitQueue d, int slot) {
        d.begin(3);
        d.add(headerGpa(slot), 16, false);
        d.add(dataGpa(slot), DATA_LEN, true);
        d.add(statusGpa(slot), 1, true);
        d.end();
    }

    @Override
    public void close() {
        arena.close();
    }
}
