package io.jvhost.bench;

import io.jvhost.bdev.BlockDevice;
import io.jvhost.bdev.MallocBlockDevice;
import io.jvhost.bdev.NullBlockDevice;
import io.jvhost.vhost.BlkDevice;
import io.jvhost.vhost.QueueProcessor;
import io.jvhost.virtio.DriverSplitQueue;
import io.jvhost.virtio.SplitVirtQueue;
import org.openjdk.jmh.annotations.*;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.UUID;
import java.util.concurrent.TimeUnit;

import static io.jvhost.virtio.BlkLayout.*;

/**
 * The whole virtio-blk request path of one queue, per request, for 4 KiB reads in batches of
 * {@value #BATCH}: the real {@code BlkQueueProcessor} (made by {@link BlkDevice#newQueueProcessor},
 * never started on a reactor) polled directly: ring poll, onChain (header gather, range check,
 * request fill), channel submit, channel poll, completion (status byte, used element) and one
 * flush per batch. The driver builds the chains and reaps the used ring in the same thread
 * (its cost is included). EVENT_IDX on, no call fd: flush decides on a signal but sends none.
 * The thread's {@code LoopClock} is ticked once per batch, as a reactor ticks it once per loop
 * iteration (the bdev statistics read it instead of the system clock).
 *
 * <p>{@code null}: the null bdev (no data copied). {@code malloc}: the RAM bdev, one 4 KiB memcpy
 * per request into the guest buffer.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "-Xms1g", "-Xmx1g"})
public class BlkRequestBench {
    static final int BATCH = 32;
    static final int QUEUE_SIZE = 256;
    static final long DISK_BYTES = 64L << 20;

    @Param({"null", "malloc"})
    String bdev;

    GuestRam ram;
    BlockDevice dev;
    DriverSplitQueue driver;
    SplitVirtQueue queue;
    QueueProcessor processor;
    static final DriverSplitQueue.UsedHandler REAP = (head, len) -> { };

    /** This thread's loop clock, ticked once per round as a reactor ticks it once per loop iteration. */
    final io.jvhost.runtime.LoopClock clock = io.jvhost.runtime.LoopClock.ticking();

    @Setup(Level.Trial)
    public void setUp() {
        io.jvhost.runtime.LoopClock.bind(clock); // before the processor opens its channel on this thread
        ram = new GuestRam(QUEUE_SIZE);
        dev = switch (bdev) {
            case "null" -> new NullBlockDevice("Null0", DISK_BYTES / 512, 512, UUID.randomUUID());
            case "malloc" -> new MallocBlockDevice("Malloc0", DISK_BYTES / 512, 512, UUID.randomUUID());
            default -> throw new IllegalArgumentException("bdev " + bdev);
        };
        driver = ram.driver(true);
        queue = ram.device(true);
        // A reactor that is never started: the processor, polled from this thread, opens a private channel.
        processor = new BlkDevice("vhost.0", dev, false, 1, new io.jvhost.runtime.Reactor(0, io.jvhost.runtime.IdleStrategy.BUSY)).newQueueProcessor(queue, -1);
        // Each slot reads its own 4 KiB block: header = {type IN, ioprio 0, sector 8 * slot}.
        for (int i = 0; i < BATCH; i++) {
            MemorySegment h = ram.ram.asSlice(GuestRam.HEADER_OFF + 16L * i, 16);
            h.set(ValueLayout.JAVA_INT, HDR_TYPE, T_IN);
            h.set(ValueLayout.JAVA_INT, HDR_IOPRIO, 0);
            h.set(ValueLayout.JAVA_LONG, HDR_SECTOR, 8L * i);
        }
        // One checked round: every request must succeed, or we would be timing the error path.
        for (int i = 0; i < BATCH; i++) ram.ram.set(ValueLayout.JAVA_BYTE, GuestRam.STATUS_OFF + i, (byte) 0x7f);
        int[] used = new int[1];
        round((head, len) -> {
            if (len != GuestRam.DATA_LEN + 1) throw new IllegalStateException("used length " + len);
            used[0]++;
        });
        if (used[0] != BATCH) throw new IllegalStateException(used[0] + " of " + BATCH + " requests completed");
        for (int i = 0; i < BATCH; i++) {
            byte st = ram.ram.get(ValueLayout.JAVA_BYTE, GuestRam.STATUS_OFF + i);
            if (st != S_OK) throw new IllegalStateException("request " + i + " status " + st);
        }
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        if (queue.stats.requestErrors() != 0 || queue.stats.chainErrors() != 0) {
            throw new IllegalStateException("errors: " + queue.stats.requestErrors() + " request, " + queue.stats.chainErrors() + " chain");
        }
        if (queue.inFlight() != 0) throw new IllegalStateException(queue.inFlight() + " requests left in flight");
        dev.close();
        ram.close();
    }

    private int round(DriverSplitQueue.UsedHandler reap) {
        for (int i = 0; i < BATCH; i++) GuestRam.addBlkChain(driver, i);
        driver.publish();
        int work = processor.poll();
        driver.pollUsed(reap);
        clock.tick();
        return work;
    }

    @Benchmark
    @OperationsPerInvocation(BATCH)
    public int read4k() {
        return round(REAP);
    }
}
