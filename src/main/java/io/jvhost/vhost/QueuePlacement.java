package io.jvhost.vhost;

import io.jvhost.runtime.Reactor;

import java.util.Arrays;
import java.util.Locale;

/**
 * Which reactor runs each queue of a controller: the queue → reactor map.
 *
 * <p>{@link Mode#ONE_REACTOR} (the default, SPDK's behaviour) puts every queue on one reactor.
 * {@link Mode#SPREAD} deals the queues out round-robin over the reactors of the controller's
 * cpumask, starting at the least-loaded one, so one controller can use several cores (SPDK serves
 * a whole controller from one thread and has no such knob). Queues below {@code firstSpread}
 * (virtio-scsi's control and event queues) always stay on the first reactor, the "home" one.
 *
 * <p>A reactor's position in {@link #reactors()} is its <em>lane</em>: devices keep per-reactor
 * state (block channels, SCSI task lists) indexed by lane. Immutable; any thread.
 */
public final class QueuePlacement {
    /** The {@code queue_placement} RPC/config values. */
    public enum Mode {
        ONE_REACTOR("one-reactor"),
        SPREAD("spread");

        public final String value;

        Mode(String value) {
            this.value = value;
        }

        public static Mode parse(String s) {
            if (s == null) return ONE_REACTOR;
            for (Mode m : values()) if (m.value.equals(s.trim().toLowerCase(Locale.ROOT))) return m;
            throw new IllegalArgumentException("queue_placement must be \"one-reactor\" or \"spread\", got \"" + s + "\"");
        }
    }

    private final Mode mode;
    private final Reactor[] reactors;
    private final int firstSpread;

    private QueuePlacement(Mode mode, Reactor[] reactors, int firstSpread) {
        if (reactors.length == 0) throw new IllegalArgumentException("no reactor");
        this.mode = mode;
        this.reactors = reactors;
        this.firstSpread = firstSpread;
    }

    /** Every queue on {@code r} (a null reactor is allowed for processors driven without one, e.g. JMH). */
    public static QueuePlacement oneReactor(Reactor r) {
        return new QueuePlacement(Mode.ONE_REACTOR, new Reactor[] {r}, 0);
    }

    /**
     * Queues {@code firstSpread} and up round-robin over {@code reactors} (in that order, the
     * first being home), the ones below on the first. With one reactor this is one-reactor
     * placement in all but name.
     */
    public static QueuePlacement spread(Reactor[] reactors, int firstSpread) {
        return new QueuePlacement(Mode.SPREAD, reactors.clone(), firstSpread);
    }

    public Mode mode() {
        return mode;
    }

    /** The reactors used, by lane; lane 0 is home. */
    public Reactor[] reactors() {
        return reactors.clone();
    }

    public int lanes() {
        return reactors.length;
    }

    public Reactor home() {
        return reactors[0];
    }

    public Reactor reactor(int lane) {
        return reactors[lane];
    }

    /** The lane (index into {@link #reactors()}) of queue {@code queueIndex}. */
    public int laneOf(int queueIndex) {
        if (reactors.length == 1 || queueIndex < firstSpread) return 0;
        return (queueIndex - firstSpread) % reactors.length;
    }

    public Reactor reactorOf(int queueIndex) {
        return reactors[laneOf(queueIndex)];
    }

    /** Queues of a {@code queueCount}-queue device that {@code r} runs: its share of the load. */
    public int queuesOn(Reactor r, int queueCount) {
        int n = 0;
        for (int q = 0; q < queueCount; q++) if (reactorOf(q) == r) n++;
        return n;
    }

    @Override
    public String toString() {
        int[] ids = new int[reactors.length];
        for (int i = 0; i < ids.length; i++) ids[i] = reactors[i] == null ? -1 : reactors[i].id();
        return mode.value + " " + Arrays.toString(ids);
    }
}
