package io.jvhost.virtio;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;

import static io.jvhost.virtio.SplitRing.*;

/**
 * The driver side of a split virtqueue (VIRTIO 1.2, 2.7.13) over rings in memory we own: used by
 * the initiator and by tests that play the guest. Owned by one thread.
 *
 * <p>Ordering (the driver's half of {@link SplitVirtQueue}'s): ring entries are written before a
 * release store of {@code avail->idx}; {@code used->idx} is read with acquire before used
 * elements; a full fence separates publishing from reading the device's kick suppression.
 *
 * <p>The rings are given as segments plus the guest-physical address of the descriptor table
 * base (descriptors hold guest-physical buffer addresses the caller supplies).
 */
public final class DriverSplitQueue implements DriverQueue {
    /** Receives used elements (the ring-neutral {@link DriverQueue.UsedHandler}, kept under this name for callers). */
    public interface UsedHandler extends DriverQueue.UsedHandler {}

    private static final VarHandle U16 = LittleEndian.ALIGNED_U16;
    private static final ValueLayout.OfLong LE64 = LittleEndian.U64;
    private static final ValueLayout.OfInt LE32 = LittleEndian.U32;
    private static final ValueLayout.OfShort LE16 = LittleEndian.U16;

    private final int size;
    private final int mask;
    private final MemorySegment desc, avail, used;
    private final boolean eventIdx;
    private final int[] nextFree;
    private final int[] chainLength;
    private final boolean[] pinned;
    private int freeHead;
    private int numFree;
    private int availIdx;
    private int kickedAvail;
    private int lastUsed;
    // chain under construction
    private int buildHead = -1, buildTail = -1, buildCount;

    public DriverSplitQueue(int size, MemorySegment desc, MemorySegment avail, MemorySegment used, boolean eventIdx) {
        if (!validSize(size)) throw new IllegalArgumentException("queue size " + size);
        this.size = size;
        this.mask = size - 1;
        this.desc = desc;
        this.avail = avail;
        this.used = used;
        this.eventIdx = eventIdx;
        nextFree = new int[size];
        chainLength = new int[size];
        pinned = new boolean[size];
        for (int i = 0; i < size; i++) nextFree[i] = i + 1;
        numFree = size;
        desc.asSlice(0, descTableBytes(size)).fill((byte) 0);
        avail.asSlice(0, availBytes(size)).fill((byte) 0);
        // The used ring is the device's: not cleared here. A front-end builds this object once
        // the handshake is done, when the device may already have written used->flags
        // (SPDK's target sets NO_NOTIFY as it starts polling); clearing it made every batch kick.
        // Fresh shared memory is zero anyway.
    }

    public int size() { return size; }
    public int freeDescriptors() { return numFree; }
    public int availIndex() { return availIdx; }

    /** Starts a chain; returns false when fewer than {@code descriptors} descriptors are free. */
    public boolean begin(int descriptors) {
        if (buildHead != -1) throw new IllegalStateException("chain already open");
        if (descriptors > numFree || descriptors <= 0) return false;
        buildCount = 0;
        return true;
    }

    /** Adds one buffer to the open chain. */
    public void add(long gpa, int len, boolean writable) {
        int d = freeHead;
        freeHead = nextFree[d];
        numFree--;
        long at = (long) d * DESC_SIZE;
        desc.set(LE64, at + DESC_ADDR, gpa);
        desc.set(LE32, at + DESC_LEN, len);
        desc.set(LE16, at + DESC_FLAGS, (short) (writable ? F_WRITE : 0));
        desc.set(LE16, at + DESC_NEXT, (short) 0);
        if (buildHead == -1) {
            buildHead = d;
        } else {
            long tat = (long) buildTail * DESC_SIZE;
            desc.set(LE16, tat + DESC_FLAGS, (short) (desc.get(LE16, tat + DESC_FLAGS) | F_NEXT));
            desc.set(LE16, tat + DESC_NEXT, (short) d);
        }
        buildTail = d;
        buildCount++;
    }

    /** Closes the chain and puts it on the available ring (not yet visible: see {@link #publish()}). */
    public int end() {
        int head = buildHead;
        chainLength[head] = buildCount;
        avail.set(LE16, AVAIL_RING + 2L * (availIdx & mask), (short) head);
        availIdx = (availIdx + 1) & 0xffff;
        buildHead = buildTail = -1;
        return head;
    }

    /**
     * Closes the open chain without offering it and keeps it built ("pinned"): {@link #offer}
     * puts it on the available ring as often as wanted, and {@link #pollUsed} never frees it.
     * A front-end that reuses fixed buffers per request slot (a benchmark) then writes no
     * descriptor per request: the table stays unchanged in both cores' caches, and only the
     * avail entry, the request header and the used element cross between them.
     */
    public int endPinned() {
        int head = buildHead;
        chainLength[head] = buildCount;
        pinned[head] = true;
        buildHead = buildTail = -1;
        return head;
    }

    /** Puts pinned chain {@code head} on the available ring again (visible after {@link #publish()}). */
    public void offer(int head) {
        avail.set(LE16, AVAIL_RING + 2L * (availIdx & mask), (short) head);
        availIdx = (availIdx + 1) & 0xffff;
    }

    /**
     * Sets or clears VIRTQ_DESC_F_WRITE on the descriptor {@code hops} links after {@code head}
     * of a chain that is not in flight (a pinned chain whose data buffer changes direction).
     */
    public void setWritable(int head, int hops, boolean writable) {
        int d = head;
        for (int i = 0; i < hops; i++) d = Short.toUnsignedInt(desc.get(LE16, (long) d * DESC_SIZE + DESC_NEXT));
        long at = (long) d * DESC_SIZE + DESC_FLAGS;
        int flags = desc.get(LE16, at);
        desc.set(LE16, at, (short) (writable ? flags | F_WRITE : flags & ~F_WRITE));
    }

    /** Makes queued chains visible to the device (release store of avail->idx). */
    public void publish() {
        U16.setRelease(avail, (long) AVAIL_IDX, (short) availIdx);
    }

    /** After {@link #publish()}: does the device want a kick for what was added since the last kick? */
    public boolean needsKick() {
        VarHandle.fullFence();
        int old = kickedAvail;
        kickedAvail = availIdx;
        if (eventIdx) {
            int ev = Short.toUnsignedInt(used.get(LE16, availEventOffset(size)));
            return needEvent(ev, availIdx, old);
        }
        return (used.get(LE16, USED_FLAGS) & USED_F_NO_NOTIFY) == 0;
    }

    private boolean interruptsOff;
    private int usedEventSet; // the used_event value last stored while interrupts are off

    /** Reaps used elements, freeing their descriptors; returns how many. */
    public int pollUsed(DriverQueue.UsedHandler h) {
        int usedIdx = Short.toUnsignedInt((short) U16.getAcquire(used, (long) USED_IDX));
        int n = 0;
        while (lastUsed != usedIdx) {
            long at = USED_RING + (long) USED_ELEM_SIZE * (lastUsed & mask);
            int head = used.get(LE32, at);
            int len = used.get(LE32, at + 4);
            lastUsed = (lastUsed + 1) & 0xffff;
            freeChain(head);
            h.onUsed(head, len);
            n++;
        }
        if (eventIdx && n > 0) {
            if (interruptsOff) {
                // Keep used_event far ahead of the used index so the device never decides to
                // signal. Re-stored only when less than a quarter of the index space is left:
                // a store per poll would pull the line to this core and make the device's
                // flush fetch it back, once per batch, for nothing.
                if ((short) (usedEventSet - lastUsed) < 0x4000) setUsedEventAhead();
            } else {
                // Ask for an interrupt at the next completion; the caller polls once more before
                // it sleeps, and the fence orders this store before that re-read (2.7.10).
                avail.set(LE16, usedEventOffset(size), (short) lastUsed);
                VarHandle.fullFence();
            }
        }
        return n;
    }

    /** Interrupt suppression: ask for (or not) interrupts; under EVENT_IDX sets used_event. */
    public void wantInterrupts(boolean want) {
        interruptsOff = !want;
        if (eventIdx) {
            if (want) avail.set(LE16, usedEventOffset(size), (short) lastUsed);
            else setUsedEventAhead();
        } else {
            avail.set(LE16, AVAIL_FLAGS, (short) (want ? 0 : AVAIL_F_NO_INTERRUPT));
        }
    }

    private void setUsedEventAhead() {
        usedEventSet = (lastUsed + 0x8000) & 0xffff;
        avail.set(LE16, usedEventOffset(size), (short) usedEventSet);
    }

    private void freeChain(int head) {
        if (head < 0 || head >= size) throw new IllegalStateException("device returned head " + head + " outside the queue");
        if (pinned[head]) return; // stays built for the next offer
        int d = head;
        int n = chainLength[head];
        if (n == 0) return; // a raw head pushed by a test: nothing of ours to free
        for (int i = 0; i < n - 1; i++) d = Short.toUnsignedInt(desc.get(LE16, (long) d * DESC_SIZE + DESC_NEXT));
        nextFree[d] = freeHead;
        freeHead = head;
        numFree += n;
        chainLength[head] = 0;
    }

    // ---- raw access for tests that build malformed rings ----

    /** Writes descriptor {@code i} directly. */
    public void writeDescriptor(int i, long gpa, int len, int flags, int next) {
        long at = (long) i * DESC_SIZE;
        desc.set(LE64, at + DESC_ADDR, gpa);
        desc.set(LE32, at + DESC_LEN, len);
        desc.set(LE16, at + DESC_FLAGS, (short) flags);
        desc.set(LE16, at + DESC_NEXT, (short) next);
    }

    /** Puts {@code head} on the available ring without any bookkeeping and publishes it. */
    public void pushRawHead(int head) {
        avail.set(LE16, AVAIL_RING + 2L * (availIdx & mask), (short) head);
        availIdx = (availIdx + 1) & 0xffff;
        publish();
    }

    /** Sets avail->idx to any value (tests of index jumps). */
    public void forceAvailIndex(int idx) {
        availIdx = idx & 0xffff;
        publish();
    }

    /** Reads used element {@code i} (raw) as {@code (head << 32) | len}. */
    public long rawUsed(int i) {
        long at = USED_RING + (long) USED_ELEM_SIZE * (i & mask);
        return ((long) used.get(LE32, at) << 32) | Integer.toUnsignedLong(used.get(LE32, at + 4));
    }

    public int usedIndex() {
        return Short.toUnsignedInt((short) U16.getAcquire(used, (long) USED_IDX));
    }
}
