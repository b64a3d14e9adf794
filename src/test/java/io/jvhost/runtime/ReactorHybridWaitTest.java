package io.jvhost.runtime;

import io.jvhost.sys.EventFd;
import io.jvhost.sys.Fd;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

/**
 * The reactor's hybrid wait: with only block I/O in flight it sleeps at once when the channels
 * expect a long wait, keeps spinning when they expect a short one or nothing is in flight,
 * never sleeps while a pollable needs polling or refuses the sleep (and does not retry a refused
 * sleep on every idle loop), and a completion that lands while it is going to sleep still wakes
 * it. The spin phase is made endless so that only the hybrid wait can put the reactor to sleep;
 * nothing here depends on how fast anything runs.
 */
class ReactorHybridWaitTest {
    /** Spin "forever", then never yield: only the hybrid wait sleeps early. Threshold 50 µs. */
    static final IdleStrategy HYBRID_ONLY = new IdleStrategy(Long.MAX_VALUE / 4, 0, true, 50_000);

    final Reactor reactor = new Reactor(41, HYBRID_ONLY);
    final Arena arena = Arena.ofShared();
    final MemorySegment scratch = EventFd.scratch(arena);

    @AfterEach
    void close() {
        reactor.close();
        arena.close();
    }

    /** A queue with block I/O in flight, as the reactor sees it through {@link Pollable}. */
    final class FakeIo implements Pollable {
        /** The channel's completion eventfd, registered as a wake fd. */
        final int wakeFd = EventFd.create(true);
        volatile long waitNanos;
        /** prepareSleep refuses (a kick arrived: ring work pending). */
        volatile boolean ringWork;
        /** Work the next poll reports (then cleared). */
        final AtomicInteger work = new AtomicInteger();
        /** prepareSleep passes its checks, then a completion lands before the reactor is in epoll. */
        volatile boolean completeWhileGoingToSleep;
        volatile boolean completionReady;
        final AtomicInteger completionsDelivered = new AtomicInteger();
        final AtomicInteger prepareSleeps = new AtomicInteger();
        final AtomicLong drainedByWake = new AtomicLong();

        @Override
        public int poll() {
            int n = work.getAndSet(0);
            if (completionReady) {
                completionReady = false;
                completionsDelivered.incrementAndGet();
                n++;
            }
            return n;
        }

        @Override
        public long ioWaitNanos() {
            return waitNanos;
        }

        @Override
        public boolean prepareSleep() {
            prepareSleeps.incrementAndGet();
            if (ringWork) return false;
            if (completeWhileGoingToSleep) {
                completeWhileGoingToSleep = false;
                completionReady = true;
                EventFd.signal(wakeFd, scratch); // librbd's thread / the kernel, after our re-check
            }
            return true;
        }

        @Override
        public void afterWake() {
        }

        void close() {
            Fd.closeQuietly(wakeFd);
        }
    }

    private FakeIo add(long waitNanos) throws Exception {
        return add(new long[] {waitNanos})[0];
    }

    /** Adds one pollable per wait, in one command (so the reactor never sees only some of them). */
    private FakeIo[] add(long... waitNanos) throws Exception {
        FakeIo[] ios = new FakeIo[waitNanos.length];
        for (int i = 0; i < ios.length; i++) {
            ios[i] = new FakeIo();
            ios[i].waitNanos = waitNanos[i];
        }
        reactor.runAndWait(() -> {
            for (FakeIo io : ios) {
                reactor.add(io);
                reactor.addWakeFd(io.wakeFd, io.drainedByWake::addAndGet);
            }
        }, 5);
        return ios;
    }

    /** Lets the reactor run {@code loops} more idle iterations (its own count; no clock involved). */
    private void idleLoops(long loops) {
        long from = reactor.stats().idleLoops();
        await().until(() -> reactor.stats().idleLoops() >= from + loops);
    }

    @Test
    void sleepsAtOnceWhenTheExpectedWaitIsLong() throws Exception {
        FakeIo io = add(2_000_000); // an RBD write: ~2 ms
        await().until(() -> reactor.hybridSleeps() >= 1);
        assertThat(reactor.stats().sleeps()).isGreaterThanOrEqualTo(1);
        io.close();
    }

    @Test
    void spinsWhenTheExpectedWaitIsShort() throws Exception {
        FakeIo io = add(10_000); // a page-cache hit: 10 µs, below the 50 µs threshold
        idleLoops(200_000);
        assertThat(reactor.stats().sleeps()).isZero();
        assertThat(reactor.hybridSleeps()).isZero();
        assertThat(io.prepareSleeps.get()).isZero();
        io.close();
    }

    @Test
    void nothingInFlightKeepsTheUsualSpinForTheNextKick() throws Exception {
        FakeIo io = add(Pollable.NO_IO_WAIT);
        idleLoops(200_000);
        assertThat(reactor.stats().sleeps()).isZero();
        io.close();
    }

    @Test
    void theShortestWaitDecides() throws Exception {
        FakeIo[] both = add(5_000_000, 20_000); // a fast disk on the same reactor: spin for it
        FakeIo slow = both[0], fast = both[1];
        idleLoops(200_000);
        assertThat(reactor.stats().sleeps()).isZero();
        fast.waitNanos = Pollable.NO_IO_WAIT; // its I/O completed: only the slow one is left
        await().until(() -> reactor.hybridSleeps() >= 1);
        slow.close();
        fast.close();
    }

    @Test
    void aPollableThatMustBePolledKeepsTheReactorAwake() throws Exception {
        FakeIo[] both = add(3_000_000, Pollable.MUST_POLL); // the second: e.g. a request waiting on a retry list
        FakeIo rbd = both[0], inline = both[1];
        idleLoops(200_000);
        assertThat(reactor.stats().sleeps()).isZero();
        assertThat(rbd.prepareSleeps.get()).isZero();
        inline.waitNanos = Pollable.NO_IO_WAIT;
        await().until(() -> reactor.hybridSleeps() >= 1);
        rbd.close();
        inline.close();
    }

    @Test
    void neverSleepsWithRingWorkPendingAndDoesNotRetryOnEveryLoop() throws Exception {
        FakeIo io = new FakeIo();
        io.waitNanos = 3_000_000;
        io.ringWork = true;
        reactor.runAndWait(() -> {
            reactor.add(io);
            reactor.addWakeFd(io.wakeFd, io.drainedByWake::addAndGet);
        }, 5);
        idleLoops(200_000);
        assertThat(reactor.stats().sleeps()).isZero();
        // Asked once after the last work, refused, not asked again until something happens.
        assertThat(io.prepareSleeps.get()).isEqualTo(1);
        io.ringWork = false;
        io.work.set(1); // the ring work gets done
        await().until(() -> reactor.hybridSleeps() >= 1);
        assertThat(io.prepareSleeps.get()).isGreaterThanOrEqualTo(2);
        io.close();
    }

    /** The nap mode (Linux's hybrid polling): a timed sleep of half the expected wait, then poll. */
    @Test
    void aTimedNapIsTakenOncePerWaitThenTheReactorPolls() throws Exception {
        try (Reactor napper = new Reactor(42, new IdleStrategy(Long.MAX_VALUE / 4, 0, true, 50_000, 50))) {
            FakeIo io = new FakeIo();
            io.waitNanos = 2_000_000; // nap 1 ms; no completion comes, so the nap ends by its timer
            napper.runAndWait(() -> {
                napper.add(io);
                napper.addWakeFd(io.wakeFd, io.drainedByWake::addAndGet);
            }, 5);
            await().until(() -> napper.hybridSleeps() == 1);
            long from = napper.stats().idleLoops();
            await().until(() -> napper.stats().idleLoops() >= from + 200_000);
            // Still waiting for the same completion: polled, not napped again.
            assertThat(napper.hybridSleeps()).isEqualTo(1);
            assertThat(napper.stats().sleeps()).isEqualTo(1);
            io.completionReady = true; // the completion: work, so the next wait may nap again
            await().until(() -> napper.hybridSleeps() == 2);
            assertThat(io.completionsDelivered.get()).isEqualTo(1);
            io.close();
        }
    }

    @Test
    void aCompletionLandingWhileGoingToNapEndsTheNap() throws Exception {
        try (Reactor napper = new Reactor(43, new IdleStrategy(Long.MAX_VALUE / 4, 0, true, 50_000, 50))) {
            FakeIo io = new FakeIo();
            io.waitNanos = 60_000_000_000L; // a nap of 30 s: only the eventfd can end it within the test
            io.completeWhileGoingToSleep = true;
            napper.runAndWait(() -> {
                napper.add(io);
                napper.addWakeFd(io.wakeFd, io.drainedByWake::addAndGet);
            }, 5);
            await().until(() -> io.completionsDelivered.get() == 1);
            assertThat(io.drainedByWake.get()).isEqualTo(1);
            io.close();
        }
    }

    @Test
    void aCompletionLandingWhileGoingToSleepWakesTheReactor() throws Exception {
        FakeIo io = new FakeIo();
        io.waitNanos = 3_000_000;
        io.completeWhileGoingToSleep = true;
        reactor.runAndWait(() -> {
            reactor.add(io);
            reactor.addWakeFd(io.wakeFd, io.drainedByWake::addAndGet);
        }, 5);
        await().until(() -> io.completionsDelivered.get() == 1);
        // The wake came from the channel's eventfd (drained by the reactor when epoll reported
        // it), not from epoll's timeout: the signal between the re-check and the sleep was kept.
        await().until(() -> io.drainedByWake.get() == 1);
        assertThat(reactor.hybridSleeps()).isGreaterThanOrEqualTo(1);
        io.close();
    }
}
