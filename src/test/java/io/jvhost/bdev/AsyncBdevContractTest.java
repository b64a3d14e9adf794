package io.jvhost.bdev;

import io.jvhost.runtime.IdleStrategy;
import io.jvhost.runtime.Pollable;
import io.jvhost.runtime.Reactor;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

/**
 * The asynchronous bdev contract on a real reactor: 0 from submit means exactly one completion
 * later, on the submitting reactor thread, from the channel's poll; a channel completing on a
 * foreign thread wakes a sleeping reactor through its wake fd; a slow file request does not
 * hold up other work on the same reactor. Slowness is made deterministic by an engine whose
 * worker blocks until the test releases it.
 */
class AsyncBdevContractTest {
    @TempDir
    Path dir;

    private final Arena arena = Arena.ofShared();
    private Reactor reactor;
    private FileBlockDevice file;
    private final CountDownLatch gate = new CountDownLatch(1);
    /** Requests at this device offset wait in the worker until {@link #gate} opens. */
    private static final long SLOW_OFFSET = 8192;

    @AfterEach
    void tearDown() {
        gate.countDown();
        if (reactor != null) reactor.close();
        if (file != null) file.close();
        arena.close();
    }

    private FileBlockDevice gatedFile() throws Exception {
        Path f = dir.resolve("disk.img");
        Files.write(f, new byte[1 << 20]);
        return new FileBlockDevice("F", f.toString(), 512, false, null, (name, ops) -> new ThreadPoolFileIoEngine(name, (r, s) -> {
            if (r.offset == SLOW_OFFSET) {
                try {
                    gate.await();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
            return ops.execute(r, s);
        }, 2, 64));
    }

    /** Polls one channel; lets the reactor sleep when the channel has a wake fd registered. */
    private static final class ChannelPoller implements Pollable {
        final BlockChannel channel;

        ChannelPoller(BlockChannel channel) {
            this.channel = channel;
        }

        @Override public int poll() { return channel.poll(); }
        @Override public boolean prepareSleep() { return channel.inFlight() == 0 || channel.wakeFd() >= 0; }
        @Override public void afterWake() {}
    }

    private BlockRequest request(BlockRequest.Op op, long offset, int len, BlockRequest.Completion c) {
        BlockRequest r = new BlockRequest(4);
        r.completion(c);
        r.reset(op, offset);
        if (len > 0) r.addBuffer(arena.allocate(len, 4096), 0, len);
        return r;
    }

    @Test
    void zeroFromSubmitMeansExactlyOneCompletionOnTheSubmittingReactor() throws Exception {
        file = gatedFile();
        reactor = new Reactor(0, IdleStrategy.BUSY);
        int n = 60; // within the engine's queue depth (64): all accepted
        AtomicInteger[] completions = new AtomicInteger[n];
        ConcurrentLinkedQueue<String> wrongThread = new ConcurrentLinkedQueue<>();
        AtomicBoolean insideSubmit = new AtomicBoolean();
        AtomicInteger failures = new AtomicInteger();
        BlockRequest[] reqs = new BlockRequest[n];
        for (int i = 0; i < n; i++) {
            int k = i;
            completions[i] = new AtomicInteger();
            reqs[i] = request(i % 2 == 0 ? BlockRequest.Op.WRITE : BlockRequest.Op.READ, 4096L * (i % 2), 4096, (r, st) -> {
                if (!reactor.onReactorThread()) wrongThread.add(Thread.currentThread().getName());
                if (insideSubmit.get()) wrongThread.add("completed inside submit");
                if (st != 0) failures.incrementAndGet();
                completions[k].incrementAndGet();
            });
        }
        reactor.call(() -> {
            ChannelPoller p = new ChannelPoller(file.openChannel());
            reactor.add(p);
            for (BlockRequest r : reqs) {
                insideSubmit.set(true);
                int rc = p.channel.submit(r);
                insideSubmit.set(false);
                assertThat(rc).isZero();
            }
            return null;
        }).get(10, TimeUnit.SECONDS);
        await().atMost(Duration.ofSeconds(30)).until(() -> {
            for (AtomicInteger c : completions) if (c.get() == 0) return false;
            return true;
        });
        // Give any duplicate a chance to show up: a round trip through the reactor polls again.
        for (int i = 0; i < 3; i++) reactor.call(() -> null).get(10, TimeUnit.SECONDS);
        assertThat(wrongThread).isEmpty();
        assertThat(failures.get()).isZero();
        for (AtomicInteger c : completions) assertThat(c.get()).as("completions of one request").isEqualTo(1);
    }

    @Test
    void aCompletionFromAWorkerWakesASleepingReactor() throws Exception {
        file = gatedFile();
        reactor = new Reactor(0, new IdleStrategy(0, 0, true));
        AtomicLong wakeSignals = new AtomicLong();
        AtomicLong signalsSeenAtCompletion = new AtomicLong(-1);
        AtomicBoolean onReactor = new AtomicBoolean();
        AtomicInteger status = new AtomicInteger(1);
        BlockRequest slow = request(BlockRequest.Op.READ, SLOW_OFFSET, 4096, (r, st) -> {
            onReactor.set(reactor.onReactorThread());
            signalsSeenAtCompletion.set(wakeSignals.get());
            status.set(st);
        });
        reactor.call(() -> {
            ChannelPoller p = new ChannelPoller(file.openChannel());
            assertThat(p.channel.wakeFd()).isNotNegative();
            reactor.addWakeFd(p.channel.wakeFd(), wakeSignals::addAndGet);
            reactor.add(p);
            assertThat(p.channel.submit(slow)).isZero();
            return null;
        }).get(10, TimeUnit.SECONDS);
        long sleepsAtSubmit = reactor.stats().sleeps();
        // The reactor goes to sleep although a request is in flight (it is held in the worker).
        await().atMost(Duration.ofSeconds(30)).until(() -> reactor.stats().sleeps() > sleepsAtSubmit + 1);
        assertThat(status.get()).as("not completed while held").isEqualTo(1);
        gate.countDown();
        await().atMost(Duration.ofSeconds(30)).until(() -> status.get() != 1);
        assertThat(status.get()).isZero();
        assertThat(onReactor).isTrue();
        assertThat(signalsSeenAtCompletion.get()).as("the reactor was woken by the channel's eventfd").isPositive();
    }

    @Test
    void aSlowFileRequestDoesNotHoldUpOtherWorkOnTheReactor() throws Exception {
        file = gatedFile();
        reactor = new Reactor(0, IdleStrategy.BUSY);
        NullBlockDevice nul = new NullBlockDevice("N", 2048, 512, null);
        AtomicInteger slowStatus = new AtomicInteger(1);
        AtomicLong bystanderDone = new AtomicLong();
        BlockRequest slow = request(BlockRequest.Op.WRITE, SLOW_OFFSET, 4096, (r, st) -> slowStatus.set(st));
        BlockRequest[] fileRef = new BlockRequest[1];
        // The bystander keeps one request in flight on a null channel, resubmitting on each completion.
        BlockChannel[] nulCh = new BlockChannel[1];
        BlockRequest by = request(BlockRequest.Op.READ, 0, 512, (r, st) -> {
            bystanderDone.incrementAndGet();
            r.reset(BlockRequest.Op.READ, 0);
            r.addBuffer(arena.allocate(512), 0, 512);
            nulCh[0].submit(r);
        });
        ChannelPoller[] fileP = new ChannelPoller[1];
        reactor.call(() -> {
            fileP[0] = new ChannelPoller(file.openChannel());
            nulCh[0] = nul.openChannel();
            reactor.add(fileP[0]);
            reactor.add(new ChannelPoller(nulCh[0]));
            assertThat(fileP[0].channel.submit(slow)).isZero();
            assertThat(nulCh[0].submit(by)).isZero();
            fileRef[0] = slow;
            return null;
        }).get(10, TimeUnit.SECONDS);
        await().atMost(Duration.ofSeconds(30)).until(() -> bystanderDone.get() >= 10_000);
        assertThat(slowStatus.get()).as("the file request is still held").isEqualTo(1);
        assertThat(reactor.call(() -> fileP[0].channel.inFlight()).get(10, TimeUnit.SECONDS)).isEqualTo(1);
        gate.countDown();
        await().atMost(Duration.ofSeconds(30)).until(() -> slowStatus.get() != 1);
        assertThat(slowStatus.get()).isZero();
        assertThat(reactor.call(() -> fileP[0].channel.inFlight()).get(10, TimeUnit.SECONDS)).isZero();
    }

    @Test
    void aFullEngineAnswersEagainAndAcceptsAgainOnceRequestsComplete() throws Exception {
        Path f = dir.resolve("small.img");
        Files.write(f, new byte[1 << 20]);
        file = new FileBlockDevice("S", f.toString(), 512, false, null, (name, ops) -> new ThreadPoolFileIoEngine(name, (r, s) -> {
            try {
                gate.await();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            return ops.execute(r, s);
        }, 1, 4));
        BlockChannel ch = file.openChannel();
        AtomicInteger done = new AtomicInteger();
        BlockRequest[] rs = new BlockRequest[5];
        for (int i = 0; i < rs.length; i++) rs[i] = request(BlockRequest.Op.READ, 0, 512, (r, st) -> done.incrementAndGet());
        for (int i = 0; i < 4; i++) assertThat(ch.submit(rs[i])).isZero();
        assertThat(ch.submit(rs[4])).as("no room: retry later").isEqualTo(-io.jvhost.sys.Errno.EAGAIN);
        assertThat(ch.inFlight()).isEqualTo(4);
        gate.countDown();
        await().pollInSameThread().pollInterval(Duration.ofMillis(1)).atMost(Duration.ofSeconds(30)).until(() -> {
            ch.poll();
            return done.get() == 4;
        });
        assertThat(ch.submit(rs[4])).isZero();
        await().pollInSameThread().pollInterval(Duration.ofMillis(1)).atMost(Duration.ofSeconds(30)).until(() -> {
            ch.poll();
            return done.get() == 5;
        });
        ch.close();
    }
}
