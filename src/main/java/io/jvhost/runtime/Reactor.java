package io.jvhost.runtime;

import io.jvhost.sys.Epoll;
import io.jvhost.sys.EventFd;
import io.jvhost.sys.Fd;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * A poll-mode reactor: one thread that runs its {@link Pollable}s in a loop. Other threads never
 * touch a reactor's pollables; they {@link #call} commands that run on the reactor thread.
 *
 * <p>When a loop finds no work the reactor follows its {@link IdleStrategy}: spin, yield, then
 * (if allowed) ask every pollable to re-enable notifications and sleep in epoll on the wake fds
 * (virtqueue kick eventfds and its own command eventfd), so an idle target costs ~no CPU.
 */
public final class Reactor implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(Reactor.class);
    private static final long COMMAND_TAG = -1L;

    private final int id;
    private final IdleStrategy idle;
    private final ConcurrentLinkedQueue<Runnable> commands = new ConcurrentLinkedQueue<>();
    private final int commandFd = EventFd.create(true);
    private final Epoll epoll = new Epoll(64);
    private final Arena arena = Arena.ofShared();
    private final MemorySegment scratch = EventFd.scratch(arena);
    private final List<Pollable> pollables = new ArrayList<>();
    private Pollable[] active = new Pollable[0];
    private final AtomicBoolean sleeping = new AtomicBoolean();
    private volatile boolean running = true;
    private final Thread thread;

    // statistics (written by the reactor thread)
    private long busyLoops;
    private long idleLoops;
    private long sleeps;
    private long wakeups;
    private long busyNanos;
    private long idleNanos;

    private final int cpu;

    public Reactor(int id, IdleStrategy idle) {
        this(id, idle, -1);
    }

    /** @param cpu the core to pin the reactor thread to, or -1 for no pinning */
    public Reactor(int id, IdleStrategy idle, int cpu) {
        this.id = id;
        this.idle = idle;
        this.cpu = cpu;
        epoll.add(commandFd, Epoll.EPOLLIN, COMMAND_TAG);
        thread = Thread.ofPlatform().name("reactor-" + id).daemon(true).unstarted(this::run);
        thread.start();
    }

    public int id() {
        return id;
    }

    public IdleStrategy idleStrategy() {
        return idle;
    }

    public boolean onReactorThread() {
        return Thread.currentThread() == thread;
    }

    /** Runs {@code c} on the reactor thread; the future completes with its result or exception. */
    public <T> CompletableFuture<T> call(Callable<T> c) {
        CompletableFuture<T> f = new CompletableFuture<>();
        if (!running) {
            f.completeExceptionally(new IllegalStateException("reactor " + id + " is stopped"));
            return f;
        }
        commands.add(() -> {
            try {
                f.complete(c.call());
            } catch (Throwable t) {
                f.completeExceptionally(t);
            }
        });
        wake();
        return f;
    }

    /**
     * Runs {@code r} on the reactor thread and waits for it (control path): its exception comes
     * back wrapped in an {@link java.util.concurrent.ExecutionException}; a reactor that does not
     * get to it within {@code timeoutSeconds} gives a {@link java.util.concurrent.TimeoutException}.
     */
    public void runAndWait(Runnable r, long timeoutSeconds) throws Exception {
        call(() -> {
            r.run();
            return null;
        }).get(timeoutSeconds, java.util.concurrent.TimeUnit.SECONDS);
    }

    /** Adds a pollable (reactor thread only; use {@link #call} from elsewhere). */
    public void add(Pollable p) {
        checkThread();
        pollables.add(p);
        active = pollables.toArray(new Pollable[0]);
    }

    public void remove(Pollable p) {
        checkThread();
        pollables.remove(p);
        active = pollables.toArray(new Pollable[0]);
    }

    /** Told how many notifications an eventfd carried when the reactor drained it. */
    @FunctionalInterface
    public interface WakeListener {
        void onWake(long count);
    }

    private final java.util.Map<Integer, WakeListener> wakeListeners = new java.util.HashMap<>();

    /** Registers an eventfd that should wake this reactor from sleep (reactor thread only). */
    public void addWakeFd(int fd) {
        addWakeFd(fd, null);
    }

    /** As {@link #addWakeFd(int)}; {@code listener} (may be null) gets the drained counts, e.g. kick statistics. */
    public void addWakeFd(int fd, WakeListener listener) {
        checkThread();
        epoll.add(fd, Epoll.EPOLLIN, fd);
        if (listener != null) wakeListeners.put(fd, listener);
    }

    public void removeWakeFd(int fd) {
        checkThread();
        wakeListeners.remove(fd);
        try {
            epoll.remove(fd);
        } catch (RuntimeException e) {
            // already gone (closed fds leave epoll by themselves)
        }
    }

    private void checkThread() {
        if (Thread.currentThread() != thread) throw new IllegalStateException("not on reactor-" + id);
    }

    private void wake() {
        if (sleeping.get()) EventFd.signal(commandFd, scratch);
    }

    private int runCommands() {
        int n = 0;
        Runnable r;
        while ((r = commands.poll()) != null) {
            r.run();
            n++;
        }
        return n;
    }

    /** The core this reactor is pinned to, or -1. */
    public int cpu() {
        return cpu;
    }

    private void run() {
        if (cpu >= 0) {
            try {
                io.jvhost.sys.Affinity.pinCurrentThread(cpu);
            } catch (RuntimeException e) {
                log.warn("reactor-{}: cannot pin to CPU {}: {} (running unpinned)", id, cpu, e.getMessage());
            }
        }
        long lastWork = System.nanoTime();
        long mark = lastWork; // start of the current busy/idle accounting interval
        while (running) {
            int work = 0;
            try {
                work = runCommands();
                Pollable[] ps = active;
                for (Pollable p : ps) work += p.poll();
            } catch (Throwable t) {
                // A pollable must not throw; if one does, keep the reactor alive and say so.
                log.error("reactor-{}: unexpected error in poll loop (continuing)", id, t);
            }
            long now = System.nanoTime();
            if (work > 0) {
                busyLoops++;
                busyNanos += now - mark;
                mark = now;
                lastWork = 0;
                continue;
            }
            idleLoops++;
            if (lastWork == 0) lastWork = now;
            long idleFor = now - lastWork;
            if (idleFor < idle.spinNanos()) {
                Thread.onSpinWait();
            } else if (idleFor < idle.spinNanos() + idle.yieldNanos() || !idle.sleep()) {
                Thread.yield();
                now = System.nanoTime();
            } else {
                trySleep();
                lastWork = 0;
                now = System.nanoTime();
            }
            // The empty poll and the wait after it are idle time (SPDK's busy/idle split).
            idleNanos += now - mark;
            mark = now;
        }
    }

    private void trySleep() {
        Pollable[] ps = active;
        boolean canSleep = true;
        for (Pollable p : ps) {
            if (!p.prepareSleep()) canSleep = false;
        }
        if (canSleep) {
            sleeping.set(true);
            if (commands.isEmpty()) {
                sleeps++;
                int n = epoll.await(1000);
                for (int i = 0; i < n; i++) {
                    long tag = epoll.data(i);
                    int fd = (int) tag;
                    if ((epoll.events(i) & (Epoll.EPOLLHUP | Epoll.EPOLLERR)) != 0 && tag != COMMAND_TAG) {
                        log.warn("reactor-{}: wake fd {} reports hang-up/error; no longer sleeping on it", id, fd);
                        removeWakeFd(fd);
                        continue;
                    }
                    long count = EventFd.drain(tag == COMMAND_TAG ? commandFd : fd, scratch);
                    if (tag != COMMAND_TAG && count > 0) {
                        WakeListener l = wakeListeners.get(fd); // boxing: only when waking from sleep
                        if (l != null) l.onWake(count);
                    }
                }
                wakeups++;
            }
            sleeping.set(false);
        }
        for (Pollable p : ps) p.afterWake();
    }

    /**
     * Loop statistics, read from any thread without synchronization (may be slightly stale).
     * {@code busyNanos}/{@code idleNanos}: time spent in iterations that found work / found none
     * (including spinning, yielding and sleeping after them), as SPDK's reactor busy/idle ticks.
     */
    public record Stats(int id, long busyLoops, long idleLoops, long sleeps, long wakeups, int pollables, long busyNanos, long idleNanos) {}

    public Stats stats() {
        return new Stats(id, busyLoops, idleLoops, sleeps, wakeups, active.length, busyNanos, idleNanos);
    }

    @Override
    public void close() {
        running = false;
        EventFd.signal(commandFd, scratch);
        try {
            thread.join(5000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        epoll.close();
        Fd.closeQuietly(commandFd);
    }
}
