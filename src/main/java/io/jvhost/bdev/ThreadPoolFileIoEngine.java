package io.jvhost.bdev;

import io.jvhost.runtime.BoundedQueue;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.lang.foreign.Arena;
import java.lang.invoke.VarHandle;
import java.util.concurrent.atomic.AtomicIntegerArray;
import java.util.concurrent.locks.LockSupport;

/**
 * A {@link FileIoEngine} of a few platform threads sharing one bounded lock-free submission
 * queue: the reactor offers the request and unparks an idle worker if there is one (no
 * allocation; an unpark only when a worker sleeps); a worker takes it, does the blocking system call and hands the request back to
 * its channel ({@link AsyncBlockChannel#deliver}), whose eventfd wakes the reactor. A full
 * queue makes {@code submit} answer {@code -EAGAIN}. The stopgap until io_uring (issue 11).
 */
public final class ThreadPoolFileIoEngine implements FileIoEngine {
    private static final Logger log = LoggerFactory.getLogger(ThreadPoolFileIoEngine.class);

    private final FileOps ops;
    private final BoundedQueue<BlockRequest> queue;
    private final Thread[] workers;
    /** 1 while worker i is (about to be) parked waiting for work. */
    private final AtomicIntegerArray idle;
    private volatile boolean running = true;

    public ThreadPoolFileIoEngine(String bdevName, FileOps ops, int threads, int queueDepth) {
        this.ops = ops;
        this.queue = new BoundedQueue<>(queueDepth);
        workers = new Thread[threads];
        idle = new AtomicIntegerArray(threads);
        for (int i = 0; i < threads; i++) {
            int index = i;
            workers[i] = Thread.ofPlatform().name("bdev-" + bdevName + "-io-" + i).daemon(true).unstarted(() -> work(index));
        }
        for (Thread w : workers) w.start();
    }

    @Override
    public String name() {
        return "threads";
    }

    @Override
    public BlockChannel openChannel(long sizeBytes) {
        return new AsyncBlockChannel(sizeBytes, queue.capacity()) {
            @Override
            protected boolean start(BlockRequest r) {
                if (!running || !queue.offer(r)) return false;
                wakeOne();
                return true;
            }
        };
    }

    /** Unparks one idle worker, if any (any thread; allocation-free). */
    private void wakeOne() {
        VarHandle.fullFence(); // the offer before the idle flags (pairs with the fence in work)
        for (int i = 0; i < workers.length; i++) {
            if (idle.get(i) == 1 && idle.compareAndSet(i, 1, 0)) {
                LockSupport.unpark(workers[i]);
                return;
            }
        }
    }

    private void work(int index) {
        try (Arena arena = Arena.ofConfined()) {
            FileOps.Scratch scratch = new FileOps.Scratch(arena);
            while (true) {
                BlockRequest r = queue.poll();
                if (r == null) {
                    if (!running) return;
                    // Announce idleness, then look again: an offer after our poll either sees
                    // the flag (and unparks us) or is seen by this second poll.
                    idle.set(index, 1);
                    VarHandle.fullFence(); // the idle flag before the second look (pairs with wakeOne)
                    r = queue.poll();
                    if (r == null) {
                        if (running) LockSupport.park(this);
                        idle.set(index, 0);
                        continue;
                    }
                    idle.set(index, 0);
                }
                // More work queued than this worker: let an idle one help.
                if (queue.size() > 0) wakeOne();
                int status;
                try {
                    status = ops.execute(r, scratch);
                } catch (RuntimeException | Error e) {
                    log.error("{}: I/O failed unexpectedly", Thread.currentThread().getName(), e);
                    status = -io.jvhost.sys.Errno.EIO;
                }
                AsyncBlockChannel.deliver(r, status, scratch.eventWord);
            }
        }
    }

    /** Workers finish what is queued, then stop (waits up to 5 s each). */
    @Override
    public void close() {
        running = false;
        for (Thread w : workers) LockSupport.unpark(w);
        for (Thread w : workers) {
            try {
                w.join(5000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
        }
    }
}
