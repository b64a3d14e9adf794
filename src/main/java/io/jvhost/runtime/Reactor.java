package io.jvhost.runtime;

import io.jvhost.sys.Epoll;
import io.jvhost.sys.EventFd;
import io.jvhost.sys.Fd;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * A poll-mode reactor: one thread that runs its {@link Pollable}s in a loop. Other threads never
 * touch a reactor's pollables; they {@link #call} commands that run on the reactor thread.
 *
 * <p>When a loop finds no work the reactor follows its {@link IdleStrategy}: spin, yield, then
 * (if allowed) ask every pollable to re-enable notifications and sleep in epoll on the wake fds
 * (virtqueue kick eventfds and its own command eventfd), so an idle target costs ~no CPU.
 *
 * <p><b>Errors.</b> Nothing a pollable or a command throws ends the loop. Every call into a
 * pollable is wrapped; the pollable that was running ({@code current}) gets the blame. A memory
 * fault ({@link InternalError}, which is how the JVM reports SIGBUS from a truncated shared
 * file) may surface a little after the access that caused it (compiled code reports it at its
 * next safepoint poll, possibly in the next pollable or in a command), so for those the reactor
 * first asks every pollable whether its memory is gone ({@link Pollable#onMemoryFault}) and
 * blames the running one only when none claims it. Should the loop end by an error anyway, the
 * reactor is marked dead: it logs at error, says so in {@link #stats()}, fails queued commands
 * and answers every later {@link #call} at once with an exception instead of leaving the
 * caller to time out.
 */
public final class Reactor implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(Reactor.class);
    private static final long COMMAND_TAG = -1L;

    private final int id;
    private final IdleStrategy idle;
    private final ConcurrentLinkedQueue<Command<?>> commands = new ConcurrentLinkedQueue<>();
    private final int commandFd = EventFd.create(true);
    private final Epoll epoll = new Epoll(64);
    private final Arena arena = Arena.ofShared();
    private final MemorySegment scratch = EventFd.scratch(arena);
    private final List<Pollable> pollables = new ArrayList<>();
    private Pollable[] active = new Pollable[0];
    private final AtomicBoolean sleeping = new AtomicBoolean();
    private volatile boolean running = true;
    /** Set once the loop has ended (closed or died); {@link #call} fails fast from then on. */
    private volatile boolean stopped;
    /** Why the loop died, or null. */
    private volatile Throwable death;
    private final Thread thread;

    /** The pollable whose code ran last (reactor thread): who gets the blame for an error. */
    private Pollable current;
    /** Pollables already told about an error (reactor thread; cold). */
    private final java.util.Set<Pollable> failed = Collections.newSetFromMap(new IdentityHashMap<>());

    /**
     * Loop statistics in the counter registry (label {@code reactor}): written by the reactor
     * thread only (opaque stores), read by anyone through {@link #stats()} or the registry.
     */
    public static final CounterLayout LAYOUT;
    private static final int BUSY_LOOPS, IDLE_LOOPS, SLEEPS, WAKEUPS, BUSY_NANOS, IDLE_NANOS, ERRORS, POLLABLES, HYBRID_SLEEPS;

    static {
        CounterLayout.Builder b = CounterLayout.builder("reactor");
        String loops = "jvhost_reactor_loops";
        String loopsHelp = "Poll loop iterations that found work (busy) or none (idle)";
        BUSY_LOOPS = b.counter("busy_loops", loops, loopsHelp, "state", "busy");
        IDLE_LOOPS = b.counter("idle_loops", loops, loopsHelp, "state", "idle");
        SLEEPS = b.counter("sleeps", "jvhost_reactor_sleeps", "Times the reactor slept in epoll (idle, every pollable agreed)");
        WAKEUPS = b.counter("wakeups", "jvhost_reactor_wakeups", "Times the reactor woke from epoll");
        BUSY_NANOS = b.scaledCounter("busy_nanos", "jvhost_reactor_busy_seconds", "Time in loop iterations that found work (SPDK's busy ticks)", 1e-9);
        IDLE_NANOS = b.scaledCounter("idle_nanos", "jvhost_reactor_idle_seconds", "Time in loop iterations that found none, spinning, yielding or asleep (SPDK's idle ticks)", 1e-9);
        ERRORS = b.counter("errors", "jvhost_reactor_errors", "Throwables caught from pollables and commands (the reactor went on)");
        POLLABLES = b.gauge("pollables", "jvhost_reactor_pollables", "Pollables (queues) the reactor runs");
        HYBRID_SLEEPS = b.counter("hybrid_sleeps", "jvhost_reactor_hybrid_sleeps",
                "Sleeps taken at once because only block I/O expected to take long was in flight (hybrid wait)");
        LAYOUT = b.build();
    }

    private final CounterSet counters = new CounterSet(LAYOUT);
    private final CounterRegistry.Entry published;

    private final int cpu;

    /** A command and its future; failed instead of run when the reactor is gone. */
    private static final class Command<T> {
        final Callable<T> body;
        final CompletableFuture<T> future = new CompletableFuture<>();

        Command(Callable<T> body) {
            this.body = body;
        }

        /** Runs the command; returns what it threw (already passed to the future), or null. */
        Throwable run() {
            try {
                future.complete(body.call());
                return null;
            } catch (Throwable t) {
                future.completeExceptionally(t);
                return t;
            }
        }
    }

    public Reactor(int id, IdleStrategy idle) {
        this(id, idle, -1);
    }

    /** @param cpu the core to pin the reactor thread to, or -1 for no pinning */
    public Reactor(int id, IdleStrategy idle, int cpu) {
        this.id = id;
        this.idle = idle;
        this.hybridOn = idle.sleep() && idle.hybridSleepNanos() > 0;
        this.cpu = cpu;
        published = CounterRegistry.global().publish(counters, "reactor", Integer.toString(id));
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

    /** True when the loop ended by an error (not by {@link #close()}): nothing runs here any more. */
    public boolean isDead() {
        return death != null;
    }

    /** True once the reactor takes no more commands: closing, closed or dead. */
    public boolean isStopped() {
        return !running;
    }

    /** True once the reactor thread has ended: it touches nothing any more. */
    public boolean isTerminated() {
        return !running && !thread.isAlive();
    }

    private IllegalStateException gone() {
        Throwable d = death;
        return d != null ? new IllegalStateException("reactor " + id + " is dead (" + d + ")", d)
                : new IllegalStateException("reactor " + id + " is stopped");
    }

    /**
     * Runs {@code c} on the reactor thread; the future completes with its result or exception,
     * at once with an {@link IllegalStateException} when the reactor is stopped or dead.
     */
    public <T> CompletableFuture<T> call(Callable<T> c) {
        Command<T> cmd = new Command<>(c);
        if (!running || stopped) {
            cmd.future.completeExceptionally(gone());
            return cmd.future;
        }
        commands.add(cmd);
        // The loop may have ended between the check and the add: then nobody else drains.
        if (stopped) failPendingCommands();
        else wake();
        return cmd.future;
    }

    /**
     * Runs {@code r} on the reactor thread and waits for it (control path): its exception comes
     * back wrapped in an {@link ExecutionException}; a reactor that does not get to it within
     * {@code timeoutSeconds} gives a {@link java.util.concurrent.TimeoutException}, a dead one
     * an {@link ExecutionException} at once.
     */
    public void runAndWait(Runnable r, long timeoutSeconds) throws Exception {
        call(() -> {
            r.run();
            return null;
        }).get(timeoutSeconds, TimeUnit.SECONDS);
    }

    /** Adds a pollable (reactor thread only; use {@link #call} from elsewhere). */
    public void add(Pollable p) {
        checkThread();
        pollables.add(p);
        active = pollables.toArray(new Pollable[0]);
        counters.setOwned(POLLABLES, active.length);
    }

    public void remove(Pollable p) {
        checkThread();
        pollables.remove(p);
        failed.remove(p);
        active = pollables.toArray(new Pollable[0]);
        counters.setOwned(POLLABLES, active.length);
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

    /** Wake fds currently registered (tests and diagnostics; reactor thread only). */
    public int wakeFdCount() {
        checkThread();
        return wakeListeners.size();
    }

    private void checkThread() {
        if (Thread.currentThread() != thread) throw new IllegalStateException("not on reactor-" + id);
    }

    private void wake() {
        if (sleeping.get()) EventFd.signal(commandFd, scratch);
    }

    private int runCommands() {
        int n = 0;
        Command<?> c;
        while ((c = commands.poll()) != null) {
            current = null;
            Throwable t = c.run();
            // The caller gets the exception; a memory fault may also belong to a queue (a stop
            // that flushed into a truncated ring): let the owner of the vanished memory know.
            if (t instanceof InternalError) {
                counters.incrementOwned(ERRORS);
                sweepMemoryFault(t);
            }
            n++;
        }
        return n;
    }

    private void failPendingCommands() {
        Command<?> c;
        while ((c = commands.poll()) != null) c.future.completeExceptionally(gone());
    }

    /** The core this reactor is pinned to, or -1. */
    public int cpu() {
        return cpu;
    }

    private void run() {
        try {
            if (cpu >= 0) {
                try {
                    io.jvhost.sys.Affinity.pinCurrentThread(cpu);
                } catch (RuntimeException e) {
                    log.warn("reactor-{}: cannot pin to CPU {}: {} (running unpinned)", id, cpu, e.getMessage());
                }
            }
            loop();
        } catch (Throwable t) {
            // Not expected: every call into pollables and commands is guarded. Say so loudly,
            // and make the death visible instead of leaving a zombie that swallows commands.
            death = t;
            log.error("reactor-{} died; its controllers no longer serve and commands to it fail", id, t);
        } finally {
            stopped = true;
            running = false;
            failPendingCommands();
        }
    }

    /** Test hook: an error the loop throws outside every guard (reactor thread). */
    private Error fatalForTest;

    /** Tests only: makes the loop end with {@code e}, as an unguarded error would. */
    void crashForTest(Error e) {
        call(() -> {
            fatalForTest = e;
            return null;
        });
    }

    /** Ticked once per loop iteration; the pollables' per-request timing reads it ({@link LoopClock}). */
    private final LoopClock clock = LoopClock.ticking();

    /** This reactor's loop clock (reactor thread only). */
    public LoopClock clock() {
        return clock;
    }

    private void loop() {
        LoopClock.bind(clock);
        long lastWork = clock.tick();
        long mark = lastWork; // start of the current busy/idle accounting interval
        while (running) {
            if (fatalForTest != null) throw fatalForTest;
            int work = 0;
            try {
                work = runCommands();
                Pollable[] ps = active;
                for (Pollable p : ps) {
                    current = p;
                    try {
                        work += p.poll();
                    } catch (Throwable t) {
                        pollableFailed(p, t);
                        work++;
                    }
                }
            } catch (Throwable t) {
                strayError(t);
            }
            long now = System.nanoTime();
            if (work > 0) {
                counters.incrementOwned(BUSY_LOOPS);
                counters.addOwned(BUSY_NANOS, now - mark);
                mark = now;
                lastWork = 0;
                hybridAllowed = hybridOn;
                clock.tick(now);
                continue;
            }
            counters.incrementOwned(IDLE_LOOPS);
            if (lastWork == 0) lastWork = now;
            long idleFor = now - lastWork;
            try {
                long expected;
                if (hybridAllowed && (expected = hybridWait()) > 0) {
                    int pct = idle.hybridNapPercent();
                    long nap = pct > 0 ? Math.max(1_000, expected / 100 * pct) : -1;
                    boolean slept = trySleep(nap);
                    if (slept) counters.incrementOwned(HYBRID_SLEEPS);
                    // After a timed nap the loop polls (spin, yield) for the completion: one nap per wait.
                    hybridAllowed = slept && nap < 0;
                    lastWork = 0;
                    now = System.nanoTime();
                } else if (idleFor < idle.spinNanos()) {
                    Thread.onSpinWait();
                } else if (idleFor < idle.spinNanos() + idle.yieldNanos() || !idle.sleep()) {
                    Thread.yield();
                    now = System.nanoTime();
                } else {
                    trySleep(-1);
                    lastWork = 0;
                    now = System.nanoTime();
                }
            } catch (Throwable t) {
                sleeping.set(false);
                strayError(t);
                now = System.nanoTime();
            }
            // The empty poll and the wait after it are idle time (SPDK's busy/idle split).
            counters.addOwned(IDLE_NANOS, now - mark);
            mark = now;
            clock.tick(now);
        }
    }

    /** A pollable threw from one of its methods. */
    private void pollableFailed(Pollable p, Throwable t) {
        counters.incrementOwned(ERRORS);
        if (t instanceof InternalError && sweepMemoryFault(t)) return;
        blame(p, t);
    }

    /**
     * An error outside any guarded call: a memory fault delivered late, or a fault in the
     * reactor's own code. Blame the pollable that ran last; if none, log it and carry on.
     */
    private void strayError(Throwable t) {
        counters.incrementOwned(ERRORS);
        if (t instanceof InternalError && sweepMemoryFault(t)) return;
        Pollable p = current;
        if (p != null && pollables.contains(p)) {
            blame(p, t);
        } else if (Long.bitCount(counters.get(ERRORS)) == 1) {
            // first and then at powers of two: a persistent fault cannot flood the log
            log.error("reactor-{}: error in the loop (continuing; {} so far)", id, counters.get(ERRORS), t);
        }
    }

    /** Asks every pollable whether the faulting memory is its own; true if one claimed it. */
    private boolean sweepMemoryFault(Throwable t) {
        boolean claimed = false;
        for (Pollable q : active) {
            try {
                if (q.onMemoryFault(t)) claimed = true;
            } catch (Throwable t2) {
                blame(q, t2);
            }
        }
        return claimed;
    }

    private void blame(Pollable p, Throwable t) {
        if (!pollables.contains(p)) return;
        if (!failed.add(p)) {
            log.error("reactor-{}: {} failed again after its first error; removed from the reactor", id, p, t);
            remove(p);
            return;
        }
        if (!(t instanceof InternalError)) log.error("reactor-{}: {} threw; failing it (the reactor goes on)", id, p, t);
        try {
            p.onError(t);
        } catch (Throwable t2) {
            log.error("reactor-{}: {} failed while handling its error; removed from the reactor", id, p, t2);
            remove(p);
        }
    }

    /**
     * Hybrid wait, asked on idle loops while {@link #hybridAllowed}: the shortest expected wait
     * (ns) when some pollable waits for block I/O that will wake the reactor, none needs
     * polling, and that wait is at least the strategy's threshold; 0 otherwise. Spinning through such a wait only
     * takes the CPU that the completion's producers (the kernel's completion work, librbd's and
     * Ceph's threads) need on a small machine; a short one is cheaper to spin through than to
     * pay a wake-up for. Reactor thread; no side effects.
     */
    private long hybridWait() {
        long shortest = Long.MAX_VALUE;
        for (Pollable p : active) {
            long w;
            try {
                w = p.ioWaitNanos();
            } catch (Throwable t) {
                return 0; // its poll or prepareSleep will meet the same error and attribute it
            }
            if (w < 0) return 0;
            if (w > 0 && w < shortest) shortest = w;
        }
        return shortest != Long.MAX_VALUE && shortest >= idle.hybridSleepNanos() ? shortest : 0;
    }

    /**
     * Whether the hybrid wait may try to sleep before the next work: cleared when a pollable
     * refused the sleep it proposed, so a refusal is not retried (each try re-enables and
     * suppresses notifications) on every idle loop until something happens.
     */
    private boolean hybridAllowed;
    /** The strategy has the hybrid wait on (it needs sleeping); fixed for the reactor's life. */
    private final boolean hybridOn;

    /**
     * Sleeps if every pollable agrees, until a wake fd fires (at most 1 s) or, with
     * {@code napNanos} &gt; 0, at most that long; returns whether it slept (reactor thread).
     */
    private boolean trySleep(long napNanos) {
        Pollable[] ps = active;
        boolean canSleep = true;
        for (Pollable p : ps) {
            current = p;
            try {
                if (!p.prepareSleep()) canSleep = false;
            } catch (Throwable t) {
                pollableFailed(p, t);
                canSleep = false;
            }
        }
        if (canSleep) {
            sleeping.set(true);
            if (commands.isEmpty()) {
                counters.incrementOwned(SLEEPS);
                int n = napNanos > 0 ? epoll.awaitNanos(napNanos) : epoll.await(1000);
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
                counters.incrementOwned(WAKEUPS);
            }
            sleeping.set(false);
        }
        boolean slept = canSleep;
        for (Pollable p : ps) {
            current = p;
            try {
                p.afterWake();
            } catch (Throwable t) {
                pollableFailed(p, t);
            }
        }
        return slept;
    }

    /**
     * Loop statistics, read from any thread from the reactor's counters (opaque loads, no lock;
     * each value may be a loop stale).
     * {@code busyNanos}/{@code idleNanos}: time spent in iterations that found work / found none
     * (including spinning, yielding and sleeping after them), as SPDK's reactor busy/idle ticks.
     * {@code errors}: throwables caught from pollables and commands; {@code dead}: the loop ended
     * by an error and {@code deathReason} says which.
     */
    public record Stats(int id, long busyLoops, long idleLoops, long sleeps, long wakeups, int pollables, long busyNanos, long idleNanos,
                        long errors, boolean dead, String deathReason) {}

    /** Sleeps taken at once by the hybrid wait (also counted in {@code sleeps}); any thread. */
    public long hybridSleeps() {
        return counters.get(HYBRID_SLEEPS);
    }

    public Stats stats() {
        Throwable d = death;
        CounterSet c = counters;
        return new Stats(id, c.get(BUSY_LOOPS), c.get(IDLE_LOOPS), c.get(SLEEPS), c.get(WAKEUPS), active.length, c.get(BUSY_NANOS), c.get(IDLE_NANOS),
                c.get(ERRORS), d != null,
                d == null ? null : d.toString());
    }

    private boolean closed;

    /** Ends the loop (waiting up to 5 s for the thread) and releases the epoll and command fds; idempotent. */
    @Override
    public synchronized void close() {
        if (closed) return;
        closed = true;
        running = false;
        CounterRegistry.global().withdraw(published);
        EventFd.signal(commandFd, scratch);
        try {
            thread.join(5000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        stopped = true;
        failPendingCommands();
        epoll.close();
        Fd.closeQuietly(commandFd);
    }
}
