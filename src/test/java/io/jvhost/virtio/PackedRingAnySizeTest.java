package io.jvhost.virtio;

import io.jvhost.memory.GuestMemory;
import io.jvhost.memory.MemoryRegion;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Packed rings whose size is not a power of two (VIRTIO 1.2, 2.8 allows 1..32768), with our two
 * real ring implementations facing each other in one plain {@link MemorySegment}: the driver
 * ({@link DriverPackedQueue}, the initiator's) and the device ({@link PackedVirtQueue}, the
 * target's). Over many laps, with chains of 1..3 descriptors straddling the ring's end and
 * out-of-order completion, every chain reaches the device with its own buffers, every buffer id
 * comes back once with its length, both sides' positions and wrap counters agree, the
 * GET/SET_VRING_BASE word (position in bits 0-14, wrap counter in bit 15) restarts the device
 * where it stopped, and DESC-mode event suppression notifies exactly when the used position
 * passes the driver's event descriptor.
 */
class PackedRingAnySizeTest {
    private static final long GPA = 0x100000;
    private static final long EVENTS = 0;          // driver area at +0, device area at +64
    private static final long RING = 4096;         // descriptor ring (up to 32768 x 16 bytes)
    private static final long DATA = RING + 32768L * 16;
    private static final int DATA_SLOTS = 4096;    // 64-byte buffers, reused round-robin

    /** One guest region holding the event areas, a packed ring of {@code size} and the data slots. */
    record Rig(MemorySegment region, GuestMemory mem, MemorySegment ring, MemorySegment driverArea, MemorySegment deviceArea) {
        static Rig of(Arena arena, int size) {
            MemorySegment region = arena.allocate(DATA + DATA_SLOTS * 64L, 4096);
            return new Rig(region, new GuestMemory(List.of(MemoryRegion.ofSegment(GPA, region.address(), region))),
                    region.asSlice(RING, PackedRing.ringBytes(size)), region.asSlice(EVENTS, 4), region.asSlice(EVENTS + 64, 4));
        }
    }

    /** What the driver put in one chain, to compare with what the device saw. */
    record Offered(int id, long[] gpa, int[] len, int slots) {}

    @ParameterizedTest(name = "size {0}")
    @ValueSource(ints = {1, 2, 3, 7, 100, 255, 257, 1000, 32767, 32768})
    void driverAndDeviceAgreeOverManyLapsAtAnySize(int size) {
        try (Arena arena = Arena.ofConfined()) {
            Rig rig = Rig.of(arena, size);
            MemorySegment region = rig.region(), ring = rig.ring(), driverArea = rig.driverArea(), deviceArea = rig.deviceArea();
            GuestMemory mem = rig.mem();
            DriverPackedQueue drv = new DriverPackedQueue(size, ring, driverArea, deviceArea, false);
            int[] calls = {0};
            Notifier notifier = () -> {
                calls[0]++;
                return true;
            };
            PackedVirtQueue dev = new PackedVirtQueue(0, size, mem, ring, driverArea, deviceArea, false, false, 0x8000, notifier, 8);

            Random rnd = new Random(size * 31L + 5);
            Offered[] byId = new Offered[size];
            List<Integer> heldTokens = new ArrayList<>();
            ArrayDeque<Offered> published = new ArrayDeque<>();
            long seq = 0;
            long slotsUsed = 0;
            long completed = 0;
            long slotsInFlight = 0;
            int restarts = 0;
            // Enough laps for every slot to be crossed by chains in both wrap states several times;
            // the big rings get fewer laps (each lap is 32768 slots already).
            long goal = (long) size * (size >= 1000 ? 4 : 40);
            int maxChain = Math.min(3, size);
            while (slotsUsed < goal) {
                // driver: offer a few chains (some straddle the ring's end), publish once
                int want = 1 + rnd.nextInt(Math.min(size >= 1000 ? 64 : 8, size));
                for (int k = 0; k < want; k++) {
                    int n = 1 + rnd.nextInt(maxChain);
                    if (!drv.begin(n)) break;
                    long[] g = new long[n];
                    int[] l = new int[n];
                    for (int i = 0; i < n; i++, seq++) {
                        g[i] = GPA + DATA + (seq % DATA_SLOTS) * 64;
                        l[i] = 1 + (int) (seq % 63);
                        drv.add(g[i], l[i], i == n - 1);
                    }
                    int id = drv.end();
                    assertThat(byId[id]).as("id %d handed out while in flight", id).isNull();
                    Offered o = new Offered(id, g, l, n);
                    byId[id] = o;
                    slotsInFlight += n;
                    published.add(o);
                }
                drv.publish();

                // device: take what is there; each chain is the next one the driver published
                dev.poll((q, c) -> {
                    Offered o = published.poll();
                    assertThat(o).as("device found a chain the driver did not publish").isNotNull();
                    assertThat(((PackedVirtQueue) q).bufferId(c.head())).isEqualTo(o.id());
                    assertThat(c.bufferCount()).isEqualTo(o.gpa().length);
                    for (int i = 0; i < c.bufferCount(); i++) {
                        assertThat(c.segment(i).address() + c.offset(i)).isEqualTo(region.address() + (o.gpa()[i] - GPA));
                        assertThat(c.length(i)).isEqualTo(o.len()[i]);
                        assertThat(c.writable(i)).isEqualTo(i == o.gpa().length - 1);
                    }
                    heldTokens.add(c.head());
                }, Integer.MAX_VALUE);
                assertThat(published).as("device took every published chain").isEmpty();
                assertThat(dev.isBroken()).as("ring broken: %s", dev.brokenReason()).isFalse();
                assertThat(dev.state()).as("device's next avail slot = driver's").isEqualTo(drv.vringBase());

                // device: complete a random subset, in random order, with a length the driver can check
                int done = heldTokens.isEmpty() ? 0 : 1 + rnd.nextInt(heldTokens.size());
                if (rnd.nextInt(4) == 0) done = heldTokens.size();
                for (int k = 0; k < done; k++) {
                    int token = heldTokens.remove(rnd.nextInt(heldTokens.size()));
                    int id = dev.bufferId(token);
                    dev.complete(token, lenFor(id, byId[id].slots()));
                }
                dev.flush();

                // driver: every used id comes back once, with its length; its slots are free again
                long[] back = {0};
                drv.pollUsed((id, len) -> {
                    Offered o = byId[id];
                    assertThat(o).as("used id %d not in flight", id).isNotNull();
                    assertThat(len).isEqualTo(lenFor(id, o.slots()));
                    byId[id] = null;
                    back[0] += o.slots();
                });
                slotsUsed += back[0];
                slotsInFlight -= back[0];
                completed += done;
                assertThat(drv.usedPosition()).isEqualTo(dev.usedState() & 0x7fff);
                assertThat(drv.usedWrap()).isEqualTo((dev.usedState() & 0x8000) != 0);
                assertThat(drv.freeDescriptors() + slotsInFlight).isEqualTo(size);
                assertThat(dev.inFlight()).isEqualTo(heldTokens.size());

                // now and then, with nothing in flight: GET_VRING_BASE, then SET_VRING_BASE into a fresh device queue
                if (heldTokens.isEmpty() && rnd.nextInt(5) == 0) {
                    int base = dev.state();
                    assertThat(base).isEqualTo(dev.usedState()).isEqualTo(drv.vringBase());
                    assertThat(base & 0x7fff).isLessThan(size);
                    dev = new PackedVirtQueue(0, size, mem, ring, driverArea, deviceArea, false, false, base, notifier, 8);
                    restarts++;
                }
            }
            assertThat(completed).isPositive();
            assertThat(restarts).as("the restart path was taken").isPositive();
            assertThat(dev.stats.chainErrors()).isZero();
            // the lap count the wrap counter implies matches the slots that went round
            long laps = slotsUsed / size;
            assertThat(drv.usedPosition()).isEqualTo((int) (slotsUsed % size));
            assertThat(drv.usedWrap()).as("the wrap counter flipped once per lap").isEqualTo(laps % 2 == 0);
        }
    }

    private static int lenFor(int id, int slots) {
        return (id * 7 + slots) & 0xfff;
    }

    /**
     * DESC-mode driver event suppression (2.8.10, VIRTIO_F_RING_EVENT_IDX) on rings that are not a
     * power of two: the device notifies after a batch exactly when the driver's event
     * descriptor (offset and wrap counter) lies among the used slots that batch wrote. Checked
     * against a model on a line of absolute slot numbers, with event positions drawn from the
     * lap before to the lap after, over many laps.
     */
    @ParameterizedTest(name = "size {0}")
    @ValueSource(ints = {1, 3, 5, 100, 255, 1000})
    void descEventSuppressionNotifiesExactlyWhenTheEventSlotIsPassed(int size) {
        try (Arena arena = Arena.ofConfined()) {
            Rig rig = Rig.of(arena, size);
            MemorySegment ring = rig.ring(), driverArea = rig.driverArea(), deviceArea = rig.deviceArea();
            GuestMemory mem = rig.mem();
            DriverPackedQueue drv = new DriverPackedQueue(size, ring, driverArea, deviceArea, true);
            int[] calls = {0};
            PackedVirtQueue dev = new PackedVirtQueue(0, size, mem, ring, driverArea, deviceArea, true, false, 0x8000, () -> {
                calls[0]++;
                return true;
            }, 8);
            Random rnd = new Random(size);
            List<Integer> tokens = new ArrayList<>();
            long usedAbs = 0;   // used slots written so far (absolute)
            boolean first = true;
            int hits = 0, misses = 0;
            for (int round = 0; round < 200 + 20 * size && usedAbs < 30L * size; round++) {
                // fill the ring with one-descriptor chains, let the device take them all
                while (drv.begin(1)) {
                    drv.add(GPA + DATA, 8, true);
                    drv.end();
                }
                drv.publish();
                dev.poll((q, c) -> tokens.add(c.head()), Integer.MAX_VALUE);
                // the driver names an event slot P between the lap before and the lap after
                int batch = 1 + rnd.nextInt(tokens.size());
                long p = usedAbs + batch - size + rnd.nextInt(2 * size - batch);
                if (p < 0) p = usedAbs;
                int off = (int) (p % size);
                boolean wrap = (p / size) % 2 == 0; // the wrap counter starts at 1 on lap 0
                driverArea.set(LittleEndian.U16, 0, (short) (off | (wrap ? 0x8000 : 0)));
                driverArea.set(LittleEndian.U16, 2, (short) PackedRing.EVENT_FLAGS_DESC);
                for (int k = 0; k < batch; k++) dev.complete(tokens.removeFirst(), 8);
                int before = calls[0];
                dev.flush();
                boolean notified = calls[0] != before;
                boolean expected = p >= usedAbs && p < usedAbs + batch;
                if (!first) {
                    assertThat(notified).as("round %d: batch [%d, %d), event slot %d (off %d wrap %b)", round, usedAbs, usedAbs + batch, p, off, wrap)
                            .isEqualTo(expected);
                    if (expected) hits++; else misses++;
                }
                first = false;
                usedAbs += batch;
                drv.pollUsed((id, len) -> { });
            }
            assertThat(usedAbs).as("many laps").isGreaterThanOrEqualTo(Math.min(30L * size, 200));
            assertThat(hits).as("some batches passed the event slot").isPositive();
            // (on a one-slot ring the only legal event slot is the one the next batch writes)
            if (size > 1) assertThat(misses).as("some did not").isPositive();
        }
    }
}
