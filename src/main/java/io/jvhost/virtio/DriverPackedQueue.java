package io.jvhost.virtio;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;
import java.util.Arrays;

/**
 * The driver side of a packed virtqueue (VIRTIO 1.2, 2.8) over memory we own: used by the
 * initiator ({@code jvhost bench --ring packed}) and by tests that play the guest. Owned by one
 * thread.
 *
 * <pre>
 * descriptor ring, size x 16 bytes, 16-byte aligned (2.8.13):
 *   0      8      12   14     16
 *   | addr | len  | id | flags |
 *   flags: NEXT 0x1, WRITE 0x2, INDIRECT 0x4, AVAIL 0x80, USED 0x8000
 * event suppression structure, 4 bytes, 4-byte aligned (2.8.14), one written by each side:
 *   0                      2             4
 *   | off (0-14), wrap (15) | flags (0-1) |   flags: ENABLE 0, DISABLE 1, DESC 2 (EVENT_IDX)
 * </pre>
 *
 * <p>Bookkeeping (2.8.1, 2.8.6, 2.8.9): the driver writes chains at its next avail position,
 * marking each descriptor available with AVAIL = its avail wrap counter and USED = the inverse;
 * the counter flips when the position wraps, even in the middle of a chain. The device returns
 * one used descriptor per buffer (AVAIL = USED = its used wrap counter) carrying the buffer id,
 * written at its own used position, and skips as many slots as that buffer had descriptors; so
 * we remember each id's slot count, and the slots not between our used and avail positions are
 * the free ones. Buffer ids are a free list; a pinned chain keeps its id (and its descriptor
 * template) and is rewritten into the ring on each {@link #offer}: a packed ring has no
 * descriptor table to leave in place, but an indirect pinned chain costs one ring slot.
 *
 * <p>Ordering: all descriptors of a batch are written, then the flags of the batch's first head
 * with release (2.8.21.1: the device stops at the first unavailable descriptor, so later heads
 * may be plain stores). Used descriptors are read with one acquire load of their last 8 bytes
 * (len, id and flags together: the device writes flags last). A full fence separates
 * publishing from reading the device's event suppression (2.8.10).
 */
public final class DriverPackedQueue implements DriverQueue {
    // The layout is the device side's (PackedRing); the names stay here for the driver's users.
    public static final int DESC_SIZE = PackedRing.DESC_SIZE;
    public static final int DESC_ADDR = PackedRing.DESC_ADDR, DESC_LEN = PackedRing.DESC_LEN, DESC_ID = PackedRing.DESC_ID,
            DESC_FLAGS = PackedRing.DESC_FLAGS;
    public static final int F_NEXT = PackedRing.F_NEXT, F_WRITE = PackedRing.F_WRITE, F_INDIRECT = PackedRing.F_INDIRECT;
    public static final int F_AVAIL = PackedRing.F_AVAIL, F_USED = PackedRing.F_USED;
    /** Event suppression structure: size and fields (2.8.14). */
    public static final int EVENT_BYTES = PackedRing.EVENT_BYTES, EVENT_OFF_WRAP = PackedRing.EVENT_OFF_WRAP, EVENT_FLAGS = PackedRing.EVENT_FLAGS;
    public static final int EVENT_ENABLE = PackedRing.EVENT_FLAGS_ENABLE, EVENT_DISABLE = PackedRing.EVENT_FLAGS_DISABLE,
            EVENT_DESC = PackedRing.EVENT_FLAGS_DESC;
    /** Largest packed queue (2.8: 15 bits of position). */
    public static final int MAX_SIZE = PackedRing.MAX_QUEUE_SIZE;
    private static final int WRAP_BITS = F_AVAIL | F_USED;

    private static final ValueLayout.OfLong LE64 = LittleEndian.U64;
    private static final ValueLayout.OfInt LE32 = LittleEndian.U32;
    private static final ValueLayout.OfShort LE16 = LittleEndian.U16;
    private static final VarHandle ALIGNED_U16 = LittleEndian.ALIGNED_U16;
    private static final VarHandle ALIGNED_U64 = ValueLayout.JAVA_LONG.withOrder(ByteOrder.LITTLE_ENDIAN).varHandle();
    private static final ValueLayout.OfInt ALIGNED_U32 = ValueLayout.JAVA_INT.withOrder(ByteOrder.LITTLE_ENDIAN);

    private final int size;
    private final MemorySegment ring, driverEvent, deviceEvent;
    private final boolean eventIdx;

    // avail side: next position and the AVAIL/USED bits its descriptors get (wrap counter 1 at start)
    private int availPos;
    private int availBits = F_AVAIL;
    private int numFree;
    private int addedSinceKick;
    private long pendingHeadAt = -1; // the batch's first head, whose flags publish() stores last
    private short pendingHeadFlags;

    // used side: next position and the AVAIL|USED bits a used descriptor there has
    private int usedPos;
    private int usedBits = WRAP_BITS;

    // buffer ids
    private final int[] freeIds;
    private int freeTop;
    private final int[] slotsOf;          // ring slots the id's chain takes (0: id not allocated)
    private final boolean[] pinned;
    private final boolean[] outstanding;  // offered and not yet used
    private int inFlight;

    // pinned chains: descriptors per id in templates (word = len | id << 32 | flags << 48)
    private final int[] tplStart;
    private long[] tplAddr = new long[64];
    private long[] tplWord = new long[64];
    private int tplUsed;

    // chain under construction
    private final long[] stAddr, stWord;
    private int stCount = -1; // -1: no chain open
    private boolean stIndirect;

    /**
     * @param ring        the descriptor ring, {@code size * 16} bytes, 16-byte aligned
     * @param driverEvent our event suppression structure (the "driver area"; the device reads it)
     * @param deviceEvent the device's (the "device area"; we read it to decide on kicks; zero in fresh memory, never written here)
     * @param eventIdx    VIRTIO_F_RING_EVENT_IDX negotiated (the device may ask for DESC-mode kicks)
     */
    public DriverPackedQueue(int size, MemorySegment ring, MemorySegment driverEvent, MemorySegment deviceEvent, boolean eventIdx) {
        if (size < 1 || size > MAX_SIZE) throw new IllegalArgumentException("packed queue size " + size + " (1.." + MAX_SIZE + ")");
        if (ring.address() % 16 != 0 || driverEvent.address() % 4 != 0 || deviceEvent.address() % 4 != 0) {
            throw new IllegalArgumentException("packed ring needs 16-byte, event areas 4-byte alignment (2.8.10.1)");
        }
        this.size = size;
        this.ring = ring.asSlice(0, ringBytes(size));
        this.driverEvent = driverEvent.asSlice(0, EVENT_BYTES);
        this.deviceEvent = deviceEvent.asSlice(0, EVENT_BYTES);
        this.eventIdx = eventIdx;
        // The ring and our event area start zeroed (nothing available; ENABLE). The device's
        // event area is left alone: a front-end builds this object after the device may have
        // started and written its flags there (SPDK's target writes DISABLE as it starts polling).
        this.ring.fill((byte) 0);
        this.driverEvent.fill((byte) 0);
        numFree = size;
        freeIds = new int[size];
        for (int i = 0; i < size; i++) freeIds[i] = size - 1 - i; // id 0 handed out first
        freeTop = size;
        slotsOf = new int[size];
        pinned = new boolean[size];
        outstanding = new boolean[size];
        tplStart = new int[size];
        stAddr = new long[size];
        stWord = new long[size];
    }

    /** Bytes of a descriptor ring of {@code size} entries. */
    public static long ringBytes(int size) {
        return (long) size * DESC_SIZE;
    }

    @Override public int size() { return size; }
    /** Free ring slots. */
    @Override public int freeDescriptors() { return numFree; }
    /** Buffers offered and not yet used. */
    public int inFlight() { return inFlight; }
    /** Next avail position (0..size-1) and wrap counter. */
    public int availPosition() { return availPos; }
    public boolean availWrap() { return availBits == F_AVAIL; }
    /** Next used position we look at and the used wrap counter. */
    public int usedPosition() { return usedPos; }
    public boolean usedWrap() { return usedBits != 0; }

    /** The SET_VRING_BASE / GET_VRING_BASE encoding of our avail state: position in bits 0-14, wrap counter in bit 15. */
    public int vringBase() {
        return availPos | (availWrap() ? 0x8000 : 0);
    }

    // ---- building chains ----

    @Override
    public boolean begin(int descriptors) {
        if (stCount >= 0) throw new IllegalStateException("chain already open");
        if (descriptors <= 0 || descriptors > numFree || freeTop == 0) return false;
        stCount = 0;
        stIndirect = false;
        return true;
    }

    @Override
    public void add(long gpa, int len, boolean writable) {
        if (stCount < 0) throw new IllegalStateException("no chain open");
        if (stIndirect) throw new IllegalStateException("an indirect descriptor is a chain of its own (2.8.7)");
        if (stCount == size) throw new IllegalStateException("chain longer than the queue");
        if (stCount > 0) stWord[stCount - 1] |= (long) F_NEXT << 48;
        stAddr[stCount] = gpa;
        stWord[stCount] = Integer.toUnsignedLong(len) | (long) (writable ? F_WRITE : 0) << 48;
        stCount++;
    }

    /**
     * Makes the open chain one descriptor pointing at a table of {@code entries} packed
     * descriptors at {@code tableGpa} (VIRTIO_F_RING_INDIRECT_DESC; fill the table with
     * {@link #writeTableEntry}). It takes one ring slot however many buffers the table has.
     */
    public void addIndirect(long tableGpa, int entries) {
        if (stCount != 0) throw new IllegalStateException("an indirect descriptor is a chain of its own (2.8.7)");
        if (entries < 1) throw new IllegalArgumentException("empty indirect table");
        stAddr[0] = tableGpa;
        stWord[0] = (long) entries * DESC_SIZE | (long) F_INDIRECT << 48;
        stCount = 1;
        stIndirect = true;
    }

    /** Writes entry {@code i} of the indirect table at {@code table} (2.8.7: only WRITE is meaningful there). */
    public static void writeTableEntry(MemorySegment table, int i, long gpa, int len, boolean writable) {
        writeTableEntry(table, 0, i, gpa, len, writable);
    }

    /** Writes entry {@code i} of the indirect table at offset {@code tableOff} of {@code mem}. */
    public static void writeTableEntry(MemorySegment mem, long tableOff, int i, long gpa, int len, boolean writable) {
        MemorySegment table = mem;
        long at = tableOff + (long) i * DESC_SIZE;
        table.set(LE64, at + DESC_ADDR, gpa);
        table.set(LE32, at + DESC_LEN, len);
        table.set(LE32, at + DESC_ID, writable ? F_WRITE << 16 : 0); // id 0, flags
    }

    /** Sets or clears WRITE on entry {@code i} of an indirect table that is not in flight. */
    public static void setTableEntryWritable(MemorySegment table, int i, boolean writable) {
        setTableEntryWritable(table, 0, i, writable);
    }

    /** As {@link #setTableEntryWritable(MemorySegment, int, boolean)} for the table at offset {@code tableOff} of {@code mem}. */
    public static void setTableEntryWritable(MemorySegment mem, long tableOff, int i, boolean writable) {
        mem.set(LE16, tableOff + (long) i * DESC_SIZE + DESC_FLAGS, (short) (writable ? F_WRITE : 0));
    }

    @Override
    public int end() {
        int n = openChain();
        int id = freeIds[--freeTop];
        slotsOf[id] = n;
        outstanding[id] = true;
        inFlight++;
        writeChain(stAddr, stWord, 0, n, (long) id << 32);
        stCount = -1;
        return id;
    }

    @Override
    public int endPinned() {
        int n = openChain();
        int id = freeIds[--freeTop];
        slotsOf[id] = n;
        pinned[id] = true;
        if (tplUsed + n > tplAddr.length) {
            int cap = Math.max(tplAddr.length * 2, tplUsed + n);
            tplAddr = Arrays.copyOf(tplAddr, cap);
            tplWord = Arrays.copyOf(tplWord, cap);
        }
        tplStart[id] = tplUsed;
        for (int k = 0; k < n; k++) {
            tplAddr[tplUsed + k] = stAddr[k];
            tplWord[tplUsed + k] = stWord[k] | (long) id << 32;
        }
        tplUsed += n;
        stCount = -1;
        return id;
    }

    private int openChain() {
        int n = stCount;
        if (n <= 0) throw new IllegalStateException(n < 0 ? "no chain open" : "empty chain");
        if (n > numFree) throw new IllegalStateException("chain of " + n + " descriptors, " + numFree + " ring slots free");
        return n;
    }

    @Override
    public void offer(int id) {
        int n = slotsOf[id];
        if (!pinned[id] || outstanding[id] || n > numFree) throw offerError(id, n);
        outstanding[id] = true;
        inFlight++;
        writeChain(tplAddr, tplWord, tplStart[id], n, 0);
    }

    private IllegalStateException offerError(int id, int n) {
        if (!pinned[id]) return new IllegalStateException("buffer id " + id + " is not a pinned chain");
        if (outstanding[id]) return new IllegalStateException("buffer id " + id + " is already in flight");
        return new IllegalStateException("chain of " + n + " descriptors, " + numFree + " ring slots free");
    }

    @Override
    public void setWritable(int id, int hops, boolean writable) {
        if (!pinned[id] || outstanding[id] || hops >= slotsOf[id]) throw new IllegalStateException("buffer id " + id + " hop " + hops + " cannot change now");
        int k = tplStart[id] + hops;
        long bit = (long) F_WRITE << 48;
        tplWord[k] = writable ? tplWord[k] | bit : tplWord[k] & ~bit;
    }

    /**
     * Writes {@code n} descriptors from {@code addr/word[from..]} at the avail position; the
     * head's flags are held back when it is the first of the batch.
     */
    private void writeChain(long[] addr, long[] word, int from, int n, long idBits) {
        int pos = availPos;
        int bits = availBits;
        long headAt = (long) pos * DESC_SIZE;
        long head = word[from] | idBits;
        short headFlags = (short) ((int) (head >>> 48) | bits);
        for (int k = 1; k < n; k++) {
            if (++pos == size) {
                pos = 0;
                bits ^= WRAP_BITS;
            }
            long at = (long) pos * DESC_SIZE;
            ring.set(LE64, at + DESC_ADDR, addr[from + k]);
            ring.set(LE64, at + DESC_LEN, word[from + k] | idBits | (long) bits << 48);
        }
        if (++pos == size) {
            pos = 0;
            bits ^= WRAP_BITS;
        }
        availPos = pos;
        availBits = bits;
        numFree -= n;
        addedSinceKick += n;
        ring.set(LE64, headAt + DESC_ADDR, addr[from]);
        ring.set(LE32, headAt + DESC_LEN, (int) head);
        ring.set(LE16, headAt + DESC_ID, (short) (head >>> 32));
        if (pendingHeadAt < 0) {
            pendingHeadAt = headAt;
            pendingHeadFlags = headFlags;
        } else {
            ring.set(LE16, headAt + DESC_FLAGS, headFlags);
        }
    }

    /** Makes the batch visible: a release store of its first head's flags (2.8.21.1). */
    @Override
    public void publish() {
        long at = pendingHeadAt;
        if (at >= 0) {
            ALIGNED_U16.setRelease(ring, at + DESC_FLAGS, pendingHeadFlags);
            pendingHeadAt = -1;
        }
    }

    /**
     * After {@link #publish}: whether the device's event suppression structure asks for a kick
     * for the slots made available since the last call (2.8.10: ENABLE yes, DISABLE no, DESC
     * when the position it names was among them).
     */
    @Override
    public boolean needsKick() {
        VarHandle.fullFence();
        int added = addedSinceKick;
        addedSinceKick = 0;
        if (added == 0) return false;
        int ev = deviceEvent.get(ALIGNED_U32, 0);
        int flags = (ev >>> 16) & 3;
        if (flags == EVENT_DISABLE) return false;
        if (flags != EVENT_DESC || !eventIdx) return true; // ENABLE (or a reserved value: kick to be safe)
        return descEventHit(ev & 0x7fff, (ev & 0x8000) != 0, added);
    }

    /**
     * Whether position {@code off} of the lap with wrap counter {@code wrap} lies in the last
     * {@code added} slots made available. Positions are put on a line of two laps: the
     * current lap (our avail wrap counter) at {@code size..2*size-1}, the one before at
     * {@code 0..size-1}; the device's event is in one of them.
     */
    private boolean descEventHit(int off, boolean wrap, int added) {
        if (added >= size) return true;
        int now = availPos + size;
        int event = off + (wrap == availWrap() ? size : 0);
        return event >= now - added && event < now;
    }

    // ---- completions ----

    @Override
    public int pollUsed(DriverQueue.UsedHandler h) {
        int n = 0;
        int limit = size; // a device that keeps producing cannot hold us here forever
        while (n < limit) {
            long at = (long) usedPos * DESC_SIZE + DESC_LEN;
            long w = (long) ALIGNED_U64.getAcquire(ring, at); // len | id << 32 | flags << 48
            if (((int) (w >>> 48) & WRAP_BITS) != usedBits) break;
            int id = (int) (w >>> 32) & 0xffff;
            if (id >= size || !outstanding[id]) throw badId(id);
            int slots = slotsOf[id];
            usedPos += slots;
            if (usedPos >= size) {
                usedPos -= size;
                usedBits ^= WRAP_BITS;
            }
            numFree += slots;
            outstanding[id] = false;
            inFlight--;
            if (!pinned[id]) {
                slotsOf[id] = 0;
                freeIds[freeTop++] = id;
            }
            n++;
            h.onUsed(id, (int) w);
        }
        return n;
    }

    private IllegalStateException badId(int id) {
        return new IllegalStateException("device returned buffer id " + id + (id >= size ? " outside the queue" : " that is not in flight")
                + " at used position " + usedPos);
    }

    /** Our event suppression structure: ENABLE (a call per used batch) or DISABLE (we poll). */
    @Override
    public void wantInterrupts(boolean want) {
        driverEvent.set(LE16, EVENT_FLAGS, (short) (want ? EVENT_ENABLE : EVENT_DISABLE));
        // a caller that enables calls polls once more before it sleeps: order the store before that re-read
        if (want) VarHandle.fullFence();
    }
}
