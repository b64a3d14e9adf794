package io.jvhost.runtime;

import org.junit.jupiter.api.Test;

import java.util.concurrent.FutureTask;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class LoopClockTest {
    @Test
    void aTickingClockMovesOnlyWhenTicked() {
        LoopClock c = LoopClock.ticking();
        c.tick(42);
        assertThat(c.now()).isEqualTo(42);
        assertThat(c.now()).isEqualTo(42);
        long t = c.tick();
        assertThat(t).isGreaterThan(42);
        assertThat(c.now()).isEqualTo(t);
    }

    @Test
    void theSystemClockReadsTheClockAndCannotBeTicked() {
        long before = System.nanoTime();
        assertThat(LoopClock.SYSTEM.now()).isGreaterThanOrEqualTo(before);
        assertThatThrownBy(() -> LoopClock.SYSTEM.tick(1)).isInstanceOf(IllegalStateException.class);
        long t = LoopClock.SYSTEM.tick();
        assertThat(LoopClock.SYSTEM.now()).isGreaterThanOrEqualTo(t);
    }

    @Test
    void aThreadWithoutALoopGetsTheSystemClockAndBindingIsPerThread() throws Exception {
        LoopClock mine = LoopClock.ticking();
        FutureTask<LoopClock[]> task = new FutureTask<>(() -> {
            LoopClock first = LoopClock.current();
            LoopClock.bind(mine);
            return new LoopClock[] {first, LoopClock.current()};
        });
        new Thread(task).start();
        LoopClock[] seen = task.get(30, TimeUnit.SECONDS);
        assertThat(seen[0]).isSameAs(LoopClock.SYSTEM);
        assertThat(seen[1]).isSameAs(mine);
        assertThat(LoopClock.current()).isSameAs(LoopClock.SYSTEM);
    }

    @Test
    void aReactorBindsAndTicksItsClockOnItsThread() throws Exception {
        try (Reactor r = new Reactor(97, IdleStrategy.BUSY)) {
            assertThat(r.call(LoopClock::current).get(30, TimeUnit.SECONDS)).isSameAs(r.clock());
            long a = r.call(() -> r.clock().now()).get(30, TimeUnit.SECONDS);
            // Commands queued while the reactor runs commands run in the same iteration (same
            // tick); a later iteration must see a later tick.
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
            long b = a;
            while (b == a && System.nanoTime() < deadline) {
                Thread.onSpinWait();
                b = r.call(() -> r.clock().now()).get(30, TimeUnit.SECONDS);
            }
            assertThat(b).isGreaterThan(a);
        }
    }
}
