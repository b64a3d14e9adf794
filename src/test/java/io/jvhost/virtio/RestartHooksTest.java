package io.jvhost.virtio;

import io.jvhost.memory.DirtyLog;
import io.jvhost.memory.GuestMemory;
import io.jvhost.memory.MemoryRegion;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;

import static io.jvhost.virtio.SplitRing.*;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * The hooks that make restarts and migration safe, over a split ring in plain memory: inflight
 * tracking ({@link InflightSplitQueue}: what a back-end that died leaves for the next one, and
 * the order it resubmits in) and dirty logging ({@link RingDirtyLogger}: the pages the device
 * wrote, and only those).
 */
class RestartHooksTest {
    static final int SIZE = 16;
    final Arena arena = Arena.ofConfined();
    /** gpa 0x10000..0x30000: rings at 0x10000 (desc), 0x11000 (avail), 0x12000 (used); buffers above 0x20000. */
    final MemorySegment r0 = arena.allocate(0x20000, 4096);
    final MemoryRegion reg0 = MemoryRegion.ofSegment(0x10000, r0.address(), r0);
    final GuestMemory mem = new GuestMemory(List.of(reg0));
    final DriverSplitQueue driver = new DriverSplitQueue(SIZE, r0.asSlice(0), r0.asSlice(0x1000), r0.asSlice(0x2000), false);
    final MemorySegment inflightRegion = arena.allocate(InflightSplitQueue.regionBytes(SIZE), 64);
    final List<Integer> seen = new ArrayList<>();
    final VirtQueue.ChainHandler hold = (q, c) -> seen.add(c.head());

    @AfterEach
    void close() {
        arena.close();
    }

    /** A device-side queue over the same ring: what a (re)started back-end builds. */
    SplitVirtQueue device(int lastAvail) {
        return new SplitVirtQueue(0, SIZE, mem, r0.asSlice(0, descTableBytes(SIZE)), r0.asSlice(0x1000, availBytes(SIZE)),
                r0.asSlice(0x2000, usedBytes(SIZE)), false, false, lastAvail, Notifier.NONE, 64);
    }

    int push(int slot) {
        driver.begin(3);
        driver.add(0x2E000 + 32L * slot, 16, false);
        driver.add(0x21000 + 0x1000L * slot, 512, true);
        driver.add(0x2D000 + 32L * slot, 1, true);
        int head = driver.end();
        driver.publish();
        return head;
    }

    @Test
    void aRestartedBackEndResubmitsExactlyWhatWasInFlightInPopOrder() {
        InflightSplitQueue iq = new InflightSplitQueue(inflightRegion, SIZE);
        SplitVirtQueue q = device(0);
        assertThat(iq.recover(q.usedIndex())).as("a fresh area").isEmpty();
        q.hooks(iq);
        int a = push(0), b = push(1), c = push(2), d = push(3);
        assertThat(q.poll(hold, 64)).isEqualTo(4);
        q.complete(c, 1);
        q.complete(a, 1);
        q.flush();
        assertThat(iq.isInFlight(a)).isFalse();
        assertThat(iq.isInFlight(c)).isFalse();
        assertThat(iq.isInFlight(b)).isTrue();
        assertThat(iq.isInFlight(d)).isTrue();
        assertThat(iq.recordedUsedIdx()).isEqualTo(2);
        int e = push(4); // queued while the back-end is down

        // kill -9: the next back-end is told the used index as the avail index (QEMU's restore)
        SplitVirtQueue q2 = device(driver.usedIndex());
        InflightSplitQueue iq2 = new InflightSplitQueue(inflightRegion, SIZE);
        int[] heads = iq2.recover(q2.usedIndex());
        assertThat(heads).containsExactly(b, d);
        q2.resubmit(heads);
        q2.hooks(iq2);
        assertThat(q2.lastAvail()).as("used + in flight: the next new chain").isEqualTo(4);
        seen.clear();
        assertThat(q2.hasPending()).isTrue();
        q2.poll(hold, 64);
        q2.poll(hold, 64);
        assertThat(seen).as("resubmitted first, then what is new").containsExactly(b, d, e);
        for (int h : List.of(d, b, e)) q2.complete(h, 1);
        q2.flush();
        assertThat(driver.usedIndex()).isEqualTo(5);
        for (int h : List.of(a, b, c, d, e)) assertThat(iq2.isInFlight(h)).isFalse();
        assertThat(q2.stats().chainErrors()).isZero();
    }

    @Test
    void aFrontEndBaseBehindTheUsedIndexDoesNotRetakeCompletedChains() {
        // CI, JvhostReconnectQemuTest: QEMU saw the connection end while the back-end was still
        // draining. It took the used index of that moment (0) as the base; the drain then
        // published a and b. The next back-end must start at the used index (2): taking a and b
        // again completes them twice ("id 0 is not a head", and the guest's disk is dead).
        InflightSplitQueue iq = new InflightSplitQueue(inflightRegion, SIZE);
        SplitVirtQueue q = device(0);
        iq.recover(q.usedIndex());
        q.hooks(iq);
        int a = push(0), b = push(1);
        int staleBase = driver.usedIndex();
        assertThat(q.poll(hold, 64)).isEqualTo(2);
        q.complete(a, 1);
        q.complete(b, 1);
        q.flush();
        int c = push(2);

        SplitVirtQueue q2 = device(staleBase);
        InflightSplitQueue iq2 = new InflightSplitQueue(inflightRegion, SIZE);
        assertThat(iq2.written()).isTrue();
        int[] heads = iq2.recover(q2.usedIndex());
        assertThat(heads).isEmpty();
        q2.resubmit(heads);
        q2.hooks(iq2);
        assertThat(q2.lastAvail()).as("the used index, not the front-end's stale base").isEqualTo(2);
        seen.clear();
        q2.poll(hold, 64);
        assertThat(seen).containsExactly(c);
    }

    @Test
    void aFreshAreaLeavesTheFrontEndsBase() {
        InflightSplitQueue.format(inflightRegion, SIZE);
        assertThat(new InflightSplitQueue(inflightRegion, SIZE).written()).as("a fresh area knows nothing").isFalse();
    }

    @Test
    void aCrashBetweenPublishingAndClearingDoesNotResubmitACompletedRequest() {
        InflightSplitQueue iq = new InflightSplitQueue(inflightRegion, SIZE);
        SplitVirtQueue q = device(0);
        iq.recover(q.usedIndex());
        // The back-end dies right after storing used->idx, before its publish hook ran.
        q.hooks(new QueueHooks() {
            @Override public void popped(VirtQueue qq, int head) { iq.popped(qq, head); }
            @Override public void completed(VirtQueue qq, int head, int len, long off, int bytes) { iq.completed(qq, head, len, off, bytes); }
        });
        int a = push(0), b = push(1);
        q.poll(hold, 64);
        q.complete(b, 1);
        q.flush();
        assertThat(iq.isInFlight(b)).as("not cleared: the crash came first").isTrue();

        InflightSplitQueue iq2 = new InflightSplitQueue(inflightRegion, SIZE);
        assertThat(iq2.recover(driver.usedIndex())).as("b was published: only a is redone").containsExactly(a);
        assertThat(iq2.recordedUsedIdx()).isEqualTo(1);
    }

    @Test
    void aCompletionNotYetPublishedIsRedone() {
        InflightSplitQueue iq = new InflightSplitQueue(inflightRegion, SIZE);
        SplitVirtQueue q = device(0);
        iq.recover(q.usedIndex());
        q.hooks(iq);
        int a = push(0), b = push(1);
        q.poll(hold, 64);
        q.complete(a, 1); // never flushed: the driver never saw it
        assertThat(new InflightSplitQueue(inflightRegion, SIZE).recover(driver.usedIndex())).containsExactly(a, b);
    }

    @Test
    void aFreshAreaOnARingThatDidNotStartAtZeroTracksFromThere() {
        // A migration's destination: the ring's used index is wherever the source left it.
        for (int i = 0; i < 40; i++) {
            int h = push(i % 4);
            SplitVirtQueue q = device(i);
            q.poll(hold, 64);
            q.complete(h, 1);
            q.flush();
            driver.pollUsed((head, len) -> { });
        }
        InflightSplitQueue.format(inflightRegion, SIZE);
        InflightSplitQueue iq = new InflightSplitQueue(inflightRegion, SIZE);
        assertThat(iq.recover(driver.usedIndex())).isEmpty();
        assertThat(iq.recordedUsedIdx()).isEqualTo(40);
    }

    @Test
    void aRegionNoBackEndCouldHaveWrittenIsRefused() {
        InflightSplitQueue.format(inflightRegion, SIZE);
        inflightRegion.set(LittleEndian.U16, 8, (short) InflightSplitQueue.VERSION);
        inflightRegion.set(LittleEndian.U16, 14, (short) 500); // used_idx far from the ring's
        assertThatThrownBy(() -> new InflightSplitQueue(inflightRegion, SIZE).recover(0)).isInstanceOf(IllegalArgumentException.class);
        InflightSplitQueue.format(inflightRegion, 8); // fewer slots than the ring has
        inflightRegion.set(LittleEndian.U16, 8, (short) InflightSplitQueue.VERSION);
        assertThatThrownBy(() -> new InflightSplitQueue(inflightRegion, SIZE).recover(0)).isInstanceOf(IllegalArgumentException.class);
        // Garbage heads in the list are skipped by the ring, not trusted.
        SplitVirtQueue q = device(0);
        q.resubmit(new int[] {SIZE + 3, 2, 2});
        int[] walked = new int[1];
        q.poll((qq, c) -> walked[0]++, 64);
        assertThat(q.stats().chainErrors()).isEqualTo(2);
    }

    @Test
    void theDirtyLogHasTheWrittenPagesAndTheUsedRingAndNothingElse() {
        MemorySegment bitmap = arena.allocate(64, 8); // 512 pages: gpa up to 2 MiB
        DirtyLog log = new DirtyLog(bitmap);
        SplitVirtQueue q = device(0);
        q.hooks(new RingDirtyLogger(log, 0x12000, SIZE));
        driver.begin(3);
        driver.add(0x2E000, 16, false);          // header: read only
        driver.add(0x21800, 8192, true);          // data: pages 0x21, 0x22, 0x23
        driver.add(0x2D010, 1, true);             // status
        int head = driver.end();
        driver.publish();
        q.poll(hold, 64);
        assertThat(bitmap.get(java.lang.foreign.ValueLayout.JAVA_LONG, 0)).as("nothing before completion").isZero();
        q.complete(head, 8193);
        q.flush();
        for (long page : new long[] {0x21, 0x22, 0x23, 0x2D, 0x12}) assertThat(log.isMarked(page)).as("page 0x%x", page).isTrue();
        for (long page : new long[] {0x2E, 0x20, 0x24, 0x10, 0x11}) assertThat(log.isMarked(page)).as("page 0x%x", page).isFalse();
        // A range past the log is dropped, not written out of bounds.
        log.mark(0x4000_0000L, 4096);
        assertThat(log.beyond()).isEqualTo(1);
    }

    @Test
    void withoutTheUsedRingFlagOnlyTheBuffersAreLogged() {
        DirtyLog log = new DirtyLog(arena.allocate(64, 8));
        SplitVirtQueue q = device(0);
        q.hooks(HooksPair.of(new InflightSplitQueue(inflightRegion, SIZE), new RingDirtyLogger(log, -1, SIZE)));
        int h = push(1);
        q.poll(hold, 64);
        q.complete(h, 513);
        q.flush();
        assertThat(log.isMarked(0x22)).isTrue();
        assertThat(log.isMarked(0x12)).isFalse();
    }
}
