package io.jvhost.vhost;

import io.jvhost.runtime.Reactor;
import io.jvhost.virtio.DescriptorChain;
import io.jvhost.virtio.LittleEndian;
import io.jvhost.virtio.VirtQueue;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import static io.jvhost.virtio.ScsiLayout.*;

/**
 * The virtio-scsi event queue (VIRTIO 1.2, 5.6.6.3): the driver posts empty 16-byte buffers; we
 * park them and fill one per event (hot-attach RESCAN, hot-detach REMOVED). Events that arrive
 * while no buffer is parked wait in the device and go out when buffers come.
 */
final class ScsiEventProcessor extends QueueProcessor {
    private final VirtioScsiDevice device;
    private final int[] heads;
    private final MemorySegment[] segs;
    private final long[] offs;
    private int first, count;

    ScsiEventProcessor(VirtioScsiDevice device, VirtQueue queue, Reactor reactor, int kickFd) {
        super(queue, reactor, kickFd, "vhost-scsi " + device.name() + " eventq", device.name());
        this.device = device;
        heads = new int[queue.size()];
        segs = new MemorySegment[queue.size()];
        offs = new long[queue.size()];
    }

    @Override
    public void start() {
        super.start();
        device.eventProcessor(this);
    }

    @Override
    protected int parkedChains() {
        return count;
    }

    @Override
    protected void releaseParked() {
        // The ring stops with buffers parked: hand them back as "no event"; the driver re-posts them.
        while (count > 0) fill(T_NO_EVENT, 0, 0, false);
        queue.flush();
    }

    @Override
    protected void onFaulted() {
        // Parked buffers may lie in memory that is gone: forget them (the driver re-posts after a reset).
        while (count > 0) {
            segs[first] = null;
            drop(heads[first]);
            first = (first + 1) % heads.length;
            count--;
        }
    }

    @Override
    protected void onStopped() {
        device.eventProcessor(null);
    }

    @Override
    public void onChain(VirtQueue q, DescriptorChain c) {
        if (c.writableBytes() < EVENT_SIZE || c.readableBytes() != 0 || !c.locateWritable(0) || c.locatedContiguous() < EVENT_SIZE) {
            q.stats().countRequestError();
            q.complete(c.head(), 0);
            return;
        }
        int slot = (first + count) % heads.length;
        heads[slot] = c.head();
        segs[slot] = c.locatedSegment();
        offs[slot] = c.locatedOffset();
        count++;
        deliver();
    }

    /** Sends pending events into parked buffers (reactor thread). */
    void deliver() {
        if (queue.isFaulted()) return; // events wait for the next start of the queue
        boolean any = false;
        while (count > 0 && device.hasPendingEvents()) {
            int[] e = device.nextEvent();
            fill(e[0], e[1], e[2], true);
            any = true;
        }
        if (any) queue.flush();
    }

    private void fill(int event, int target, int reason, boolean withLun) {
        MemorySegment s = segs[first];
        long o = offs[first];
        s.asSlice(o, EVENT_SIZE).fill((byte) 0);
        s.set(LittleEndian.U32, o, event);
        if (withLun) {
            s.set(ValueLayout.JAVA_BYTE, o + 4, (byte) 1);
            s.set(ValueLayout.JAVA_BYTE, o + 5, (byte) target);
        }
        s.set(LittleEndian.U32, o + 12, reason);
        segs[first] = null;
        queue.complete(heads[first], EVENT_SIZE);
        first = (first + 1) % heads.length;
        count--;
    }
}
