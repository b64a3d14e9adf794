package io.jvhost.runtime;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

/**
 * The reactor's loop survives whatever a pollable or a command throws, tells the right
 * pollable, keeps serving the others and keeps sleeping when idle.
 */
class ReactorTest {
    Reactor reactor = new Reactor(7, IdleStrategy.BACKOFF);

    @AfterEach
    void close() {
        reactor.close();
    }

    /** Counts its polls; throws from the method named in {@code failIn} while {@code armed}. */
    static class Probe implements Pollable {
        final AtomicLong polls = new AtomicLong();
        final AtomicReference<Throwable> told = new AtomicReference<>();
        final AtomicInteger errors = new AtomicInteger();
        volatile String failIn = "";
        volatile Throwable toThrow = new IllegalStateException("boom");
        volatile boolean ownsVanishedMemory;

        void maybeThrow(String where) {
            if (failIn.equals(where)) {
                Throwable t = toThrow;
                if (t instanceof RuntimeException r) throw r;
                throw (Error) t;
            }
        }

        @Override
        public int poll() {
            polls.incrementAndGet();
            maybeThrow("poll");
            return 0;
        }

        @Override
        public boolean prepareSleep() {
            maybeThrow("prepareSleep");
            return true;
        }

        @Override
        public void afterWake() {
            maybeThrow("afterWake");
        }

        @Override
        public void onError(Throwable error) {
            told.set(error);
            errors.incrementAndGet();
            failIn = ""; // a well-behaved pollable stops doing what failed
        }

        @Override
        public boolean onMemoryFault(Throwable fault) {
            if (!ownsVanishedMemory) return false;
            onError(fault);
            return true;
        }
    }

    private Probe add(Probe p) throws Exception {
        reactor.runAndWait(() -> reactor.add(p), 5);
        return p;
    }

    private void bystanderKeepsRunning(Probe bystander) {
        long polls = bystander.polls.get();
        await().atMost(Duration.ofSeconds(5)).until(() -> bystander.polls.get() > polls);
    }

    private void reactorSleepsAgain() {
        long sleeps = reactor.stats().sleeps();
        await().atMost(Duration.ofSeconds(10)).until(() -> reactor.stats().sleeps() >= sleeps + 2);
    }

    private void throwingPollableIsToldAndTheLoopGoesOn(String where) throws Exception {
        Probe bystander = add(new Probe());
        Probe bad = add(new Probe());
        bad.failIn = where;
        await().atMost(Duration.ofSeconds(10)).until(() -> bad.told.get() != null);
        assertThat(bad.told.get()).hasMessage("boom");
        assertThat(bad.errors.get()).isEqualTo(1);
        assertThat(bystander.told.get()).isNull();
        bystanderKeepsRunning(bystander);
        reactorSleepsAgain();
        assertThat(reactor.stats().dead()).isFalse();
        assertThat(reactor.stats().errors()).isEqualTo(1);
        assertThat(reactor.stats().pollables()).isEqualTo(2);
        assertThat(reactor.call(() -> 42).get(5, TimeUnit.SECONDS)).isEqualTo(42);
    }

    @Test
    void pollThatThrowsDoesNotKillTheLoop() throws Exception {
        throwingPollableIsToldAndTheLoopGoesOn("poll");
    }

    @Test
    void prepareSleepThatThrowsDoesNotKillTheLoop() throws Exception {
        throwingPollableIsToldAndTheLoopGoesOn("prepareSleep");
    }

    @Test
    void afterWakeThatThrowsDoesNotKillTheLoop() throws Exception {
        throwingPollableIsToldAndTheLoopGoesOn("afterWake");
    }

    @Test
    void aPollableThatKeepsThrowingIsRemoved() throws Exception {
        Probe bystander = add(new Probe());
        Probe bad = new Probe() {
            @Override
            public void onError(Throwable error) {
                told.set(error);
                errors.incrementAndGet(); // but keeps failing
            }
        };
        add(bad);
        bad.failIn = "poll";
        await().atMost(Duration.ofSeconds(10)).until(() -> reactor.stats().pollables() == 1);
        assertThat(bad.errors.get()).isEqualTo(1);
        long polls = bad.polls.get();
        bystanderKeepsRunning(bystander);
        assertThat(bad.polls.get()).isEqualTo(polls);
        reactorSleepsAgain();
    }

    @Test
    void aMemoryFaultGoesToThePollableWhoseMemoryVanishedNotToTheOneRunning() throws Exception {
        // Compiled code reports SIGBUS late, possibly while another pollable runs.
        Probe owner = add(new Probe());
        Probe running = add(new Probe());
        owner.ownsVanishedMemory = true;
        running.toThrow = new InternalError("a fault occurred in an unsafe memory access operation");
        running.failIn = "poll";
        await().atMost(Duration.ofSeconds(10)).until(() -> owner.told.get() != null);
        assertThat(owner.told.get()).isInstanceOf(InternalError.class);
        assertThat(running.told.get()).isNull();
        running.failIn = "";
        bystanderKeepsRunning(running);
        assertThat(reactor.stats().pollables()).isEqualTo(2);
    }

    @Test
    void anUnclaimedMemoryFaultGoesToThePollableThatRan() throws Exception {
        Probe other = add(new Probe());
        Probe running = add(new Probe());
        running.toThrow = new InternalError("a fault occurred in an unsafe memory access operation");
        running.failIn = "prepareSleep";
        await().atMost(Duration.ofSeconds(10)).until(() -> running.told.get() != null);
        assertThat(other.told.get()).isNull();
        reactorSleepsAgain();
    }

    @Test
    void aMemoryFaultInACommandReachesTheOwnerAndTheCaller() throws Exception {
        Probe owner = add(new Probe());
        owner.ownsVanishedMemory = true;
        var f = reactor.call(() -> {
            throw new InternalError("a fault occurred in an unsafe memory access operation");
        });
        assertThatThrownBy(() -> f.get(5, TimeUnit.SECONDS)).isInstanceOf(ExecutionException.class).hasCauseInstanceOf(InternalError.class);
        await().atMost(Duration.ofSeconds(5)).until(() -> owner.told.get() != null);
        assertThat(reactor.call(() -> 1).get(5, TimeUnit.SECONDS)).isEqualTo(1);
    }

    @Test
    void aCommandThatThrowsFailsOnlyItsFuture() throws Exception {
        var f = reactor.call(() -> {
            throw new StackOverflowError("deep");
        });
        assertThatThrownBy(() -> f.get(5, TimeUnit.SECONDS)).hasCauseInstanceOf(StackOverflowError.class);
        assertThat(reactor.call(() -> "alive").get(5, TimeUnit.SECONDS)).isEqualTo("alive");
        assertThat(reactor.stats().dead()).isFalse();
    }

    @Test
    void aPollableWhoseErrorHandlingThrowsIsRemoved() throws Exception {
        Probe bystander = add(new Probe());
        Probe bad = new Probe() {
            @Override
            public void onError(Throwable error) {
                throw new IllegalStateException("even error handling fails");
            }
        };
        add(bad);
        bad.failIn = "poll";
        await().atMost(Duration.ofSeconds(10)).until(() -> reactor.stats().pollables() == 1);
        assertThat(reactor.stats().dead()).isFalse();
        bystanderKeepsRunning(bystander);
    }

    @Test
    void aDeadReactorSaysSoAndCallsFailAtOnce() throws Exception {
        add(new Probe());
        reactor.crashForTest(new Error("simulated escape from the loop"));
        await().atMost(Duration.ofSeconds(10)).until(() -> reactor.stats().dead());
        assertThat(reactor.isDead()).isTrue();
        assertThat(reactor.stats().deathReason()).contains("simulated escape");
        // no 30 s timeout: the call fails at once
        var f = reactor.call(() -> 1);
        assertThat(f).isCompletedExceptionally();
        assertThatThrownBy(() -> reactor.runAndWait(() -> { }, 30)).isInstanceOf(ExecutionException.class)
                .hasMessageContaining("dead");
        await().atMost(Duration.ofSeconds(5)).until(() -> reactor.isTerminated());
    }

    @Test
    void aClosedReactorFailsCallsAtOnce() throws Exception {
        reactor.close();
        assertThat(reactor.isStopped()).isTrue();
        var f = reactor.call(() -> 1);
        assertThat(f).isCompletedExceptionally();
        assertThatThrownBy(() -> reactor.runAndWait(() -> { }, 30)).isInstanceOf(ExecutionException.class)
                .hasMessageContaining("stopped");
    }
}
