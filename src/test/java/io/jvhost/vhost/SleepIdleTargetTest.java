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
            final int rounds = 200;
            try (BlkInitiator ini = BlkInitiator.connect(dir.resolve("v").toString(), 1, 64, 1 << 20)) {
                MemorySegment data = ini.data();
                long sleeps0 = target.reactors()[0].stats().sleeps();
                for (int i = 0; i < rounds; i++) {
                    long sector = 8L * (i % 64);
                    data.asSlice(0, 4096).fill((byte) i);
                    assertThat(ini.write(0, sector, 4096)).isEqualTo(S_OK);
                    data.asSlice(0, 4096).fill((byte) 0);
                    assertThat(ini.read(0, sector, 4096)).isEqualTo(S_OK);
                    assertThat(data.get(ValueLayout.JAVA_BYTE, 4095)).as("round %d read back", i).isEqualTo((byte) i);
                    assertThat(m.memory().get(ValueLayout.JAVA_BYTE, sector * 512 + 17)).isEqualTo((byte) i);
                }
                long sleeps = target.reactors()[0].stats().sleeps() - sleeps0;
                // One per gap between requests (the initiator waits for each completion); the
                // default policy spins 100 us first and would sleep in hardly any of them.
                assertThat(sleeps).as("reactor sleeps during %d requests", 2 * rounds).isGreaterThanOrEqualTo(rounds);
            }
        }
    }
}
