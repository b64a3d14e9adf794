package io.jvhost.vhost;

import io.jvhost.bdev.MallocBlockDevice;
import io.jvhost.initiator.BlkInitiator;
import io.jvhost.runtime.IdleStrategy;
import io.jvhost.runtime.Reactor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.lang.management.ManagementFactory;
import java.nio.file.Path;
import java.time.Duration;

import static io.jvhost.virtio.BlkLayout.S_OK;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

/**
 * An idle target sleeps on the kick eventfds instead of spinning, and the first kick after the
 * sleep wakes it (notifications were re-enabled and the ring re-checked before sleeping).
 */
class IdleReactorTest {
    @TempDir
    Path dir;

    @Test
    void idleReactorSleepsAndWakesOnTheNextKick() throws Exception {
        var mx = ManagementFactory.getThreadMXBean();
        try (VhostTarget target = new VhostTarget(dir, 1, IdleStrategy.BACKOFF)) {
            target.bdevs().register(new MallocBlockDevice("M", 2048, 512, null));
            target.createBlkController("v", "M", false, 1, null);
            Reactor reactor = target.reactors()[0];
            Thread thread = Thread.getAllStackTraces().keySet().stream().filter(t -> t.getName().equals("reactor-0")).findFirst().orElseThrow();
            try (BlkInitiator ini = BlkInitiator.connect(dir.resolve("v").toString(), 1, 64, 1 << 20)) {
                byte written = 0x3c;
                ini.data().fill(written);
                for (int i = 0; i < 100; i++) assertThat(ini.write(0, i, 512)).isEqualTo(S_OK);
                // Idle: past the spin and yield phases the reactor goes to sleep, and keeps
                // sleeping (each sleep ends by its 1 s timeout and the next one starts).
                long sleepsAfterIo = reactor.stats().sleeps();
                await().atMost(Duration.ofSeconds(10)).until(() -> reactor.stats().sleeps() > sleepsAfterIo);
                long sleepsBefore = reactor.stats().sleeps();
                long busyBefore = reactor.stats().busyLoops();
                long cpuBefore = mx.getThreadCpuTime(thread.threadId());
                await().atMost(Duration.ofSeconds(10)).until(() -> reactor.stats().sleeps() >= sleepsBefore + 2);
                long cpu = mx.getThreadCpuTime(thread.threadId()) - cpuBefore;
                // A spinning reactor burns ~1 s of CPU per second; a sleeping one almost none.
                assertThat(cpu).as("reactor CPU ns over >= 1 s idle").isLessThan(200_000_000L);
                assertThat(reactor.stats().busyLoops()).as("no work was found while idle").isEqualTo(busyBefore);
                long wakeupsBefore = reactor.stats().wakeups();
                // the guest's next request kicks the sleeping reactor awake and completes with the data
                ini.data().fill((byte) 0);
                assertThat(ini.read(0, 99, 512)).isEqualTo(S_OK);
                assertThat(ini.data().get(java.lang.foreign.ValueLayout.JAVA_BYTE, 0)).isEqualTo(written);
                assertThat(reactor.stats().wakeups()).isGreaterThan(wakeupsBefore);
                // that kick is counted on the queue
                assertThat(target.controller("v").session().runningQueues().get(0).stats().kicks()).isPositive();
            }
        }
    }
}
