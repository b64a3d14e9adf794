package io.jvhost.target;

import io.jvhost.bdev.MallocBlockDevice;
import io.jvhost.initiator.BlkInitiator;
import io.jvhost.runtime.IdleStrategy;
import io.jvhost.runtime.Reactor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.lang.management.ManagementFactory;
import java.nio.file.Path;

import static io.jvhost.virtio.BlkLayout.S_OK;
import static org.assertj.core.api.Assertions.assertThat;

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
                for (int i = 0; i < 100; i++) assertThat(ini.write(0, i, 512)).isEqualTo(S_OK);
                Thread.sleep(300); // past the spin and yield phases
                long sleepsBefore = reactor.stats().sleeps();
                long cpuBefore = mx.getThreadCpuTime(thread.threadId());
                Thread.sleep(1000);
                long cpu = mx.getThreadCpuTime(thread.threadId()) - cpuBefore;
                // A spinning reactor burns ~1 s of CPU here; a sleeping one wakes about once a second.
                assertThat(cpu).as("reactor CPU ns while idle").isLessThan(200_000_000L);
                assertThat(reactor.stats().sleeps()).isGreaterThanOrEqualTo(sleepsBefore);
                long wakeupsBefore = reactor.stats().wakeups();
                // the guest's next request kicks the sleeping reactor awake
                assertThat(ini.read(0, 0, 512)).isEqualTo(S_OK);
                assertThat(reactor.stats().wakeups()).isGreaterThan(wakeupsBefore);
                // that kick is counted on the queue
                assertThat(target.controller("v").session().runningQueues().get(0).stats.kicks).isPositive();
            }
        }
    }
}
