package io.jvhost.vhost;

import io.jvhost.bdev.BlockChannel;
import io.jvhost.bdev.BlockDevice;
import io.jvhost.runtime.Reactor;

import java.util.IdentityHashMap;
import java.util.Map;
import java.util.WeakHashMap;

/**
 * Block channels per (bdev, reactor), as SPDK's io channels: every queue of every controller on
 * one reactor that uses a bdev shares one channel, opened by the first and closed by the last
 * (reference-counted). The channel's wake fd, if any, is registered with the reactor once, for
 * as long as the channel is open. Reactor thread only (acquire and release check it); requests
 * keep their own completion callbacks, so whichever queue polls the channel delivers every
 * queue's completions.
 */
final class ReactorChannels {
    private ReactorChannels() {}

    private static final class Entry {
        final BlockChannel channel;
        int refs;

        Entry(BlockChannel channel) {
            this.channel = channel;
        }
    }

    /** Per reactor (weakly: a closed reactor's map goes with it); each inner map is used by its reactor only. */
    private static final Map<Reactor, Map<BlockDevice, Entry>> BY_REACTOR = new WeakHashMap<>();

    private static Map<BlockDevice, Entry> of(Reactor reactor) {
        if (!reactor.onReactorThread()) throw new IllegalStateException("block channels are opened on their reactor thread");
        synchronized (BY_REACTOR) {
            return BY_REACTOR.computeIfAbsent(reactor, r -> new IdentityHashMap<>());
        }
    }

    /** The reactor's channel to {@code dev}, opened (and its wake fd registered) on first use. */
    static BlockChannel acquire(Reactor reactor, BlockDevice dev) {
        Map<BlockDevice, Entry> m = of(reactor);
        Entry e = m.get(dev);
        if (e == null) {
            BlockChannel ch = dev.openChannel();
            try {
                if (ch.wakeFd() >= 0) reactor.addWakeFd(ch.wakeFd());
            } catch (RuntimeException ex) {
                ch.close();
                throw ex;
            }
            e = new Entry(ch);
            m.put(dev, e);
        }
        e.refs++;
        return e.channel;
    }

    /** Drops one reference; the last closes the channel (abandoning whatever is still in it). */
    static void release(Reactor reactor, BlockDevice dev, BlockChannel ch) {
        Map<BlockDevice, Entry> m = of(reactor);
        Entry e = m.get(dev);
        if (e == null || e.channel != ch) {
            ch.close(); // not ours (cannot happen): do not leak it
            return;
        }
        if (--e.refs > 0) return;
        m.remove(dev);
        if (ch.wakeFd() >= 0) reactor.removeWakeFd(ch.wakeFd());
        ch.close();
    }

    /** Channels open on {@code reactor} (tests; reactor thread). */
    static int openCount(Reactor reactor) {
        return of(reactor).size();
    }
}
