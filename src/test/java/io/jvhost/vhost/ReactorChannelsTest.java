package io.jvhost.vhost;

import io.jvhost.bdev.FileBlockDevice;
import io.jvhost.initiator.BlkInitiator;
import io.jvhost.runtime.IdleStrategy;
import io.jvhost.runtime.Reactor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.TimeUnit;

import static io.jvhost.virtio.BlkLayout.S_OK;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

/** Block channels are per (bdev, reactor): the queues of a controller share one, ref-counted. */
class ReactorChannelsTest {
    @TempDir
    Path dir;

    private static int open(Reactor r) throws Exception {
        return r.call(() -> ReactorChannels.openCount(r)).get(10, TimeUnit.SECONDS);
    }

    @Test
    void queuesOnOneReactorShareOneChannelPerBdevUntilTheLastStops() throws Exception {
        Path f = dir.resolve("disk.img");
        Files.write(f, new byte[4 << 20]);
        try (VhostTarget target = new VhostTarget(dir, 1, IdleStrategy.BACKOFF)) {
            Reactor reactor = target.reactors()[0];
            target.bdevs().register(new FileBlockDevice("F", f.toString(), 512, false, null));
            target.createBlkController("v", "F", false, 3, null);
            try (BlkInitiator ini = BlkInitiator.connect(dir.resolve("v").toString(), 3, 64, 1 << 20)) {
                for (int q = 0; q < 3; q++) {
                    for (int b = 0; b < 4096; b++) ini.data().set(ValueLayout.JAVA_BYTE, b, (byte) (q * 31 + b));
                    assertThat(ini.write(q, 8L * q, 4096)).isEqualTo(S_OK);
                }
                for (int q = 0; q < 3; q++) {
                    assertThat(ini.read((q + 1) % 3, 8L * q, 4096)).isEqualTo(S_OK);
                    assertThat(ini.data().get(ValueLayout.JAVA_BYTE, 100)).isEqualTo((byte) (q * 31 + 100));
                }
                assertThat(open(reactor)).as("one channel for three queues").isEqualTo(1);
            }
            // The front-end went away: every queue stopped, the last one closed the channel.
            await().atMost(Duration.ofSeconds(30)).until(() -> open(reactor) == 0);
        }
    }
}
