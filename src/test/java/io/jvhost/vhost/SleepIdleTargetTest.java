package io.jvhost.vhost;

import io.jvhost.bdev.MallocBlockDevice;
import io.jvhost.initiator.BlkInitiator;
import io.jvhost.runtime.IdleStrategy;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;

import static io.jvhost.virtio.BlkLayout.S_OK;
import static org.assertj.core.api.Assertions.assertThat;

/**
 * {@code serve --idle sleep} ({@link IdleStrategy#SLEEP}): a reactor that sleeps as soon as a
 * loop finds nothing still serves every request (each kick wakes it), and it does sleep in the
 * gaps between requests where the default would spin.
 */
class SleepIdleTargetTest {
    @TempDir
    Path dir;

    @Test
    void aSleepingReactorServesEveryRequestAndSleepsBetweenThem() throws Exception {
        try (VhostTarget target = new VhostTarget(dir, 1, IdleStrategy.SLEEP)) {
            MallocBlockDevice m = new MallocBlockDevice("M", 4096, 512, null);
            target.bdevs().register(m);
            target.createBlkController("v", "M", false, 1, null);
            final int rounds = 100;
            try (BlkInitiator ini = BlkInitiator.connect(dir.resolve("v").toString(), 1, 64, 1 << 20)) {
                MemorySegment data = ini.data();
                for (int i = 0; i < rounds; i++) {
                    long sector = 8L * (i % 64);
                    data.asSlice(0, 4096).fill((byte) i);
                    assertThat(ini.write(0, sector, 4096)).isEqualTo(S_OK);
                    data.asSlice(0, 4096).fill((byte) 0);
                    assertThat(ini.read(0, sector, 4096)).isEqualTo(S_OK);
                    assertThat(data.get(ValueLayout.JAVA_BYTE, 4095)).as("round %d read back", i).isEqualTo((byte) i);
                    assertThat(m.memory().get(ValueLayout.JAVA_BYTE, sector * 512 + 17)).isEqualTo((byte) i);
                }
                // Gaps of 300 us between requests: the default policy spins 100 us and then
                // yields until 1.1 ms, so it sleeps in none of them; this one sleeps in each
                // (half is the margin for a loaded machine delaying the reactor thread).
                final int gaps = 100;
                long sleeps0 = target.reactors()[0].stats().sleeps();
                for (int i = 0; i < gaps; i++) {
                    assertThat(ini.read(0, 8L * (i % 64), 4096)).isEqualTo(S_OK);
                    java.util.concurrent.locks.LockSupport.parkNanos(300_000);
                }
                long sleeps = target.reactors()[0].stats().sleeps() - sleeps0;
                assertThat(sleeps).as("reactor sleeps during %d gaps", gaps).isGreaterThanOrEqualTo(gaps / 2);
            }
        }
    }
}
