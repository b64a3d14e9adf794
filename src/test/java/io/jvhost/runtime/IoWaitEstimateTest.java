package io.jvhost.runtime;

import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;

/** The channel's wait estimate, on a clock the test moves by hand. */
class IoWaitEstimateTest {
    final LoopClock clock = LoopClock.ticking();
    final IoWaitEstimate est = new IoWaitEstimate(clock);

    /** One wait: a poll finds nothing with I/O in flight at {@code from}, the next completion is found at {@code to}. */
    private void waitFor(long from, long to) {
        clock.tick(from);
        est.polled(0, 1);
        clock.tick((from + to) / 2);
        est.polled(0, 1); // still waiting: the wait keeps its start
        clock.tick(to);
        est.polled(1, 0);
    }

    @Test
    void noEstimateBeforeTheFirstWait() {
        assertThat(est.expectedNanos()).isZero();
        clock.tick(1_000);
        est.polled(1, 0); // a completion found without a wait first: nothing to learn
        assertThat(est.expectedNanos()).isZero();
        assertThat(est.samples()).isZero();
    }

    @Test
    void theFirstWaitIsTheEstimateThenItMovesAnEighthPerWait() {
        waitFor(1_000_000, 1_400_000); // 400 µs (an RBD write)
        assertThat(est.expectedNanos()).isEqualTo(400_000);
        waitFor(2_000_000, 2_080_000); // 80 µs
        assertThat(est.expectedNanos()).isEqualTo(400_000 - (400_000 - 80_000) / 8);
    }

    @Test
    void followsAChangeOfDevice() {
        waitFor(1_000, 2_001_000); // 2 ms
        long t = 10_000_000;
        for (int i = 0; i < 60; i++, t += 1_000_000) waitFor(t, t + 20_000); // then 20 µs each
        assertThat(est.expectedNanos()).isBetween(20_000L, 25_000L);
    }

    @Test
    void theEstimateIsOfferedOnlyWithEnoughRequestsInFlight() {
        waitFor(1_000_000, 1_300_000);
        assertThat(est.expectedNanos(IoWaitEstimate.MIN_IN_FLIGHT)).isEqualTo(300_000);
        assertThat(est.expectedNanos(IoWaitEstimate.MIN_IN_FLIGHT - 1)).as("below the minimum: no opinion").isZero();
    }

    @Test
    void idleTimeWithNothingInFlightIsNotAWait() {
        clock.tick(1_000);
        est.polled(0, 0); // nothing in flight: the reactor waits for the guest, not the device
        clock.tick(5_000_000);
        est.polled(0, 1); // submitted: the wait starts here
        clock.tick(5_100_000);
        est.polled(1, 0);
        assertThat(est.expectedNanos()).isEqualTo(100_000);
    }

    @Test
    void aWaitEndsWhenTheLastRequestLeavesWithoutAnotherPoll() {
        clock.tick(1_000);
        est.polled(0, 1);
        clock.tick(2_000);
        est.polled(0, 0); // in flight went to 0 (abandoned on close): no sample, wait forgotten
        clock.tick(9_000_000);
        est.polled(1, 0);
        assertThat(est.samples()).isZero();
    }
}
