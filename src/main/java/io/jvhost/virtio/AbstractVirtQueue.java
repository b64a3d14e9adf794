package io.jvhost.virtio;

import io.jvhost.memory.GuestMemory;

import java.lang.foreign.MemorySegment;

/**
 * What the device side of a split ring ({@link SplitVirtQueue}, VIRTIO 1.2, 2.7) and of a packed
 * ring ({@link PackedVirtQueue}, 2.8) keep alike: the bookkeeping of heads in flight, the grace
 * count of a memory swap, the broken/faulted states and the error counting, and the accessors of
 * {@link VirtQueue} that only read that state.
 *
 * <p><b>Split of responsibilities.</b> This class never touches a ring: it holds no ring
 * segment, reads no guest memory and has no memory ordering. Everything that does stays in one
 * place per ring format, in the subclass: reading available chains ({@code poll}), walking
 * descriptors, writing used entries ({@code complete}, {@code flush}), event suppression, the
 * GET/SET_VRING_BASE encoding ({@code state}), chain limits ({@code acceptChainsUpTo}), which
 * ring structures lie in a region ({@code ringIn}) and {@code writableRanges}. The subclasses
 * call the small {@code final} steps here from their hot paths: {@link #markInFlight} when a
 * head is taken, {@link #retire} at the start of {@code complete}, {@link #chainError} and
 * {@link #markBroken} when the guest got something wrong. They are final and non-virtual (the
 * class is sealed, its subclasses final), so the JIT inlines them into each ring's own code: no
 * extra dispatch per request, no allocation, no volatile access.
 *
 * <p>Owned by one reactor thread like the subclasses: every method is called from it only
 * (see {@link VirtQueue}).
 */
public abstract sealed class AbstractVirtQueue implements VirtQueue permits SplitVirtQueue, PackedVirtQueue {

    final int index;
    final int size;
    /** Translation snapshot for descriptor addresses; replaced by {@link #swapMemory} (reactor thread). */
    GuestMemory memory;
    final boolean eventIdx;
    final boolean indirect;
    final Interrupts interrupts;
    QueueHooks hooks = QueueHooks.NONE;
    final DescriptorChain chain;
    /** Per head (see {@link VirtQueue}): fetched and not yet completed. */
    final boolean[] inFlight;
    int inFlightCount;
    /** Heads in flight at the last {@link #swapMemory} (allocated at the first swap; cold). */
    private boolean[] beforeSwap;
    private int beforeSwapCount;
    /** A used entry was ever published (or found published at start). */
    boolean anyUsed;
    /** Most buffer descriptors one chain may hold, indirect entries included (the subclass's walk enforces it). */
    int chainLimit;
    ChainError brokenReason = ChainError.NONE;
    ChainError lastError = ChainError.NONE;
    /** Processing faulted: no more chains are fetched (see {@link #markFaulted}). */
    boolean faulted;
    /** The ring itself is not touched again (its memory vanished, or the cause is unknown). */
    boolean ringGone;

    public final QueueStats stats = new QueueStats();

    /** The subclass has checked {@code size} for its ring format. */
    AbstractVirtQueue(int index, int size, GuestMemory memory, boolean eventIdx, boolean indirect, Notifier notifier, int maxBuffers) {
        this.index = index;
        this.size = size;
        this.memory = memory;
        this.eventIdx = eventIdx;
        this.indirect = indirect;
        this.interrupts = new Interrupts(stats, notifier);
        this.chain = new DescriptorChain(maxBuffers);
        this.inFlight = new boolean[size];
        this.chainLimit = size;
    }

    @Override public final int index() { return index; }
    @Override public final int size() { return size; }
    @Override public final boolean anyUsed() { return anyUsed; }
    @Override public final int inFlight() { return inFlightCount; }
    /** Is head {@code head} fetched and not yet completed? */
    @Override public final boolean isInFlight(int head) { return head >= 0 && head < size && inFlight[head]; }
    @Override public final boolean isBroken() { return brokenReason != ChainError.NONE; }
    @Override public final ChainError brokenReason() { return brokenReason; }
    /** The most recent chain error (for logging by the owner). */
    @Override public final ChainError lastError() { return lastError; }
    /** True after {@link #markFaulted}: the queue fetches nothing more. */
    @Override public final boolean isFaulted() { return faulted; }
    /** False after a fault that took the ring's own memory (or of unknown cause): nothing is written to it. */
    @Override public final boolean ringUsable() { return !ringGone; }
    /** The chain flyweight as the last {@link #poll} left it (its owner's fault handling reads it). */
    @Override public final DescriptorChain lastChain() { return chain; }
    @Override public final QueueStats stats() { return stats; }
    @Override public final Interrupts interrupts() { return interrupts; }
    @Override public final GuestMemory memory() { return memory; }
    /** Most buffer descriptors one chain may hold, indirect table entries included. */
    @Override public final int chainLimit() { return chainLimit; }

    /** Attaches hooks ({@code null} or {@link QueueHooks#NONE} detaches). A subclass may note more (cold). */
    @Override
    public void hooks(QueueHooks h) {
        hooks = h == null ? QueueHooks.NONE : h;
    }

    /**
     * Records that the device refused a well-formed chain {@code why} (e.g. beyond its advertised
     * seg_max): counted with the chain errors and logged (rate-limited) by the owner. The device
     * still answers the request itself. Owning reactor thread.
     */
    @Override
    public final void countRefused(ChainError why) {
        chainError(why);
    }

    /**
     * Walks chains through {@code next} from now on (reactor thread, between polls). The rings'
     * own segments stay as they are: the caller never swaps out the region holding them (it
     * stops the queue instead). Heads in flight now are remembered: {@link #chainsBeforeSwap()}
     * reaches 0 once all of them completed, and only then may a mapping that {@code next} no
     * longer has be unmapped.
     */
    @Override
    public final void swapMemory(GuestMemory next) {
        if (beforeSwap == null) beforeSwap = new boolean[size];
        System.arraycopy(inFlight, 0, beforeSwap, 0, size);
        beforeSwapCount = inFlightCount;
        memory = next;
    }

    @Override
    public final int chainsBeforeSwap() {
        return beforeSwapCount;
    }

    /**
     * Stops the queue after a fault (the front-end truncated memory behind the ring or a buffer)
     * or an internal error: no more chains are fetched. With {@code ringUsable} (the fault was in
     * a buffer's memory, the rings' memory is intact) completions are still written and
     * published, so requests in flight can be answered; without it the ring is not touched
     * again: completions only forget their head, flushes and notification control do nothing,
     * a held-back call is dropped. Called again without {@code ringUsable}, it gives up the ring.
     * Counted once in {@link QueueStats#faults}. Owning reactor thread.
     */
    @Override
    public final void markFaulted(ChainError why, boolean ringUsable) {
        if (!ringUsable) {
            ringGone = true;
            interrupts.dropDeferred();
        }
        if (faulted) return;
        faulted = true;
        brokenReason = why;
        lastError = why;
        stats.countFault();
    }

    /**
     * Head {@code head} was taken from the ring (or resubmitted): in flight from now on, and the
     * hooks are told. The subclass has checked it is below the size and not in flight.
     */
    final void markInFlight(int head) {
        inFlight[head] = true;
        inFlightCount++;
        hooks.popped(this, head);
    }

    /**
     * The bookkeeping step of {@code complete}: head {@code head} is no longer in flight, and no
     * longer holds back the grace period of the last {@link #swapMemory}. Throws
     * {@link IllegalStateException} when it is not in flight (a device bug, not the guest's).
     */
    final void retire(int head) {
        if (head < 0 || head >= size || !inFlight[head]) throw notInFlight(head);
        inFlight[head] = false;
        inFlightCount--;
        if (beforeSwapCount != 0 && beforeSwap[head]) {
            beforeSwap[head] = false;
            beforeSwapCount--;
        }
    }

    private IllegalStateException notInFlight(int head) {
        return new IllegalStateException("queue " + index + ": completing head " + head + " that is not in flight");
    }

    /** A chain error the queue survives: remembered for the owner's log line and counted. */
    final void chainError(ChainError why) {
        lastError = why;
        stats.countChainError();
    }

    /** The driver broke the ring itself: nothing more is fetched. Counted as a chain error. */
    final void markBroken(ChainError why) {
        brokenReason = why;
        chainError(why);
    }

    /** Do the address ranges of {@code a} and {@code b} overlap? (for {@code ringIn}) */
    static boolean overlaps(MemorySegment a, MemorySegment b) {
        return a.address() < b.address() + b.byteSize() && b.address() < a.address() + a.byteSize();
    }
}
