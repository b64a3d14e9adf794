package io.jvhost.target;

import io.jvhost.bdev.MallocBlockDevice;
import io.jvhost.initiator.BlkInitiator;
import io.jvhost.runtime.IdleStrategy;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.lang.management.ManagementFactory;
import java.nio.file.Path;

import static io.jvhost.virtio.BlkLayout.S_OK;
import static org.assertj.core.api.Assertions.assertThat;

/** The reactor's data path allocates nothing per request in steady state. */
class DataPathAllocationTest {
    @TempDir
    Path dir;

    @Test
    void steadyStateReadsAndWritesAllocateNothingOnTheReactor() throws Exception {
        com.sun.management.ThreadMXBean mx = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        try (VhostTarget target = new VhostTarget(dir, 1, IdleStrategy.BUSY)) {
            target.bdevs().register(new MallocBlockDevice("M", 8192, 512, null));
            target.createBlkController("v", "M", false, 1, null);
            Thread reactor = Thread.getAllStackTraces().keySet().stream().filter(t -> t.getName().equals("reactor-0")).findFirst().orElseThrow();
            try (BlkInitiator ini = BlkInitiator.connect(dir.resolve("v").toString(), 1, 128, 1 << 20)) {
                for (int i = 0; i < 30_000; i++) {
                    assertThat(i % 2 == 0 ? ini.write(0, i % 1000, 4096) : ini.read(0, i % 1000, 4096)).isEqualTo(S_OK);
                }
                long before = mx.getThreadAllocatedBytes(reactor.threadId());
                int n = 50_000;
                for (int i = 0; i < n; i++) {
                    assertThat(i % 2 == 0 ? ini.write(0, i % 1000, 4096) : ini.read(0, i % 1000, 4096)).isEqualTo(S_OK);
                }
                long bytes = mx.getThreadAllocatedBytes(reactor.threadId()) - before;
                assertThat((double) bytes / n).as("bytes allocated per request on the reactor (%d in total)", bytes).isLessThan(1.0);
            }
        }
    }
}
