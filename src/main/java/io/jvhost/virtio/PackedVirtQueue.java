package io.jvhost.virtio;

import io.jvhost.memory.GuestMemory;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;

import static io.jvhost.virtio.PackedRing.*;

/**
 * The device side of one packed virtqueue (VIRTIO 1.2, 2.8) in guest memory.
 *
 * <p>Owned by one reactor thread like {@link SplitVirtQueue}: construction (control thread)
 * translates and checks the ring addresses once; {@link #poll}, {@link #complete}, {@link #flush}
 * and the notification methods run on the reactor only.
 *
 * <p><b>Heads.</b> A packed ring has no descriptor table to index: the driver names a buffer by
 * the 16-bit buffer id in its chain's last descriptor, which need not be below the queue size,
 * and a conforming driver reuses the ring slots of a chain still in flight once later chains
 * completed ahead of it (it counts free slots, not positions). So the "head" this queue hands
 * out ({@link DescriptorChain#head()}, {@link #complete}, {@link #isInFlight}) is a token of its
 * own, below the queue size and unique among chains in flight; the buffer id and the number of
 * ring descriptors the chain took are kept per token. Processors index their per-slot state by
 * it as they do by a split ring's head.
 *
 * <p><b>Used descriptors</b> (2.8, "Used Descriptors", "Next Flag: Descriptor Chaining"):
 * written in completion order at the device's used position, which then advances by the ring
 * descriptors of the completed chain, flipping the used wrap counter at the end of the ring.
 * Each carries the buffer id, the written length (WRITE set when it is not 0) and AVAIL/USED both
 * equal to the used wrap counter. A batch is published by storing the flags of its first
 * descriptor last (as QEMU's virtqueue_packed_flush does): the driver reads used descriptors in
 * ring order, so it sees the whole batch at once.
 *
 * <p><b>Memory ordering</b> lives here and only here: an acquire load of a head descriptor's
 * flags before reading its other fields and the rest of the chain (the driver writes the head's
 * flags last, after a write barrier), a release store of the flags of a batch's first used
 * descriptor after every other store of the batch, and a full fence between publishing (or
 * re-enabling kicks) and reading the driver's event suppression structure (2.8, "Event
 * Suppression Structure Format").
 *
 * <p><b>Bounds</b> (the guest is hostile): a chain spans at most the ring descriptors not in
 * flight (more means the driver made available more than the ring holds: the ring is broken), and
 * holds at most {@link #chainLimit()} buffer descriptors, direct and indirect together, as the
 * split ring. Every address is translated through the {@link GuestMemory} snapshot with the same
 * checks and {@link ChainError}s as the split ring. A malformed chain whose end is known is
 * returned with length 0 under its buffer id and counted; the queue goes on.
 *
 * <p><b>Dirty logging</b>: {@link #writableRanges} cannot walk a chain's ring descriptors again
 * at completion, since the driver may have reused those slots; while hooks are attached, the
 * device-writable direct descriptors of each chain are kept in a pool of {@code size} records
 * (the ring descriptors in flight never exceed the queue size), and an indirect table, which
 * stays the driver's until the chain is used, is walked again.
 *
 * <p>Not supported: inflight I/O tracking (vhost-user.rst's packed layout), so
 * {@link SplitVirtQueue#resubmit}-style recovery does not exist here; the vhost layer attaches none.
 */
public final class PackedVirtQueue extends AbstractVirtQueue {

    private static final VarHandle U16 = LittleEndian.ALIGNED_U16;
    private static final ValueLayout.OfLong LE64 = LittleEndian.U64;
    private static final ValueLayout.OfInt LE32 = LittleEndian.U32;
    private static final ValueLayout.OfShort LE16 = LittleEndian.U16;

    private final MemorySegment desc;
    /** Driver event suppression (the driver writes, we read: when to notify it). */
    private final MemorySegment driverArea;
    /** Device event suppression (we write: when the driver should kick). */
    private final MemorySegment deviceArea;
    /** Keep each chain's writable direct descriptors (hooks are attached: dirty logging may ask). */
    private boolean recordWritable;

    // Per token (see the class comment), indexed 0..size-1 (and inFlight in the base class).
    private final int[] bufferId;
    private final int[] ringDescs;
    private final long[] indirectGpa;
    private final int[] indirectLen;
    private final int[] recordHead;
    private final boolean[] recorded;
    private final int[] freeTokens;
    private int freeTop;
    // Record pool of writable direct descriptors (linked lists; free list through recordNext).
    private final long[] recordGpa;
    private final long[] recordLen;
    private final int[] recordNext;
    private int freeRecord;

    private int availPos;           // next ring slot to read
    private boolean availWrap;      // driver's wrap counter as of availPos
    private int usedPos;            // next ring slot for a used descriptor
    private boolean usedWrap;
    private int ringDescsInFlight;  // ring descriptors of chains in flight
    private int pending;            // used descriptors written and not yet published
    private long pendingFirstAt;
    private int pendingFirstFlags;
    private int signalledUsed;
    private boolean signalledValid;
    private boolean notificationsEnabled = true;
    // Walk results (reactor thread).
    private int walkEnd;
    private boolean walkEndWrap;
    private int walkDescs;
    private int walkId;
    private boolean walkSeenWritable;

    /**
     * @param state the ring state as SET_VRING_BASE gave it: bits 0-14 the next available
     *              index, bit 15 the driver's wrap counter; the used position starts there too
     *              (nothing is in flight when a ring starts)
     */
    public PackedVirtQueue(int index, int size, GuestMemory memory, MemorySegment desc, MemorySegment driverArea, MemorySegment deviceArea,
                           boolean eventIdx, boolean indirect, int state, Notifier notifier, int maxBuffers) {
        if (!validSize(size)) throw new IllegalArgumentException("queue size " + size + " is not in 1.." + MAX_QUEUE_SIZE);
        int pos = state & 0x7fff;
        if (pos >= size) throw new IllegalArgumentException("queue " + index + ": packed ring state 0x" + Integer.toHexString(state) + " names slot " + pos + " of a ring of " + size);
        super(index, size, memory, eventIdx, indirect, notifier, maxBuffers);
        this.desc = desc;
        this.driverArea = driverArea;
        this.deviceArea = deviceArea;
        this.bufferId = new int[size];
        this.ringDescs = new int[size];
        this.indirectGpa = new long[size];
        this.indirectLen = new int[size];
        this.recordHead = new int[size];
        this.recorded = new boolean[size];
        this.freeTokens = new int[size];
        for (int i = 0; i < size; i++) freeTokens[i] = size - 1 - i;
        this.freeTop = size;
        this.recordGpa = new long[size];
        this.recordLen = new long[size];
        this.recordNext = new int[size];
        for (int i = 0; i < size; i++) recordNext[i] = i + 1 < size ? i + 1 : -1;
        this.freeRecord = 0;
        java.util.Arrays.fill(recordHead, -1);
        this.availPos = pos;
        this.availWrap = (state & 0x8000) != 0;
        this.usedPos = pos;
        this.usedWrap = availWrap;
        // A fresh ring starts at slot 0 with both wrap counters set ("Driver and Device Ring Wrap Counters").
        this.anyUsed = PackedRing.state(pos, availWrap) != 0x8000;
    }

    /**
     * Resolves SET_VRING_ADDR's front-end virtual addresses (for a packed ring: the descriptor
     * ring, the driver area and the device area in the desc/avail/used fields) against
     * {@code memory} and builds the queue. Throws {@link IllegalArgumentException} saying which
     * part is unmapped or misaligned.
     */
    public static PackedVirtQueue fromUserAddresses(int index, int size, GuestMemory memory, long descUva, long driverUva, long deviceUva,
                                                    boolean eventIdx, boolean indirect, int state, Notifier notifier, int maxBuffers) {
        if (!validSize(size)) throw new IllegalArgumentException("queue " + index + ": size " + size + " is not in 1.." + MAX_QUEUE_SIZE);
        if ((descUva & 15) != 0) throw new IllegalArgumentException("queue " + index + ": descriptor ring 0x" + Long.toHexString(descUva) + " not 16-byte aligned");
        if ((driverUva & 3) != 0) throw new IllegalArgumentException("queue " + index + ": driver area 0x" + Long.toHexString(driverUva) + " not 4-byte aligned");
        if ((deviceUva & 3) != 0) throw new IllegalArgumentException("queue " + index + ": device area 0x" + Long.toHexString(deviceUva) + " not 4-byte aligned");
        MemorySegment d = memory.sliceUva(descUva, ringBytes(size));
        MemorySegment drv = memory.sliceUva(driverUva, EVENT_BYTES);
        MemorySegment dev = memory.sliceUva(deviceUva, EVENT_BYTES);
        if (d == null) throw new IllegalArgumentException("queue " + index + ": descriptor ring 0x" + Long.toHexString(descUva) + " is not inside one guest memory region");
        if (drv == null) throw new IllegalArgumentException("queue " + index + ": driver area 0x" + Long.toHexString(driverUva) + " is not inside one guest memory region");
        if (dev == null) throw new IllegalArgumentException("queue " + index + ": device area 0x" + Long.toHexString(deviceUva) + " is not inside one guest memory region");
        return new PackedVirtQueue(index, size, memory, d, drv, dev, eventIdx, indirect, state, notifier, maxBuffers);
    }

    /** Packed ring: bits 0-14 the next available index, bit 15 the driver's wrap counter (vhost-user.rst). */
    @Override public int state() { return PackedRing.state(availPos, availWrap); }
    /** The used position and wrap counter in the same encoding (tests, logs). */
    public int usedState() { return PackedRing.state(usedPos, usedWrap); }
    /** The buffer id of in-flight chain {@code head} (tests, logs). */
    public int bufferId(int head) { return bufferId[head]; }

    @Override
    public void hooks(QueueHooks h) {
        super.hooks(h);
        recordWritable = hooks != QueueHooks.NONE;
    }

    @Override
    public void acceptChainsUpTo(int descriptors) {
        if (descriptors > chainLimit) chainLimit = descriptors;
    }

    @Override
    public boolean ringIn(MemorySegment region) {
        return overlaps(desc, region) || overlaps(driverArea, region) || overlaps(deviceArea, region);
    }

    @Override
    public int poll(ChainHandler handler, int budget) {
        if (brokenReason != ChainError.NONE) return 0;
        int k = 0;
        while (k < budget) {
            // The head's flags are written last by the driver (after a barrier); acquire them
            // before reading the rest of the head descriptor and the chain behind it.
            int headFlags = Short.toUnsignedInt((short) U16.getAcquire(desc, (long) availPos * DESC_SIZE + DESC_FLAGS));
            if (!isAvailable(headFlags, availWrap)) break;
            k++;
            stats.countRequest();
            if (ringDescsInFlight == size) {
                // Every slot belongs to a chain in flight, yet the next one looks available: the
                // driver made more available than the ring holds (a split ring's index jump).
                markBroken(ChainError.AVAIL_INDEX_JUMP);
                return k;
            }
            int token = freeTokens[--freeTop];
            ChainError err = walk(token);
            if (walkDescs < 0) {
                // The chain never ends inside the ring's free slots: the ring itself is corrupt.
                freeTokens[freeTop++] = token;
                releaseRecords(token);
                markBroken(err);
                return k;
            }
            availPos = walkEnd;
            availWrap = walkEndWrap;
            bufferId[token] = walkId;
            ringDescs[token] = walkDescs;
            ringDescsInFlight += walkDescs;
            markInFlight(token);
            if (err != ChainError.NONE) {
                chainError(err);
                complete(token, 0);
                continue;
            }
            handler.onChain(this, chain);
        }
        return k;
    }

    /**
     * Walks the chain at {@link #availPos} into the flyweight under {@code token}. Sets
     * {@link #walkEnd}/{@link #walkEndWrap} to the slot after the chain, {@link #walkDescs} to its
     * ring descriptors (-1 when it does not end within the free slots: a ring-level error) and
     * {@link #walkId} to its buffer id. A chain error found on the way is returned once the
     * chain's end (the first descriptor without NEXT) is found, so the ring stays in step.
     */
    private ChainError walk(int token) {
        DescriptorChain c = chain;
        c.reset(token);
        indirectLen[token] = 0;
        recorded[token] = recordWritable;
        walkSeenWritable = false;
        int window = size - ringDescsInFlight;
        int left = chainLimit;
        int pos = availPos;
        boolean wrap = availWrap;
        int n = 0;
        ChainError err = ChainError.NONE;
        GuestMemory mem = memory;
        while (true) {
            if (n == window) {
                walkDescs = -1;
                return ChainError.CHAIN_TOO_LONG;
            }
            long at = (long) pos * DESC_SIZE;
            // Read the whole descriptor once into locals (the guest may change it under us).
            long addr = desc.get(LE64, at + DESC_ADDR);
            long len = Integer.toUnsignedLong(desc.get(LE32, at + DESC_LEN));
            int id = Short.toUnsignedInt(desc.get(LE16, at + DESC_ID));
            int flags = Short.toUnsignedInt(desc.get(LE16, at + DESC_FLAGS));
            n++;
            if (++pos == size) {
                pos = 0;
                wrap = !wrap;
            }
            if (err == ChainError.NONE) {
                if ((flags & F_INDIRECT) != 0) {
                    err = indirectTable(token, c, mem, addr, len, flags, left);
                } else if (left-- == 0) {
                    err = ChainError.CHAIN_TOO_LONG;
                } else {
                    err = buffer(token, c, mem, addr, len, (flags & F_WRITE) != 0, true);
                }
            }
            if ((flags & F_NEXT) == 0) {
                walkEnd = pos;
                walkEndWrap = wrap;
                walkDescs = n;
                walkId = id;
                return err;
            }
        }
    }

    /** An indirect descriptor ("Indirect Flag: Scatter-Gather Support"): its table holds the chain's buffers in order; only WRITE counts in it. */
    private ChainError indirectTable(int token, DescriptorChain c, GuestMemory mem, long addr, long len, int flags, int left) {
        if (!indirect) return ChainError.INDIRECT_NOT_NEGOTIATED;
        if ((flags & F_NEXT) != 0) return ChainError.INDIRECT_WITH_NEXT;
        if (len == 0 || (len & 15) != 0) return ChainError.BAD_INDIRECT_LENGTH;
        if (len / DESC_SIZE > chainLimit) return ChainError.INDIRECT_TABLE_TOO_LONG;
        int r = mem.regionOfGpa(addr);
        if (r < 0 || Long.compareUnsigned(len, mem.contiguous(r, addr)) > 0) return ChainError.ADDRESS_OUT_OF_RANGE;
        MemorySegment table = mem.segment(r);
        long base = mem.offsetInRegion(r, addr);
        int entries = (int) (len / DESC_SIZE);
        indirectGpa[token] = addr;
        indirectLen[token] = (int) len;
        for (int i = 0; i < entries; i++) {
            long at = base + (long) i * DESC_SIZE;
            long a = table.get(LE64, at + DESC_ADDR);
            long l = Integer.toUnsignedLong(table.get(LE32, at + DESC_LEN));
            int f = Short.toUnsignedInt(table.get(LE16, at + DESC_FLAGS));
            // NEXT and the id are ignored in a table; a table inside a table is refused (as the split ring does).
            if ((f & F_INDIRECT) != 0) return ChainError.NESTED_INDIRECT;
            if (left-- == 0) return ChainError.CHAIN_TOO_LONG;
            ChainError e = buffer(token, c, mem, a, l, (f & F_WRITE) != 0, false);
            if (e != ChainError.NONE) return e;
        }
        return ChainError.NONE;
    }

    /** One buffer descriptor: ordering check, translation split at region boundaries, a record for dirty logging. */
    private ChainError buffer(int token, DescriptorChain c, GuestMemory mem, long addr, long len, boolean w, boolean direct) {
        c.descriptors++;
        if (len > c.longestDescriptor) c.longestDescriptor = len;
        if (w) {
            walkSeenWritable = true;
            if (direct && len > 0 && recorded[token]) record(token, addr, len);
        } else if (walkSeenWritable) {
            return ChainError.READABLE_AFTER_WRITABLE;
        }
        while (len > 0) {
            int r = mem.regionOfGpa(addr);
            if (r < 0) return ChainError.ADDRESS_OUT_OF_RANGE;
            long piece = Math.min(len, mem.contiguous(r, addr));
            if (!c.add(mem.segment(r), mem.offsetInRegion(r, addr), piece, w)) return ChainError.TOO_MANY_BUFFERS;
            addr += piece;
            len -= piece;
        }
        return ChainError.NONE;
    }

    private void record(int token, long gpa, long len) {
        int rec = freeRecord;
        if (rec < 0) {
            // Cannot happen while ring descriptors in flight stay within the queue size; be safe.
            recorded[token] = false;
            return;
        }
        freeRecord = recordNext[rec];
        recordGpa[rec] = gpa;
        recordLen[rec] = len;
        recordNext[rec] = recordHead[token];
        recordHead[token] = rec;
    }

    private void releaseRecords(int token) {
        int rec = recordHead[token];
        while (rec >= 0) {
            int next = recordNext[rec];
            recordNext[rec] = freeRecord;
            freeRecord = rec;
            rec = next;
        }
        recordHead[token] = -1;
    }

    /**
     * Returns chain {@code head} (a token, see the class comment) to the driver with {@code len}
     * bytes written: a used descriptor at the used position, not yet published (its flags are
     * held back if it opens the batch). Once the ring is gone the token is only forgotten.
     */
    @Override
    public void complete(int head, int len) {
        retire(head);
        ringDescsInFlight -= ringDescs[head];
        if (!ringGone) {
            long at = (long) usedPos * DESC_SIZE;
            // Before the store, as the split ring: the chain's buffers are still the device's.
            hooks.completed(this, head, len, at, DESC_SIZE);
            desc.set(LE32, at + DESC_LEN, len);
            desc.set(LE16, at + DESC_ID, (short) bufferId[head]);
            int flags = usedBits(usedWrap) | (len != 0 ? F_WRITE : 0);
            if (pending == 0) {
                pendingFirstAt = at;
                pendingFirstFlags = flags;
            } else {
                // The driver reads used descriptors in ring order: it looks at this one only after
                // the batch's first, whose flags flush() stores last (with release).
                desc.set(LE16, at + DESC_FLAGS, (short) flags);
            }
            pending++;
            usedPos += ringDescs[head];
            if (usedPos >= size) {
                usedPos -= size;
                usedWrap = !usedWrap;
            }
        }
        releaseRecords(head);
        recorded[head] = false;
        indirectLen[head] = 0;
        freeTokens[freeTop++] = head;
    }

    /**
     * Publishes the batch (release store of its first used descriptor's flags) and tells
     * {@link Interrupts} whether the driver wants a notification (driver event suppression). Returns 1 if one went out, else 0.
     */
    @Override
    public int flush() {
        if (pending == 0 || ringGone) return 0;
        U16.setRelease(desc, pendingFirstAt + DESC_FLAGS, (short) pendingFirstFlags);
        int count = pending;
        pending = 0;
        anyUsed = true;
        hooks.published(this, usedState(), pendingFirstAt + DESC_FLAGS, 2);
        // The used descriptors must be visible before we read the driver's suppression state.
        VarHandle.fullFence();
        int mode = Short.toUnsignedInt(driverArea.get(LE16, (long) EVENT_FLAGS)) & 3;
        int now = usedPos;
        int old = signalledValid ? signalledUsed : now;
        boolean valid = signalledValid;
        signalledUsed = now;
        signalledValid = true;
        boolean notify;
        if (mode == EVENT_FLAGS_DISABLE) {
            notify = false;
        } else if (mode == EVENT_FLAGS_DESC && eventIdx) {
            notify = !valid || needEvent(Short.toUnsignedInt(driverArea.get(LE16, (long) EVENT_OFF_WRAP)), now, old);
        } else {
            notify = true; // ENABLE (DESC without EVENT_IDX, or the reserved value 3, is taken as ENABLE)
        }
        return interrupts.onPublished(count, notify);
    }

    /**
     * Packed vring_need_event (as DPDK and QEMU compute it): did the used position move
     * past the driver's event descriptor {@code offWrap} (offset and wrap bit) going from
     * {@code old} to {@code now} (slots, the current lap under the used wrap counter)?
     */
    private boolean needEvent(int offWrap, int now, int old) {
        int off = offWrap & 0x7fff;
        boolean wrap = (offWrap & 0x8000) != 0;
        if (now <= old) old -= size;          // the batch crossed the end of the ring
        if (wrap != usedWrap) off -= size;    // the event names a slot of the previous lap
        return ((now - off - 1) & 0xffff) < ((now - old) & 0xffff);
    }

    /** Asks the driver not to kick (device event suppression DISABLE). */
    @Override
    public void disableNotifications() {
        if (!notificationsEnabled || ringGone) return;
        notificationsEnabled = false;
        deviceArea.set(LE16, (long) EVENT_FLAGS, (short) EVENT_FLAGS_DISABLE);
    }

    /**
     * Asks the driver to kick: ENABLE, or under EVENT_IDX DESC at the next slot we will read;
     * then re-checks the ring. True when buffers arrived meanwhile (the caller must not sleep).
     */
    @Override
    public boolean enableNotifications() {
        if (ringGone) return false;
        notificationsEnabled = true;
        if (eventIdx) {
            deviceArea.set(LE16, (long) EVENT_OFF_WRAP, (short) PackedRing.state(availPos, availWrap));
            U16.setRelease(deviceArea, (long) EVENT_FLAGS, (short) EVENT_FLAGS_DESC);
        } else {
            U16.setRelease(deviceArea, (long) EVENT_FLAGS, (short) EVENT_FLAGS_ENABLE);
        }
        // Our suppression store must be visible before we look at the ring again.
        VarHandle.fullFence();
        return hasPending();
    }

    @Override
    public boolean hasPending() {
        if (brokenReason != ChainError.NONE) return false;
        int flags = Short.toUnsignedInt((short) U16.getAcquire(desc, (long) availPos * DESC_SIZE + DESC_FLAGS));
        return isAvailable(flags, availWrap);
    }

    /**
     * Reports the device-writable buffers of in-flight chain {@code head} as guest-physical
     * ranges: the direct descriptors kept when it was walked, then its indirect table walked
     * again (the driver keeps a table until the chain is used). -1 when the chain is not in
     * flight (or completing) or was popped before hooks were attached. Cold path.
     */
    @Override
    public int writableRanges(int head, GuestRangeSink sink) {
        // Called from QueueHooks#completed: the head is no longer marked in flight, but its records stay until then.
        if (head < 0 || head >= size || !recorded[head]) return -1;
        int n = 0;
        for (int rec = recordHead[head]; rec >= 0; rec = recordNext[rec]) {
            sink.range(recordGpa[rec], recordLen[rec]);
            n++;
        }
        int len = indirectLen[head];
        if (len != 0) {
            GuestMemory mem = memory;
            long addr = indirectGpa[head];
            int r = mem.regionOfGpa(addr);
            if (r < 0 || Long.compareUnsigned(len, mem.contiguous(r, addr)) > 0) return -1;
            MemorySegment table = mem.segment(r);
            long base = mem.offsetInRegion(r, addr);
            for (int i = 0, entries = len / DESC_SIZE; i < entries; i++) {
                long at = base + (long) i * DESC_SIZE;
                long a = table.get(LE64, at + DESC_ADDR);
                long l = Integer.toUnsignedLong(table.get(LE32, at + DESC_LEN));
                int f = Short.toUnsignedInt(table.get(LE16, at + DESC_FLAGS));
                if ((f & F_WRITE) != 0 && l > 0) {
                    sink.range(a, l);
                    n++;
                }
            }
        }
        return n;
    }
}
