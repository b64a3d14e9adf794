package io.jvhost.virtio;

import io.jvhost.virtio.PackedTestDevice.Chain;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.constraints.IntRange;
import net.jqwik.api.constraints.Size;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Wrap and id bookkeeping of {@link DriverPackedQueue} under any interleaving of offers (plain,
 * pinned, indirect), publishes, device takes and out-of-order completions, on any queue size:
 * the device finds every descriptor marked for its own wrap counter, each buffer comes back
 * exactly once with its id, ids in flight are distinct, free slots are the queue minus what is
 * in flight, and both sides agree on the used position and wrap counter.
 */
class DriverPackedQueueProperties {
    @Property(tries = 300)
    void bookkeepingHoldsUnderAnyInterleaving(@ForAll @IntRange(min = 1, max = 19) int size,
                                               @ForAll @Size(min = 1, max = 300) List<@IntRange(min = 0, max = 99) Integer> ops) {
        check(size, ops);
    }

    /**
     * The same on larger rings whose size is not a power of two (VIRTIO 1.2 2.8), with enough
     * operations to lap the smaller of them many times and the largest a few times.
     */
    @Property(tries = 60)
    void bookkeepingHoldsOnLargerRingsOfAnySize(@ForAll("largerSizes") int size,
                                                 @ForAll @Size(min = 100, max = 3000) List<@IntRange(min = 0, max = 99) Integer> ops) {
        check(size, ops);
    }

    @Provide
    Arbitrary<Integer> largerSizes() {
        return Arbitraries.of(20, 33, 100, 127, 129, 255, 257, 1000, 1023);
    }

    private static final long RING = 0x8000;

    private void check(int size, List<Integer> ops) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment mem = arena.allocate(RING + DriverPackedQueue.ringBytes(1024), 4096);
            MemorySegment ring = mem.asSlice(RING, DriverPackedQueue.ringBytes(size));
            DriverPackedQueue d = new DriverPackedQueue(size, ring, mem.asSlice(0x1000), mem.asSlice(0x1040), true);
            PackedTestDevice dev = new PackedTestDevice(size, ring, mem.asSlice(0x1000, 4),
                    mem.asSlice(0x1040, 4), mem);
            DriverPackedQueue.writeTableEntry(mem.asSlice(0x2000), 0, 0x3000, 16, false);
            DriverPackedQueue.writeTableEntry(mem.asSlice(0x2000), 1, 0x3100, 1, true);
            List<Integer> pinnedIds = new ArrayList<>();
            Set<Integer> inFlight = new HashSet<>();       // offered, not yet back
            List<Chain> held = new ArrayList<>();          // taken by the device, not completed
            int[] slotsOf = new int[size];
            List<Integer> returned = new ArrayList<>();
            for (int op : ops) {
                if (op < 35) {
                    // offer: a new chain of 1..3, an indirect one, or a pinned one again
                    int kind = op % 3;
                    int id;
                    if (kind == 2 && !pinnedIds.isEmpty() && (op % 2 == 0 || pinnedIds.size() == 3)) {
                        int candidate = pinnedIds.get(op % pinnedIds.size());
                        if (inFlight.contains(candidate) || slotsOf[candidate] > d.freeDescriptors()) continue;
                        d.offer(candidate);
                        id = candidate;
                    } else {
                        int n = kind == 1 ? 1 : 1 + op % Math.min(3, size);
                        if (!d.begin(n)) {
                            assertThat(n > d.freeDescriptors() || inFlight.size() + pinnedIds.size() >= size).isTrue();
                            continue;
                        }
                        if (kind == 1) {
                            d.addIndirect(0x2000, 2);
                        } else {
                            for (int k = 0; k < n; k++) d.add(0x100L * k, 10 + k, k > 0);
                        }
                        boolean pin = kind == 2 && pinnedIds.size() < 3;
                        id = pin ? d.endPinned() : d.end();
                        slotsOf[id] = n;
                        if (pin) {
                            pinnedIds.add(id);
                            if (n > d.freeDescriptors()) continue;
                            d.offer(id);
                        }
                    }
                    assertThat(inFlight.add(id)).as("id %d offered while in flight", id).isTrue();
                } else if (op < 55) {
                    d.publish();
                } else if (op < 75) {
                    for (Chain c : dev.takeAll()) {
                        assertThat(inFlight).contains(c.id());
                        assertThat(c.slots()).isEqualTo(slotsOf[c.id()]);
                        held.add(c);
                    }
                } else if (op < 90) {
                    if (held.isEmpty()) continue;
                    Chain c = held.remove(op % held.size());
                    dev.complete(c, c.id() + 1000);
                } else {
                    returned.clear();
                    d.pollUsed((id, len) -> {
                        assertThat(len).isEqualTo(id + 1000);
                        returned.add(id);
                    });
                    for (int id : returned) assertThat(inFlight.remove(id)).as("id %d came back twice", id).isTrue();
                    assertThat(d.usedPosition()).isEqualTo(dev.usedPos);
                    assertThat(d.usedWrap()).isEqualTo(dev.usedWrap);
                }
                int slotsInFlight = inFlight.stream().mapToInt(i -> slotsOf[i]).sum();
                assertThat(d.freeDescriptors()).isEqualTo(size - slotsInFlight);
                assertThat(d.inFlight()).isEqualTo(inFlight.size());
            }
            // drain: everything offered comes back exactly once
            d.publish();
            held.addAll(dev.takeAll());
            for (Chain c : held) dev.complete(c, c.id() + 1000);
            returned.clear();
            d.pollUsed((id, len) -> returned.add(id));
            for (int id : returned) assertThat(inFlight.remove(id)).isTrue();
            assertThat(inFlight).isEmpty();
            assertThat(d.freeDescriptors()).isEqualTo(size);
            assertThat(dev.availPos).isEqualTo(d.availPosition());
            assertThat(dev.availWrap).isEqualTo(d.availWrap());
        }
    }
}
