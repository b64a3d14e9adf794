package io.jvhost.runtime;

import io.jvhost.bdev.MallocBlockDevice;
import io.jvhost.initiator.BlkInitiator;
import io.jvhost.vhost.Controller;
import io.jvhost.vhost.VhostTarget;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;

import static io.jvhost.virtio.BlkLayout.S_OK;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

/**
 * A reactor that dies anyway is noticed: its death shows in the statistics, and a session on it
 * ends at once when its front-end leaves (no 30 s stop timeout per ring) and still releases
 * the guest memory, since a dead reactor thread touches nothing.
 */
class DeadReactorSessionTest {
    @TempDir
    Path dir;

    @Test
    void aSessionOnADeadReactorEndsAtOnceAndUnmapsItsMemory() throws Exception {
        try (VhostTarget target = new VhostTarget(dir, 1, IdleStrategy.BACKOFF)) {
            target.bdevs().register(new MallocBlockDevice("M", 2048, 512, null));
            Controller c = target.createBlkController("v", "M", false, 2, null);
            Reactor reactor = target.reactors()[0];
            BlkInitiator ini = BlkInitiator.connect(dir.resolve("v").toString(), 2, 64, 1 << 20);
            long ino = ((Number) Files.getAttribute(Path.of("/proc/self/fd/" + ini.memory().fd()), "unix:ino")).longValue();
            assertThat(ini.write(0, 0, 512)).isEqualTo(S_OK);
            assertThat(mappings(ino)).as("ours and the target's").isEqualTo(2);

            reactor.crashForTest(new Error("simulated escape from the loop"));
            await().atMost(Duration.ofSeconds(10)).until(reactor::isTerminated);
            assertThat(reactor.stats().dead()).isTrue();

            ini.close();
            // two rings: a 30 s stop timeout each would miss this by far
            await().atMost(Duration.ofSeconds(10)).until(() -> c.session() == null);
            // The initiator unmapped its own view on close; the target's mapping is gone too.
            assertThat(mappings(ino)).isZero();
        }
    }

    private static long mappings(long ino) throws java.io.IOException {
        try (var lines = Files.lines(Path.of("/proc/self/maps"))) {
            return lines.map(l -> l.trim().split("\\s+")).filter(f -> f.length >= 5 && f[4].equals(Long.toString(ino))).count();
        }
    }
}
