package io.jvhost.bdev;

import io.jvhost.runtime.BoundedQueue;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.lang.foreign.Arena;
import java.util.concurrent.Semaphore;

/**
 * A {@link FileIoEngine} of a few platform threads sharing one bounded lock-free submission
 * queue: the reactor offers the request and releases a permit (no system call, no
 * allocation); a worker takes it, does the blocking system call and hands the request back to
 * its channel ({@link AsyncBlockChannel#deliver}), whose eventfd wakes the reactor. A full
 * queue makes {@code submit} answer {@code -EAGAIN}. The stopgap until io_uring (issue 11).
 */
public final class ThreadPoolFileIoEngine implements FileIoEngine {
    private static final Logger log = LoggerFactory.getLogger(ThreadPoolFileIoEngine.class);

    private final FileOps ops;
    private final BoundedQueue<BlockRequest> queue;
    private final Semaphore ready = new Semaphore(0);
    private final Thread[] workers;
    private volatile boolean running = true;

    public ThreadPoolFileIoEngine(String bdevName, FileOps ops, int threads, int queueDepth) {
        this.ops = ops;
        this.queue = new BoundedQueue<>(queueDepth);
        workers = new Thread[threads];
        for (int i = 0; i < threads; i++) {
            workers[i] = Thread.ofPlatform().name("bdev-" + bdevName + "-io-" + i).daemon(true).unstarted(this::work);
            workers[i].start();
        }
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
                ready.release();
                return true;
            }
        };
    }

    private void work() {
        try (Arena arena = Arena.ofConfined()) {
            FileOps.Scratch scratch = new FileOps.Scratch(arena);
            while (true) {
                ready.acquireUninterruptibly();
                BlockRequest r = queue.poll();
                if (r == null) {
                    if (!running) return;
                    continue;
                }
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
        ready.release(workers.length);
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
