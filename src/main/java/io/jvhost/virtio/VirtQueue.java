package io.jvhost.virtio;

import io.jvhost.memory.GuestMemory;

import java.lang.foreign.MemorySegment;

/**
 * The device side of one virtqueue, whatever its ring layout (VIRTIO 1.2, 2.7 split; 2.8 packed):
 * what the vhost layer codes against. Implementations: {@link SplitVirtQueue},
 * {@link PackedVirtQueue}, over the state they share in {@link AbstractVirtQueue}.
 *
 * <p>A "head" is the queue's handle of a chain in flight, below {@link #size()} and unique among
 * chains in flight: a split ring's head descriptor index, a packed ring's own token (its buffer
 * ids need not be below the queue size, and its ring slots are reused while chains are in flight).
 *
 * <p>Owned by one reactor thread: every method except construction is called from it only. The
 * other threads (the session's control thread) act on a running queue by reactor commands:
 * {@link #swapMemory} for ADD_MEM_REG/REM_MEM_REG, {@link Interrupts#notifier(Notifier)} for
 * SET_VRING_CALL, {@link #hooks(QueueHooks)} to attach inflight tracking or dirty logging.
 *
 * <p>Seams: the used-buffer notification goes through an injected {@link Notifier} behind
 * {@link #interrupts()} (the ring decides only whether the driver wants one); {@link QueueHooks}
 * see every head popped, every used entry written and every used index published.
 */
public interface VirtQueue {
    /** Receives each valid chain; must consume the flyweight before returning. */
    interface ChainHandler {
        void onChain(VirtQueue queue, DescriptorChain chain);
    }

    /** Receives guest-physical byte ranges (see {@link #writableRanges}). */
    interface GuestRangeSink {
        void range(long gpa, long length);
    }

    int index();

    int size();

    /**
     * Consumes up to {@code budget} available chains, handing each valid one to {@code handler};
     * invalid ones are returned to the driver with length 0 and counted. Returns the number consumed.
     */
    int poll(ChainHandler handler, int budget);

    /** Returns chain {@code head} to the driver with {@code len} bytes written; not yet published. */
    void complete(int head, int len);

    /** Publishes completed entries and notifies the driver if it wants it; 1 if a call went out. */
    int flush();

    /** Asks the driver not to kick (we are polling). */
    void disableNotifications();

    /** Asks the driver to kick; true when buffers arrived meanwhile (the caller must not sleep). */
    boolean enableNotifications();

    /** Are there available chains not consumed yet? */
    boolean hasPending();

    /**
     * The ring state as VHOST_USER_GET_VRING_BASE reports it. Split: the next available index
     * (16 bits). Packed (vhost-user.rst): bits 0–14 the next available index, bit 15 its wrap
     * counter (and bits 16–30 / 31 the used index and wrap counter where the front-end keeps them).
     * jvhost reports and takes only the low 16 bits, as QEMU 7.2 and DPDK do: a ring is stopped
     * with nothing in flight, so its used position restarts at the available one.
     */
    int state();

    /** Did the device ever publish a used entry on this ring (so a missed call might hang the driver)? */
    boolean anyUsed();

    /** Chains fetched and not yet completed. */
    int inFlight();

    /** Is head {@code head} fetched and not yet completed? */
    boolean isInFlight(int head);

    /** The driver broke the ring (e.g. an avail index jump): nothing more is fetched. */
    boolean isBroken();

    ChainError brokenReason();

    /** The most recent chain error (for logging by the owner). */
    ChainError lastError();

    /** Records that the device refused a well-formed chain; counted with the chain errors. */
    void countRefused(ChainError why);

    /** True after {@link #markFaulted}: the queue fetches nothing more. */
    boolean isFaulted();

    /** False after a fault that took the ring's own memory: nothing is written to it. */
    boolean ringUsable();

    /** Stops the queue after a fault; see {@link AbstractVirtQueue#markFaulted}. */
    void markFaulted(ChainError why, boolean ringUsable);

    /** Most buffer descriptors one chain may hold, indirect entries included. */
    int chainLimit();

    /** Lets chains hold up to {@code descriptors} buffer descriptors (a device's seg_max); before polling. */
    void acceptChainsUpTo(int descriptors);

    /** The chain flyweight as the last {@link #poll} left it (fault handling reads it). */
    DescriptorChain lastChain();

    QueueStats stats();

    /** Notification policy and the current notifier. */
    Interrupts interrupts();

    /** Attaches hooks ({@link QueueHooks#NONE} to detach). */
    void hooks(QueueHooks hooks);

    /** The translation snapshot chains are walked through now. */
    GuestMemory memory();

    /** Does any part of the ring's own structures lie in {@code region} (a region's whole mapping)? */
    boolean ringIn(MemorySegment region);

    /**
     * Walks chains through {@code next} from now on. The ring's own structures must be mapped in
     * {@code next} as they were (a region holding them is never swapped out under a running
     * queue). Chains popped before the swap may still refer to the old snapshot's mappings:
     * {@link #chainsBeforeSwap()} counts those still in flight, so the caller unmaps a removed
     * region only once it is 0 (a grace period in RCU terms).
     */
    void swapMemory(GuestMemory next);

    /** Chains popped before the last {@link #swapMemory} and not completed yet. */
    int chainsBeforeSwap();

    /**
     * Visits the device-writable buffers of chain {@code head} (in flight, not yet published)
     * as guest-physical ranges, by walking its descriptors again; for dirty logging from
     * {@link QueueHooks#completed}. Returns the number of ranges, or -1 if the walk fails now.
     * Cold path.
     */
    int writableRanges(int head, GuestRangeSink sink);
}
