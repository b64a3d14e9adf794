package io.jvhost.vhost;

import io.jvhost.bdev.FileBlockDevice;
import io.jvhost.bdev.ThreadPoolFileIoEngine;
import io.jvhost.initiator.BlkInitiator;
import io.jvhost.runtime.IdleStrategy;
import io.jvhost.runtime.Reactor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.locks.LockSupport;

import static io.jvhost.virtio.BlkLayout.S_OK;
import static org.assertj.core.api.Assertions.assertThat;

/**
 * The hybrid wait through a real blk queue: a bdev whose every request takes at least 300 µs on
 * a worker thread (as an RBD request does on librbd's) makes the reactor sleep at once while the
 * request is out, through the queue's own {@code ioWaitNanos} and the channel's estimate, and
 * every request still completes with the right data. The reactor's spin phase is endless here,
 * so every sleep counted is one the hybrid wait took.
 */
class HybridWaitTargetTest {
    @TempDir
    Path dir;

    @Test
    void aSlowAsyncBdevPutsTheReactorToSleepWhileItsRequestsAreOut() throws Exception {
        Path f = dir.resolve("disk.img");
        Files.write(f, new byte[1 << 20]);
        FileBlockDevice slow = new FileBlockDevice("S", f.toString(), 512, false, null, (name, ops) -> new ThreadPoolFileIoEngine(name, (r, s) -> {
            long until = System.nanoTime() + 300_000; // the device's latency, at least 300 µs
            while (System.nanoTime() < until) LockSupport.parkNanos(until - System.nanoTime());
            return ops.execute(r, s);
        }, 2, 64));
        IdleStrategy hybridOnly = new IdleStrategy(Long.MAX_VALUE / 4, 0, true, 50_000);
        try (VhostTarget target = new VhostTarget(dir, 1, hybridOnly)) {
            target.bdevs().register(slow);
            target.createBlkController("v", "S", false, 1, null);
            Reactor reactor = target.reactors()[0];
            try (BlkInitiator ini = BlkInitiator.connect(dir.resolve("v").toString(), 1, 64, 1 << 20)) {
                for (int i = 0; i < 100; i++) {
                    for (int b = 0; b < 4096; b += 64) ini.data().set(ValueLayout.JAVA_BYTE, b, (byte) (i * 7 + b));
                    assertThat(ini.write(0, 8L * i, 4096)).as("write %d", i).isEqualTo(S_OK);
                }
                for (int i = 0; i < 100; i++) {
                    ini.data().fill((byte) 0);
                    assertThat(ini.read(0, 8L * i, 4096)).as("read %d", i).isEqualTo(S_OK);
                    for (int b = 0; b < 4096; b += 64) {
                        assertThat(ini.data().get(ValueLayout.JAVA_BYTE, b)).as("byte %d of block %d", b, i).isEqualTo((byte) (i * 7 + b));
                    }
                }
            }
            assertThat(reactor.hybridSleeps()).as("sleeps the hybrid wait took").isPositive();
            assertThat(reactor.stats().sleeps()).isGreaterThanOrEqualTo(reactor.hybridSleeps());
        }
    }
}
