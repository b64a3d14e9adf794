package io.jvhost.virtio;

import io.jvhost.memory.GuestMemory;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;

import static io.jvhost.virtio.SplitRing.*;

/**
 * The device side of one split virtqueue (VIRTIO 1.2, 2.7) in guest memory.
 *
 * <p>Owned by one reactor thread: {@link #poll}, {@link #complete}, {@link #flush} and the
 * notification methods are called only from it. Construction (from the session's control thread)
 * translates and checks the ring addresses once; the hot path then reads the rings through
 * those segments and translates descriptor addresses through the {@link GuestMemory} snapshot.
 *
 * <p>Memory ordering lives here and only here: an acquire load of {@code avail->idx} before
 * reading ring entries (2.7.13.3 / 2.7.6), a release store of {@code used->idx} after writing
 * used elements (2.7.8), and a full fence between publishing used entries (or re-enabling
 * kicks) and reading the driver's suppression fields (2.7.10, 2.7.7).
 *
 * <p>The ring decides only whether the driver wants a used-buffer notification (NO_INTERRUPT,
 * or EVENT_IDX's used_event); sending it, now or coalesced, is {@link Interrupts}' job through
 * the injected {@link Notifier}. Every write of the device into guest memory on completion is
 * either a used-ring store here, reported to {@link QueueHooks#completed} / {@link
 * QueueHooks#published}, or a data/status byte in a device-writable buffer of the chain, which
 * {@link #writableRanges} finds again from the completion hook.
 */
public final class SplitVirtQueue extends AbstractVirtQueue {

    private static final VarHandle U16 = LittleEndian.ALIGNED_U16;
    private static final ValueLayout.OfLong LE64 = LittleEndian.U64;
    private static final ValueLayout.OfInt LE32 = LittleEndian.U32;
    private static final ValueLayout.OfShort LE16 = LittleEndian.U16;

    private final int mask;
    private final MemorySegment desc;
    private final MemorySegment avail;
    private final MemorySegment used;
    /** Heads to hand out again before the available ring is read (see {@link #resubmit}); null when none. */
    private int[] resubmit;
    private int resubmitNext;

    private int lastAvail;      // next avail ring slot to consume (free-running u16)
    private int usedIdx;        // shadow of used->idx including unpublished entries
    private int publishedUsed;  // value last stored to used->idx
    private int flushedUsed;    // value of used->idx at the last flush (the notification decision)
    /**
     * Opt-in: publish the used index once more in the middle of a batch. When half of the
     * chains a poll took have completed during that poll (inline devices), their entries are
     * released to the driver at once, so a polling driver may resubmit them while the second
     * half is still being served (one release store; the fence and the notification decision
     * stay once per {@link #flush}). One interleaved A/B sitting measured 1.22x / 1.11x IOPS at
     * QD8 / QD32, two later ones 1.00: not proven, so off unless
     * {@code -Djvhost.queue.earlyPublish=true} (BENCHMARKS.md, "Used index published at half a batch").
     */
    static final boolean EARLY_PUBLISH_DEFAULT = Boolean.getBoolean("jvhost.queue.earlyPublish");
    private boolean earlyPublish = EARLY_PUBLISH_DEFAULT;
    /** Completions left before this batch's early publish (0: none due). */
    private int publishAfter;
    private int signalledUsed;
    private boolean signalledValid;
    private boolean notificationsEnabled = true;

    /**
     * @param descAddr  ring addresses as guest memory segments already resolved by the caller,
     *                  see {@link #fromUserAddresses}
     */
    public SplitVirtQueue(int index, int size, GuestMemory memory, MemorySegment desc, MemorySegment avail, MemorySegment used,
                          boolean eventIdx, boolean indirect, int lastAvail, Notifier notifier, int maxBuffers) {
        if (!validSize(size)) throw new IllegalArgumentException("queue size " + size + " is not a power of two in 1.." + MAX_QUEUE_SIZE);
        super(index, size, memory, eventIdx, indirect, notifier, maxBuffers);
        this.mask = size - 1;
        this.desc = desc;
        this.avail = avail;
        this.used = used;
        this.lastAvail = lastAvail & 0xffff;
        // The used index in guest memory is authoritative on (re)start (reconnect, table change).
        this.usedIdx = Short.toUnsignedInt((short) U16.getAcquire(used, (long) USED_IDX));
        this.publishedUsed = usedIdx;
        this.flushedUsed = usedIdx;
        this.anyUsed = usedIdx != 0;
    }

    /**
     * Resolves SET_VRING_ADDR's front-end virtual addresses against {@code memory} and builds the
     * queue. Throws {@link IllegalArgumentException} saying which ring is unmapped or misaligned.
     */
    public static SplitVirtQueue fromUserAddresses(int index, int size, GuestMemory memory, long descUva, long availUva, long usedUva,
                                                   boolean eventIdx, boolean indirect, int lastAvail, Notifier notifier,
                                                   int maxBuffers) {
        if (!validSize(size)) throw new IllegalArgumentException("queue " + index + ": size " + size + " is not a power of two in 1.." + MAX_QUEUE_SIZE);
        if ((descUva & 15) != 0) throw new IllegalArgumentException("queue " + index + ": descriptor table 0x" + Long.toHexString(descUva) + " not 16-byte aligned");
        if ((availUva & 1) != 0) throw new IllegalArgumentException("queue " + index + ": available ring 0x" + Long.toHexString(availUva) + " not 2-byte aligned");
        if ((usedUva & 3) != 0) throw new IllegalArgumentException("queue " + index + ": used ring 0x" + Long.toHexString(usedUva) + " not 4-byte aligned");
        MemorySegment d = memory.sliceUva(descUva, descTableBytes(size));
        MemorySegment a = memory.sliceUva(availUva, availBytes(size));
        MemorySegment u = memory.sliceUva(usedUva, usedBytes(size));
        if (d == null) throw new IllegalArgumentException("queue " + index + ": descriptor table 0x" + Long.toHexString(descUva) + " is not inside one guest memory region");
        if (a == null) throw new IllegalArgumentException("queue " + index + ": available ring 0x" + Long.toHexString(availUva) + " is not inside one guest memory region");
        if (u == null) throw new IllegalArgumentException("queue " + index + ": used ring 0x" + Long.toHexString(usedUva) + " is not inside one guest memory region");
        return new SplitVirtQueue(index, size, memory, d, a, u, eventIdx, indirect, lastAvail, notifier, maxBuffers);
    }

    public int lastAvail() { return lastAvail; }
    /** Split ring: GET_VRING_BASE reports the next available index. */
    @Override public int state() { return lastAvail; }
    public int usedIndex() { return usedIdx; }

    /** Does any part of the rings lie in {@code region} (a region's whole mapping)? */
    @Override
    public boolean ringIn(MemorySegment region) {
        return overlaps(desc, region) || overlaps(avail, region) || overlaps(used, region);
    }

    /**
     * Lets chains hold up to {@code descriptors} buffer descriptors when the queue is smaller:
     * a device that advertises a segment limit (virtio-blk / virtio-scsi seg_max) must accept the
     * indirect tables a driver builds from it (Linux sizes them as seg_max + 2 whatever the queue
     * size, and QEMU lets a queue be as small as 2). Never lowers the limit below the queue size
     * nor raises it past {@link SplitRing#MAX_QUEUE_SIZE}. Call before the queue is polled.
     */
    @Override
    public void acceptChainsUpTo(int descriptors) {
        chainLimit = Math.max(size, Math.min(descriptors, MAX_QUEUE_SIZE));
    }

    /**
     * Consumes up to {@code budget} available chains, handing each valid one to {@code handler}.
     * Invalid chains are returned to the driver at once with length 0 and counted. Returns the
     * number of chains consumed.
     */
    /**
     * Inflight I/O tracking (vhost-user.rst): {@code heads} were popped by a previous back-end
     * and never completed; they are handed to the handler again, in this order, before the
     * available ring is read, and the next available index becomes the used index plus their
     * number (what was popped is exactly what was completed plus what is in flight), whatever
     * the front-end's SET_VRING_BASE said: with no heads that is the used index itself, as in
     * libvhost-user. A front-end that lost the back-end (QEMU: GET_VRING_BASE failed) takes the
     * used index it read at that moment as the base; a back-end that published more completions
     * after that moment would otherwise take those chains again, and the driver would see a head
     * completed twice. Call before the first {@link #poll}.
     */
    public void resubmit(int[] heads) {
        resubmit = heads.length == 0 ? null : heads;
        resubmitNext = 0;
        lastAvail = (usedIdx + heads.length) & 0xffff;
    }

    /**
     * Takes valid head {@code head} (from the avail ring or a resubmission): marks it in flight,
     * tells the hooks, walks it and hands it to {@code handler}, or returns a malformed chain
     * with length 0 and counts it.
     */
    private void take(ChainHandler handler, int head) {
        markInFlight(head);
        ChainError err = walk(head);
        if (err != ChainError.NONE) {
            chainError(err);
            complete(head, 0);
            return;
        }
        handler.onChain(this, chain);
    }

    private int pollResubmitted(ChainHandler handler, int budget) {
        int k = 0;
        int[] heads = resubmit;
        while (resubmitNext < heads.length && k < budget) {
            int head = heads[resubmitNext++];
            k++;
            stats.countRequest();
            if (head < 0 || head >= size || inFlight[head]) {
                // The tracking area is the front-end's to keep: a bad entry is skipped, not trusted.
                chainError(head < 0 || head >= size ? ChainError.HEAD_OUT_OF_RANGE : ChainError.DUPLICATE_HEAD);
                continue;
            }
            take(handler, head);
        }
        if (resubmitNext == heads.length) resubmit = null;
        return k;
    }

    @Override
    public int poll(ChainHandler handler, int budget) {
        if (brokenReason != ChainError.NONE) return 0;
        if (resubmit != null) return pollResubmitted(handler, budget);
        // 2.7.13.3: read idx with acquire so ring entries written before it are visible.
        int availIdx = Short.toUnsignedInt((short) U16.getAcquire(avail, (long) AVAIL_IDX));
        int pending = (availIdx - lastAvail) & 0xffff;
        if (pending == 0) return 0;
        if (pending > size) {
            markBroken(ChainError.AVAIL_INDEX_JUMP);
            return 0;
        }
        int n = Math.min(pending, budget);
        if (earlyPublish) publishAfter = n >> 1;
        for (int k = 0; k < n; k++) {
            int head = Short.toUnsignedInt(avail.get(LE16, AVAIL_RING + 2L * (lastAvail & mask)));
            lastAvail = (lastAvail + 1) & 0xffff;
            stats.countRequest();
            if (head >= size) {
                // No valid head to return: the ring itself is corrupt.
                markBroken(ChainError.HEAD_OUT_OF_RANGE);
                publishAfter = 0;
                return k;
            }
            if (inFlight[head]) {
                markBroken(ChainError.DUPLICATE_HEAD);
                publishAfter = 0;
                return k;
            }
            take(handler, head);
        }
        publishAfter = 0; // only completions made during the poll publish early; the rest wait for the flush
        return n;
    }

    /**
     * Walks chain {@code head} into the flyweight. The cost is bounded for the whole chain:
     * at most {@code size} steps in the descriptor table (more means a loop), and at most
     * {@link #chainLimit()} buffer descriptors in all, direct and indirect together (VIRTIO 1.2,
     * 2.7.5.3.1: "A driver MUST NOT create a descriptor chain longer than the Queue Size of the
     * device"); an indirect table longer than that is refused before it is read. The descriptor
     * that points to an indirect table describes no buffer and is not counted, so Linux's
     * queue-size-long indirect tables fit.
     */
    private ChainError walk(int head) {
        DescriptorChain c = chain;
        c.reset(head);
        MemorySegment table = desc;
        long tableBase = 0;
        int tableSize = size;
        int steps = size;            // loop guard for the table being walked
        int left = chainLimit;       // buffer descriptors the whole chain may still hold
        boolean inIndirect = false;
        boolean seenWritable = false;
        int idx = head;
        GuestMemory mem = memory;
        while (true) {
            if (idx >= tableSize) return ChainError.NEXT_OUT_OF_RANGE;
            if (steps-- == 0) return ChainError.LOOP;
            long at = tableBase + (long) idx * DESC_SIZE;
            // Read the whole descriptor once into locals (the guest may change it under us).
            long addr = table.get(LE64, at + DESC_ADDR);
            long len = Integer.toUnsignedLong(table.get(LE32, at + DESC_LEN));
            int flags = Short.toUnsignedInt(table.get(LE16, at + DESC_FLAGS));
            int next = Short.toUnsignedInt(table.get(LE16, at + DESC_NEXT));
            if ((flags & F_INDIRECT) != 0) {
                if (!indirect) return ChainError.INDIRECT_NOT_NEGOTIATED;
                if (inIndirect) return ChainError.NESTED_INDIRECT;
                if ((flags & F_NEXT) != 0) return ChainError.INDIRECT_WITH_NEXT;
                if (len == 0 || (len & 15) != 0) return ChainError.BAD_INDIRECT_LENGTH;
                if (len / DESC_SIZE > chainLimit) return ChainError.INDIRECT_TABLE_TOO_LONG;
                int r = mem.regionOfGpa(addr);
                if (r < 0 || Long.compareUnsigned(len, mem.contiguous(r, addr)) > 0) return ChainError.ADDRESS_OUT_OF_RANGE;
                table = mem.segment(r);
                tableBase = mem.offsetInRegion(r, addr);
                tableSize = (int) (len / DESC_SIZE);
                steps = tableSize;
                inIndirect = true;
                idx = 0;
                continue;
            }
            if (left-- == 0) return ChainError.CHAIN_TOO_LONG;
            c.descriptors++;
            if (len > c.longestDescriptor) c.longestDescriptor = len;
            boolean w = (flags & F_WRITE) != 0;
            if (w) {
                seenWritable = true;
            } else if (seenWritable) {
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
            if ((flags & F_NEXT) == 0) return ChainError.NONE;
            idx = next;
        }
    }

    /**
     * Returns chain {@code head} to the driver with {@code len} bytes written. Not yet published.
     * Once the ring is gone ({@link #markFaulted} without a usable ring) the head is only
     * forgotten: nothing is written.
     */
    @Override
    public void complete(int head, int len) {
        retire(head);
        if (ringGone) return;
        long at = USED_RING + (long) USED_ELEM_SIZE * (usedIdx & mask);
        // The hook runs before the element is stored: the chain's buffers are still the device's
        // either way (nothing is published yet), and a logger may walk them (writableRanges).
        hooks.completed(this, head, len, at, USED_ELEM_SIZE);
        used.set(LE32, at, head);
        used.set(LE32, at + 4, len);
        usedIdx = (usedIdx + 1) & 0xffff;
        if (publishAfter > 0 && --publishAfter == 0) publishEarly();
    }

    /** Turns the early publish of half a batch on or off for this queue (see {@link #EARLY_PUBLISH_DEFAULT}). */
    public void earlyPublish(boolean on) {
        earlyPublish = on;
    }

    /** Releases the entries completed so far to the driver, inside a batch (no fence, no notification). */
    private void publishEarly() {
        U16.setRelease(used, (long) USED_IDX, (short) usedIdx);
        publishedUsed = usedIdx;
        anyUsed = true;
        hooks.published(this, usedIdx, USED_IDX, 2);
    }

    /**
     * Publishes completed entries (release store of used->idx) and tells {@link Interrupts}
     * whether the driver wants a notification. Returns 1 if one went out, else 0. One call per batch.
     */
    @Override
    public int flush() {
        if (usedIdx == flushedUsed || ringGone) return 0;
        int old = flushedUsed;
        if (publishedUsed != usedIdx) {
            U16.setRelease(used, (long) USED_IDX, (short) usedIdx);
            publishedUsed = usedIdx;
            hooks.published(this, usedIdx, USED_IDX, 2);
        }
        flushedUsed = usedIdx;
        anyUsed = true;
        // 2.7.10: the used index must be visible before we read the driver's suppression state.
        VarHandle.fullFence();
        boolean notify;
        if (eventIdx) {
            int usedEvent = Short.toUnsignedInt(avail.get(LE16, usedEventOffset(size)));
            int oldSig = signalledValid ? signalledUsed : old;
            notify = !signalledValid || needEvent(usedEvent, usedIdx, oldSig);
            signalledUsed = usedIdx;
            signalledValid = true;
        } else {
            notify = (Short.toUnsignedInt(avail.get(LE16, AVAIL_FLAGS)) & AVAIL_F_NO_INTERRUPT) == 0;
        }
        return interrupts.onPublished((usedIdx - old) & 0xffff, notify);
    }

    /** Asks the driver not to kick (we are polling). */
    @Override
    public void disableNotifications() {
        if (!notificationsEnabled || ringGone) return;
        notificationsEnabled = false;
        if (!eventIdx) used.set(LE16, USED_FLAGS, (short) USED_F_NO_NOTIFY);
        // Under EVENT_IDX a stale avail_event already suppresses kicks.
    }

    /**
     * Asks the driver to kick on new buffers, then re-checks the ring: returns true when buffers
     * arrived meanwhile (the caller must not sleep).
     */
    @Override
    public boolean enableNotifications() {
        if (ringGone) return false;
        notificationsEnabled = true;
        if (eventIdx) {
            used.set(LE16, availEventOffset(size), (short) lastAvail);
        } else {
            used.set(LE16, USED_FLAGS, (short) 0);
        }
        // 2.7.7/2.7.10: our flag/avail_event store must be visible before re-reading avail->idx.
        VarHandle.fullFence();
        return hasPending();
    }

    @Override
    public boolean hasPending() {
        if (brokenReason != ChainError.NONE) return false;
        if (resubmit != null) return true;
        int availIdx = Short.toUnsignedInt((short) U16.getAcquire(avail, (long) AVAIL_IDX));
        return availIdx != lastAvail;
    }

    /**
     * Walks chain {@code head} again (cold: dirty logging from {@link QueueHooks#completed}) and
     * reports each device-writable descriptor as a guest-physical range. Bounded as {@link #walk}.
     */
    @Override
    public int writableRanges(int head, GuestRangeSink sink) {
        if (head < 0 || head >= size) return -1;
        MemorySegment table = desc;
        long tableBase = 0;
        int tableSize = size;
        int steps = size;
        boolean inIndirect = false;
        int idx = head;
        int n = 0;
        GuestMemory mem = memory;
        while (true) {
            if (idx >= tableSize || steps-- == 0) return -1;
            long at = tableBase + (long) idx * DESC_SIZE;
            long addr = table.get(LE64, at + DESC_ADDR);
            long len = Integer.toUnsignedLong(table.get(LE32, at + DESC_LEN));
            int flags = Short.toUnsignedInt(table.get(LE16, at + DESC_FLAGS));
            int next = Short.toUnsignedInt(table.get(LE16, at + DESC_NEXT));
            if ((flags & F_INDIRECT) != 0) {
                if (!indirect || inIndirect || (len & 15) != 0 || len == 0 || len / DESC_SIZE > chainLimit) return -1;
                int r = mem.regionOfGpa(addr);
                if (r < 0 || Long.compareUnsigned(len, mem.contiguous(r, addr)) > 0) return -1;
                table = mem.segment(r);
                tableBase = mem.offsetInRegion(r, addr);
                tableSize = (int) (len / DESC_SIZE);
                steps = tableSize;
                inIndirect = true;
                idx = 0;
                continue;
            }
            if ((flags & F_WRITE) != 0 && len > 0) {
                sink.range(addr, len);
                n++;
            }
            if ((flags & F_NEXT) == 0) return n;
            idx = next;
        }
    }
}
