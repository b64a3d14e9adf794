package io.jvhost.virtio;

import io.jvhost.memory.GuestMemory;
import io.jvhost.memory.MemoryRegion;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * The bookkeeping {@link SplitVirtQueue} and {@link PackedVirtQueue} share through
 * {@link AbstractVirtQueue}, run over both ring kinds with the same steps and the same expected
 * numbers: the grace count of a memory swap (including a second swap while chains of the first
 * are still out), a fault that keeps the ring and then one that gives it up, a refused chain,
 * and completing a head that is not in flight. Rings are laid out in plain memory by the
 * initiator's drivers ({@link DriverSplitQueue}, {@link DriverPackedQueue}).
 */
class AbstractVirtQueueTest {
    static final int SIZE = 16;
    final Arena arena = Arena.ofConfined();
    /** One region at gpa 0x10000: rings in the first 0x4000 bytes, headers/statuses at 0x14000, data above 0x18000. */
    final MemorySegment ram = arena.allocate(0x40000, 4096);
    final MemoryRegion region = MemoryRegion.ofSegment(0x10000, ram.address(), ram);
    final GuestMemory memory = new GuestMemory(List.of(region));

    DriverQueue driver;
    AbstractVirtQueue queue;
    /** Device-side heads the handler took and has not completed (the test completes them). */
    final List<Integer> held = new ArrayList<>();
    final VirtQueue.ChainHandler hold = (q, c) -> held.add(c.head());

    @AfterEach
    void close() {
        arena.close();
    }

    void open(String ring) {
        if (ring.equals("split")) {
            driver = new DriverSplitQueue(SIZE, ram.asSlice(0, 0x1000), ram.asSlice(0x1000, 0x1000), ram.asSlice(0x2000, 0x1000), false);
            queue = new SplitVirtQueue(0, SIZE, memory, ram.asSlice(0, SplitRing.descTableBytes(SIZE)), ram.asSlice(0x1000, SplitRing.availBytes(SIZE)),
                    ram.asSlice(0x2000, SplitRing.usedBytes(SIZE)), false, false, 0, Notifier.NONE, 64);
        } else {
            driver = new DriverPackedQueue(SIZE, ram.asSlice(0, 0x1000), ram.asSlice(0x1000, 4), ram.asSlice(0x2000, 4), false);
            queue = new PackedVirtQueue(0, SIZE, memory, ram.asSlice(0, PackedRing.ringBytes(SIZE)), ram.asSlice(0x1000, 4), ram.asSlice(0x2000, 4),
                    false, false, 0x8000, Notifier.NONE, 64);
        }
    }

    /** Queues and publishes a blk-shaped chain (16 bytes readable, 512 writable, 1 writable), number {@code n}. */
    void push(int n) {
        assertThat(driver.begin(3)).isTrue();
        driver.add(0x24000 + 32L * n, 16, false);
        driver.add(0x28000 + 512L * n, 512, true);
        driver.add(0x24000 + 32L * n + 16, 1, true);
        driver.end();
        driver.publish();
    }

    /** Queues and publishes a chain whose buffer lies outside guest memory. */
    void pushOutside() {
        assertThat(driver.begin(1)).isTrue();
        driver.add(0x900000, 512, true);
        driver.end();
        driver.publish();
    }

    int reap() {
        return driver.pollUsed((head, len) -> { });
    }

    @ParameterizedTest
    @ValueSource(strings = {"split", "packed"})
    void theSwapGraceCountsOnlyChainsInFlightAtTheLastSwap(String ring) {
        open(ring);
        for (int i = 0; i < 3; i++) push(i);
        assertThat(queue.poll(hold, 64)).isEqualTo(3);
        int a = held.get(0), b = held.get(1), c = held.get(2);
        assertThat(queue.chainsBeforeSwap()).as("no swap yet").isZero();

        GuestMemory next = new GuestMemory(List.of(region));
        queue.swapMemory(next);
        assertThat(queue.memory()).isSameAs(next);
        assertThat(queue.chainsBeforeSwap()).isEqualTo(3);
        queue.complete(b, 1);
        assertThat(queue.chainsBeforeSwap()).isEqualTo(2);

        // Popped after the swap: not counted, completing it changes nothing; nor does a refused chain.
        push(3);
        pushOutside();
        held.clear();
        assertThat(queue.poll(hold, 64)).isEqualTo(2);
        assertThat(held).hasSize(1);
        int d = held.get(0);
        assertThat(queue.lastError()).isEqualTo(ChainError.ADDRESS_OUT_OF_RANGE);
        assertThat(queue.chainsBeforeSwap()).isEqualTo(2);

        // A second swap takes what is in flight now: a, c and d.
        queue.swapMemory(new GuestMemory(List.of(region)));
        assertThat(queue.chainsBeforeSwap()).isEqualTo(3);
        queue.complete(d, 1);
        assertThat(queue.chainsBeforeSwap()).isEqualTo(2);
        queue.complete(a, 1);
        assertThat(queue.chainsBeforeSwap()).isEqualTo(1);
        queue.complete(c, 1);
        assertThat(queue.chainsBeforeSwap()).as("grace period over").isZero();
        assertThat(queue.inFlight()).isZero();

        queue.swapMemory(memory);
        assertThat(queue.chainsBeforeSwap()).as("nothing in flight at this swap").isZero();
        queue.flush();
        assertThat(reap()).as("b, the refused chain, d, a, c").isEqualTo(5);
        assertThat(queue.stats().chainErrors()).isEqualTo(1);
        assertThat(queue.isBroken()).isFalse();
    }

    @ParameterizedTest
    @ValueSource(strings = {"split", "packed"})
    void aFaultStopsFetchingCountsOnceAndGivesUpTheRingOnlyWhenAsked(String ring) {
        open(ring);
        push(0);
        push(1);
        assertThat(queue.poll(hold, 64)).isEqualTo(2);

        queue.markFaulted(ChainError.GUEST_MEMORY_FAULT, true);
        assertThat(queue.isFaulted()).isTrue();
        assertThat(queue.isBroken()).isTrue();
        assertThat(queue.brokenReason()).isEqualTo(ChainError.GUEST_MEMORY_FAULT);
        assertThat(queue.lastError()).isEqualTo(ChainError.GUEST_MEMORY_FAULT);
        assertThat(queue.ringUsable()).isTrue();
        assertThat(queue.stats().faults()).isEqualTo(1);
        push(2);
        assertThat(queue.hasPending()).as("a faulted queue fetches nothing").isFalse();
        assertThat(queue.poll(hold, 64)).isZero();

        // The ring is intact: a completion is still written and published.
        queue.complete(held.get(0), 1);
        queue.flush();
        assertThat(reap()).isEqualTo(1);

        queue.markFaulted(ChainError.INTERNAL_ERROR, false);
        assertThat(queue.stats().faults()).as("counted once").isEqualTo(1);
        assertThat(queue.brokenReason()).as("the first cause stays").isEqualTo(ChainError.GUEST_MEMORY_FAULT);
        assertThat(queue.ringUsable()).isFalse();
        // The ring is gone: the head is forgotten, nothing is written or published.
        queue.complete(held.get(1), 1);
        assertThat(queue.inFlight()).isZero();
        assertThat(queue.isInFlight(held.get(1))).isFalse();
        assertThat(queue.flush()).isZero();
        assertThat(reap()).isZero();
    }

    @ParameterizedTest
    @ValueSource(strings = {"split", "packed"})
    void aRefusedChainIsCountedWithoutBreakingTheQueue(String ring) {
        open(ring);
        queue.countRefused(ChainError.EXCEEDS_DEVICE_LIMITS);
        assertThat(queue.lastError()).isEqualTo(ChainError.EXCEEDS_DEVICE_LIMITS);
        assertThat(queue.stats().chainErrors()).isEqualTo(1);
        assertThat(queue.isBroken()).isFalse();
        assertThat(queue.brokenReason()).isEqualTo(ChainError.NONE);
        push(0);
        assertThat(queue.poll(hold, 64)).isEqualTo(1);
        assertThat(held).hasSize(1);
    }

    @ParameterizedTest
    @ValueSource(strings = {"split", "packed"})
    void completingAHeadNotInFlightThrowsAndChangesNothing(String ring) {
        open(ring);
        push(0);
        queue.poll(hold, 64);
        int head = held.get(0);
        for (int bad : new int[] {-1, SIZE, (head + 1) % SIZE}) {
            assertThatThrownBy(() -> queue.complete(bad, 1))
                    .isInstanceOf(IllegalStateException.class)
                    .hasMessage("queue 0: completing head " + bad + " that is not in flight");
        }
        assertThat(queue.inFlight()).isEqualTo(1);
        assertThat(queue.isInFlight(head)).isTrue();
        queue.complete(head, 1);
        assertThatThrownBy(() -> queue.complete(head, 1)).isInstanceOf(IllegalStateException.class);
        assertThat(queue.inFlight()).isZero();
        queue.flush();
        assertThat(reap()).isEqualTo(1);
    }
}
