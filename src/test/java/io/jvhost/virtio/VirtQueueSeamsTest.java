package io.jvhost.virtio;

import io.jvhost.memory.GuestMemory;
import io.jvhost.memory.MemoryRegion;
import io.jvhost.sys.EventFd;
import io.jvhost.sys.Fd;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;

import static io.jvhost.virtio.SplitRing.*;
import static org.assertj.core.api.Assertions.assertThat;

/**
 * The seams of {@link VirtQueue} over a split ring laid out in plain memory: the injected
 * notifier, the hooks at pop/complete/publish (and the writable ranges a dirty logger finds from
 * the completion hook), a notifier swapped with requests in flight, and guest memory swapped
 * under a running queue with its grace count.
 */
class VirtQueueSeamsTest {
    static final int SIZE = 16;
    final Arena arena = Arena.ofConfined();
    /** Rings at the start, buffers above 0x20000 (gpa 0x10000 + offset). */
    final MemorySegment r0 = arena.allocate(0x20000, 4096);
    /** A second region, [0x40000, 0x50000), removed by the memory-swap test. */
    final MemorySegment r1 = arena.allocate(0x10000, 4096);
    /** A region added by the memory-swap test, [0x80000, 0x90000). */
    final MemorySegment r2 = arena.allocate(0x10000, 4096);
    final MemoryRegion reg0 = MemoryRegion.ofSegment(0x10000, r0.address(), r0);
    final MemoryRegion reg1 = MemoryRegion.ofSegment(0x40000, r1.address(), r1);
    final MemoryRegion reg2 = MemoryRegion.ofSegment(0x80000, r2.address(), r2);
    final MemorySegment scratch = arena.allocate(8, 8);
    final DriverSplitQueue driver = new DriverSplitQueue(SIZE, r0.asSlice(0), r0.asSlice(0x1000), r0.asSlice(0x2000), false);
    final List<Integer> fds = new ArrayList<>();

    /** Counts notifications. */
    static final class CountingNotifier implements Notifier {
        int signals;

        @Override
        public boolean signal() {
            signals++;
            return true;
        }
    }

    /** Records every hook call as text, in order, and the writable ranges seen at completion. */
    static final class RecordingHooks implements QueueHooks {
        final List<String> events = new ArrayList<>();
        final List<long[]> writable = new ArrayList<>();

        @Override
        public void popped(VirtQueue q, int head) {
            events.add("pop " + head);
        }

        @Override
        public void completed(VirtQueue q, int head, int len, long ringOffset, int bytes) {
            events.add("complete " + head + " len " + len + " at " + ringOffset + "+" + bytes);
            q.writableRanges(head, (gpa, length) -> writable.add(new long[] {head, gpa, length}));
        }

        @Override
        public void published(VirtQueue q, int usedIdx, long ringOffset, int bytes) {
            events.add("publish " + usedIdx + " at " + ringOffset + "+" + bytes);
        }
    }

    @AfterEach
    void close() {
        for (int fd : fds) Fd.closeQuietly(fd);
        arena.close();
    }

    SplitVirtQueue device(GuestMemory mem, Notifier n) {
        return new SplitVirtQueue(0, SIZE, mem, r0.asSlice(0, descTableBytes(SIZE)), r0.asSlice(0x1000, availBytes(SIZE)),
                r0.asSlice(0x2000, usedBytes(SIZE)), false, false, 0, n, 64);
    }

    /** A blk-shaped chain: 16 bytes readable, {@code dataLen} writable at {@code dataGpa}, 1 status byte writable. */
    int pushChain(long dataGpa, int dataLen, int slot) {
        driver.begin(3);
        driver.add(0x20000 + 32L * slot, 16, false);
        driver.add(dataGpa, dataLen, true);
        driver.add(0x20000 + 32L * slot + 16, 1, true);
        int head = driver.end();
        driver.publish();
        return head;
    }

    int eventFd() {
        int fd = EventFd.create(true);
        fds.add(fd);
        return fd;
    }

    /** Chains the handler took and has not completed (the test completes them later). */
    final List<Integer> held = new ArrayList<>();
    final VirtQueue.ChainHandler hold = (q, c) -> held.add(c.head());

    @Test
    void theInjectedNotifierIsCalledOnlyWhenTheDriverWantsIt() {
        CountingNotifier n = new CountingNotifier();
        SplitVirtQueue q = device(new GuestMemory(List.of(reg0)), n);
        for (int i = 0; i < 3; i++) pushChain(0x21000 + 0x1000L * i, 512, i);
        assertThat(q.poll((qq, c) -> qq.complete(c.head(), 1), 64)).isEqualTo(3);
        assertThat(q.flush()).isEqualTo(1);
        assertThat(n.signals).as("one call per published batch").isEqualTo(1);
        // VIRTQ_AVAIL_F_NO_INTERRUPT: the ring still publishes, the notifier is not called.
        driver.wantInterrupts(false);
        pushChain(0x24000, 512, 3);
        q.poll((qq, c) -> qq.complete(c.head(), 1), 64);
        assertThat(q.flush()).isZero();
        assertThat(n.signals).isEqualTo(1);
        assertThat(driver.usedIndex()).isEqualTo(4);
        assertThat(q.stats().calls()).isEqualTo(1);
        // Nothing new to publish: no call either.
        driver.wantInterrupts(true);
        assertThat(q.flush()).isZero();
        assertThat(n.signals).isEqualTo(1);
    }

    @Test
    void hooksSeeExactlyTheHeadsPoppedAndCompletedInOrder() {
        RecordingHooks h = new RecordingHooks();
        SplitVirtQueue q = device(new GuestMemory(List.of(reg0)), Notifier.NONE);
        q.hooks(h);
        int a = pushChain(0x21000, 4096, 0);
        int b = pushChain(0x22000, 512, 1);
        // A malformed chain (its buffer outside guest memory): popped, then returned with length 0.
        int bad = pushChain(0x7000_0000L, 512, 2);
        int c = pushChain(0x23000, 1024, 3);
        assertThat(q.poll(hold, 64)).isEqualTo(4);
        assertThat(held).containsExactly(a, b, c);
        // Completed out of order: c, a; then published; then b.
        q.complete(c, 1025);
        q.complete(a, 4097);
        q.flush();
        q.complete(b, 513);
        q.flush();
        long e = USED_ELEM_SIZE;
        assertThat(h.events).containsExactly(
                "pop " + a, "pop " + b, "pop " + bad, "complete " + bad + " len 0 at " + USED_RING + "+" + e, "pop " + c,
                "complete " + c + " len 1025 at " + (USED_RING + e) + "+" + e,
                "complete " + a + " len 4097 at " + (USED_RING + 2 * e) + "+" + e,
                "publish 3 at " + USED_IDX + "+2",
                "complete " + b + " len 513 at " + (USED_RING + 3 * e) + "+" + e,
                "publish 4 at " + USED_IDX + "+2");
        // The used entries are where the hook said.
        assertThat(driver.rawUsed(1)).isEqualTo(((long) c << 32) | 1025);
        // From the completion hook, a dirty logger finds each chain's device-writable buffers.
        assertThat(h.writable.stream().filter(w -> w[0] == c).map(w -> w[1] + "/" + w[2]).toList())
                .containsExactly((0x23000) + "/1024", (0x20000 + 32L * 3 + 16) + "/1");
        assertThat(h.writable.stream().filter(w -> w[0] == a).map(w -> w[1] + "/" + w[2]).toList())
                .containsExactly((0x21000) + "/4096", (0x20000 + 16) + "/1");
        // Detached: nothing more is seen.
        q.hooks(QueueHooks.NONE);
        pushChain(0x24000, 512, 4);
        q.poll((qq, ch) -> qq.complete(ch.head(), 1), 64);
        q.flush();
        assertThat(h.events).hasSize(10);
    }

    @Test
    void aCallFdSwappedWithRequestsInFlightLosesNothingAndTheNextCallGoesToTheNewFd() {
        int oldFd = eventFd();
        int newFd = eventFd();
        SplitVirtQueue q = device(new GuestMemory(List.of(reg0)), new EventFdNotifier(oldFd));
        int a = pushChain(0x21000, 512, 0);
        int b = pushChain(0x22000, 512, 1);
        q.poll(hold, 64);
        q.complete(a, 1);
        q.flush();
        assertThat(EventFd.drain(oldFd, scratch)).isEqualTo(1);
        // b is in flight; the front-end gives a new call fd (QEMU masking the interrupt).
        q.interrupts().notifier(new EventFdNotifier(newFd));
        int c = pushChain(0x23000, 512, 2);
        q.poll(hold, 64);
        q.complete(b, 1);
        q.complete(c, 1);
        q.flush();
        assertThat(EventFd.drain(newFd, scratch)).as("the next call goes to the new fd").isEqualTo(1);
        assertThat(EventFd.drain(oldFd, scratch)).as("and none to the old one").isZero();
        List<Integer> used = new ArrayList<>();
        driver.pollUsed((head, len) -> used.add(head));
        assertThat(used).as("no request lost").containsExactly(a, b, c);
        assertThat(q.inFlight()).isZero();
    }

    @Test
    void aCallHeldBackByCoalescingGoesToTheNewNotifier() {
        CountingNotifier first = new CountingNotifier();
        CountingNotifier second = new CountingNotifier();
        SplitVirtQueue q = device(new GuestMemory(List.of(reg0)), first);
        // 1 s base delay, threshold 100 IOPS (1 per 10 ms interval): 3 requests in the first
        // interval space calls 2 s apart, so the second call is held back.
        q.interrupts().coalescing(1_000_000, 100);
        for (int i = 0; i < 3; i++) pushChain(0x21000 + 0x1000L * i, 512, i);
        q.poll((qq, c) -> qq.complete(c.head(), 1), 64);
        assertThat(q.flush()).isEqualTo(1);
        pushChain(0x25000, 512, 5);
        q.poll((qq, c) -> qq.complete(c.head(), 1), 64);
        q.flush();
        assertThat(q.interrupts().deferred()).isTrue();
        q.interrupts().notifier(second);
        q.interrupts().coalescing(0, 1); // off: sends what was held back
        assertThat(first.signals).isEqualTo(1);
        assertThat(second.signals).isEqualTo(1);
    }

    @Test
    void memorySwappedUnderARunningQueueCountsTheChainsPoppedBefore() {
        SplitVirtQueue q = device(new GuestMemory(List.of(reg0, reg1)), Notifier.NONE);
        int inOld = pushChain(0x41000, 512, 0);      // data in region 1, which goes away
        int inKept = pushChain(0x21000, 512, 1);     // data in region 0, which stays
        q.poll(hold, 64);
        assertThat(held).containsExactly(inOld, inKept);
        // REM_MEM_REG of region 1 and ADD_MEM_REG of region 2, swapped between two polls.
        q.swapMemory(new GuestMemory(List.of(reg0, reg2)));
        assertThat(q.chainsBeforeSwap()).isEqualTo(2);
        // Chains popped after the swap walk through the new snapshot and are not counted.
        int inNew = pushChain(0x81000, 512, 2);
        int inGone = pushChain(0x41000, 512, 3);
        held.clear();
        q.poll(hold, 64);
        assertThat(held).as("the chain into the removed region is refused").containsExactly(inNew);
        assertThat(q.lastError()).isEqualTo(ChainError.ADDRESS_OUT_OF_RANGE);
        assertThat(q.chainsBeforeSwap()).isEqualTo(2);
        q.complete(inNew, 1);
        assertThat(q.chainsBeforeSwap()).isEqualTo(2);
        q.complete(inKept, 1);
        assertThat(q.chainsBeforeSwap()).isEqualTo(1);
        q.complete(inOld, 1);
        assertThat(q.chainsBeforeSwap()).as("grace period over: region 1 may be unmapped").isZero();
        q.flush();
        List<Integer> used = new ArrayList<>();
        driver.pollUsed((head, len) -> used.add(head));
        assertThat(used).containsExactly(inGone, inNew, inKept, inOld);
        assertThat(q.memory().regions()).containsExactly(reg0, reg2);
    }
}
