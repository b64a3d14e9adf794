package io.jvhost.scsi;

import io.jvhost.bdev.BlockChannel;
import io.jvhost.bdev.MallocBlockDevice;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.management.ManagementFactory;
import java.util.UUID;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The READ/WRITE path allocates nothing per request once warmed up: measured with the JVM's
 * per-thread allocation counter over a steady loop the way a transport drives it (reset, fill,
 * execute, poll, completion callback).
 */
class ScsiAllocationTest {
    private static final int WARMUP = 200_000;
    private static final int MEASURED = 100_000;
    private static final int QUEUE = 8;

    private long completed;
    private Object sink;
    private long bad;

    @Test
    void steadyStateRead10Write10AllocatesNothingPerRequest() {
        com.sun.management.ThreadMXBean mx = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        assertThat(mx.isThreadAllocatedMemorySupported()).isTrue();
        mx.setThreadAllocatedMemoryEnabled(true);
        long probe = mx.getCurrentThreadAllocatedBytes();
        sink = new byte[4096];
        assertThat(mx.getCurrentThreadAllocatedBytes() - probe).as("the counter sees this thread's allocations")
                .isGreaterThanOrEqualTo(4096);
        try (MallocBlockDevice dev = new MallocBlockDevice("alloc", 4096, 512, UUID.randomUUID());
             Arena arena = Arena.ofConfined()) {
            ScsiTarget target = new ScsiTarget(0, "alloc", dev);
            BlockChannel ch = dev.openChannel();
            MemorySegment buffers = arena.allocate(QUEUE * 8192L, 4096);
            ScsiTask[] tasks = new ScsiTask[QUEUE];
            byte[][] cdbs = new byte[QUEUE][16];
            ScsiTask.Completion done = t -> {
                if (t.status() == ScsiStatus.GOOD) completed++;
                else bad++;
            };
            for (int i = 0; i < QUEUE; i++) tasks[i] = new ScsiTask(4).completion(done);

            run(target, ch, tasks, cdbs, buffers, WARMUP);
            long before = mx.getCurrentThreadAllocatedBytes();
            long n = run(target, ch, tasks, cdbs, buffers, MEASURED);
            long allocated = mx.getCurrentThreadAllocatedBytes() - before;
            ch.close();

            assertThat(bad).isZero();
            assertThat(n).isEqualTo(MEASURED);
            double perRequest = (double) allocated / n;
            System.out.printf("READ(10)/WRITE(10): %d bytes allocated over %d requests (%.4f/request)%n",
                    allocated, n, perRequest);
            assertThat(perRequest).as("bytes allocated per request").isLessThan(1.0);
        }
    }

    /** Runs {@code count} requests, up to QUEUE in flight, alternating 8-block READ(10) and WRITE(10). */
    private long run(ScsiTarget target, BlockChannel ch, ScsiTask[] tasks, byte[][] cdbs, MemorySegment buffers,
                     int count) {
        long start = completed;
        int issued = 0;
        while (completed - start < count) {
            for (int i = 0; i < tasks.length && issued < count; i++) {
                ScsiTask t = tasks[i];
                if (t.busy()) continue;
                boolean write = (issued & 1) == 0;
                byte[] c = cdbs[i];
                long lba = (issued * 8L) % 4088;
                c[0] = (byte) (write ? ScsiOpcode.WRITE_10 : ScsiOpcode.READ_10);
                c[2] = (byte) (lba >>> 24);
                c[3] = (byte) (lba >>> 16);
                c[4] = (byte) (lba >>> 8);
                c[5] = (byte) lba;
                c[7] = 0;
                c[8] = 8;
                t.reset().cdb(c, 0, 10).lun(0).tag(issued)
                        .direction(write ? ScsiTask.Direction.TO_DEVICE : ScsiTask.Direction.FROM_DEVICE);
                // two scatter-gather entries per request
                t.addBuffer(buffers, i * 8192L, 1536);
                t.addBuffer(buffers, i * 8192L + 2048, 2560);
                target.execute(t, ch);
                issued++;
            }
            ch.poll();
        }
        return completed - start;
    }
}
