package io.jvhost.bdev;

import io.jvhost.runtime.LoopClock;
import io.jvhost.sys.EventFd;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayDeque;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * An asynchronous channel learns how long its owner waits for a completion from the owner's
 * loop clock (moved by hand here), and the statistics wrapper every bdev puts around its
 * channels passes the estimate on (without it the reactor never saw one: found by a bench run
 * whose hybrid sleeps stayed at 0).
 */
class ChannelWaitEstimateTest {
    final Arena arena = Arena.ofShared();
    final MemorySegment scratch = EventFd.scratch(arena);
    final LoopClock clock = LoopClock.ticking();

    /** Holds started requests until the test delivers them, as librbd's threads would. */
    static final class HeldChannel extends AsyncBlockChannel {
        final ArrayDeque<BlockRequest> started = new ArrayDeque<>();

        HeldChannel() {
            super(1 << 20, 8);
        }

        @Override
        protected boolean start(BlockRequest r) {
            started.add(r);
            return true;
        }
    }

    @AfterEach
    void tearDown() {
        LoopClock.bind(LoopClock.SYSTEM);
        arena.close();
    }

    private BlockRequest request() {
        BlockRequest r = new BlockRequest(1);
        r.completion((req, st) -> {});
        r.reset(BlockRequest.Op.READ, 0);
        r.addBuffer(arena.allocate(4096, 4096), 0, 4096);
        return r;
    }

    @Test
    void theWaitFromTheFirstEmptyPollToTheCompletionIsTheEstimate() {
        LoopClock.bind(clock); // the channel is opened on its reactor thread
        clock.tick(1_000_000);
        HeldChannel ch = new HeldChannel();
        BlockChannel wrapped = new BdevIoStats("est-test").wrap(ch);
        try {
            assertThat(wrapped.expectedWaitNanos()).isZero();
            BlockRequest r = request();
            assertThat(wrapped.submit(r)).isZero();
            assertThat(wrapped.poll()).isZero(); // nothing yet: the wait starts at 1.0 ms
            clock.tick(1_200_000);
            assertThat(wrapped.poll()).isZero();
            clock.tick(1_500_000);
            AsyncBlockChannel.deliver(ch.started.poll(), 0, scratch);
            assertThat(wrapped.poll()).isEqualTo(1);
            assertThat(ch.waitEstimate().expectedNanos()).isEqualTo(500_000);
            assertThat(ch.waitEstimate().samples()).isEqualTo(1);
            // Offered to the reactor only while requests are out: nothing in flight, no opinion.
            assertThat(wrapped.expectedWaitNanos()).isZero();
            assertThat(wrapped.submit(request())).isZero();
            assertThat(wrapped.expectedWaitNanos()).isEqualTo(500_000);
        } finally {
            wrapped.close();
        }
    }
}
