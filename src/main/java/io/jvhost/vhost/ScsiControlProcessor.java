package io.jvhost.vhost;

import io.jvhost.runtime.Reactor;
import io.jvhost.scsi.ScsiTarget;
import io.jvhost.scsi.ScsiTmf;
import io.jvhost.virtio.DescriptorChain;
import io.jvhost.virtio.LittleEndian;
import io.jvhost.virtio.SplitVirtQueue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import static io.jvhost.virtio.ScsiLayout.*;

/**
 * The virtio-scsi control queue (VIRTIO 1.2, 5.6.6.2): task management functions, answered when
 * the SCSI layer has finished them (aborted commands complete first), and asynchronous
 * notification query/subscribe, answered with no events supported.
 */
final class ScsiControlProcessor extends QueueProcessor {
    private static final ScsiTmf.Function[] SUBTYPES = {
            ScsiTmf.Function.ABORT_TASK, ScsiTmf.Function.ABORT_TASK_SET, ScsiTmf.Function.CLEAR_ACA,
            ScsiTmf.Function.CLEAR_TASK_SET, ScsiTmf.Function.I_T_NEXUS_RESET, ScsiTmf.Function.LOGICAL_UNIT_RESET,
            ScsiTmf.Function.QUERY_TASK, ScsiTmf.Function.QUERY_TASK_SET};

    private final VirtioScsiDevice device;
    private final Arena arena = Arena.ofShared();
    private final MemorySegment req = arena.allocate(TMF_REQ_SIZE, 8);
    private final Slot[] slots;
    private int pending;

    private final class Slot implements ScsiTmf.Completion {
        final ScsiTmf tmf = new ScsiTmf().completion(this);
        int head;
        MemorySegment respSeg;
        long respOff;

        @Override
        public void onTmfComplete(ScsiTmf t) {
            int r = switch (t.response()) {
                case FUNCTION_COMPLETE -> S_OK;
                case FUNCTION_SUCCEEDED -> S_FUNCTION_SUCCEEDED;
                case FUNCTION_REJECTED -> S_FUNCTION_REJECTED;
                case INCORRECT_LOGICAL_UNIT_NUMBER -> S_INCORRECT_LUN;
            };
            pending--; // first: a fault writing the response must not leave it pending
            MemorySegment seg = respSeg;
            respSeg = null;
            if (queue.isFaulted() && !answerable(seg)) {
                drop(head); // the response would go into memory that is gone
                return;
            }
            seg.set(ValueLayout.JAVA_BYTE, respOff, (byte) r);
            queue.complete(head, TMF_RESP_SIZE);
        }
    }

    ScsiControlProcessor(VirtioScsiDevice device, SplitVirtQueue queue, Reactor reactor, int kickFd) {
        super(queue, reactor, kickFd, "vhost-scsi " + device.name() + " controlq", device.name());
        this.device = device;
        slots = new Slot[queue.size()];
        for (int i = 0; i < slots.length; i++) slots[i] = new Slot();
    }

    @Override
    protected int pendingIo() {
        return pending;
    }

    @Override
    protected int pollIo() {
        return device.pollChannels();
    }

    @Override
    protected void onStopped() {
        arena.close();
    }

    @Override
    public void onChain(SplitVirtQueue q, DescriptorChain c) {
        int head = c.head();
        long readable = c.readableBytes();
        long writable = c.writableBytes();
        if (readable < 4 || writable < 1) {
            q.stats.countRequestError();
            q.complete(head, 0);
            return;
        }
        c.copyFromReadable(0, req, 0, Math.min(readable, TMF_REQ_SIZE));
        int type = req.get(LittleEndian.U32, 0);
        c.locateWritable(0);
        MemorySegment rs = c.locatedSegment();
        long ro = c.locatedOffset();
        switch (type) {
            case T_TMF -> {
                if (readable < TMF_REQ_SIZE) {
                    q.stats.countRequestError();
                    rs.set(ValueLayout.JAVA_BYTE, ro, (byte) S_FAILURE);
                    q.complete(head, TMF_RESP_SIZE);
                    return;
                }
                int subtype = req.get(LittleEndian.U32, 4);
                int targetId = target(req.get(ValueLayout.JAVA_BYTE, 8), req.get(ValueLayout.JAVA_BYTE, 9));
                int lun = lun(req.get(ValueLayout.JAVA_BYTE, 10), req.get(ValueLayout.JAVA_BYTE, 11));
                long tag = req.get(LittleEndian.U64, 16);
                ScsiTarget t = targetId < 0 ? null : device.scsi().target(targetId);
                if (t == null || t.state() != ScsiTarget.State.ACTIVE) {
                    rs.set(ValueLayout.JAVA_BYTE, ro, (byte) S_BAD_TARGET);
                    q.complete(head, TMF_RESP_SIZE);
                    return;
                }
                if (subtype < 0 || subtype >= SUBTYPES.length) {
                    rs.set(ValueLayout.JAVA_BYTE, ro, (byte) S_FUNCTION_REJECTED);
                    q.complete(head, TMF_RESP_SIZE);
                    return;
                }
                Slot s = slots[head];
                s.head = head;
                s.respSeg = rs;
                s.respOff = ro;
                pending++;
                s.tmf.set(SUBTYPES[subtype], lun, tag);
                // Task management runs on this reactor, which owns every queue of the device.
                t.manage(s.tmf);
            }
            case T_AN_QUERY, T_AN_SUBSCRIBE -> {
                if (readable < AN_REQ_SIZE || writable < AN_RESP_SIZE) {
                    q.stats.countRequestError();
                    q.complete(head, 0);
                    return;
                }
                // No asynchronous notification classes are supported: event_actual = 0.
                for (int i = 0; i < 4; i++) {
                    c.locateWritable(i);
                    c.locatedSegment().set(ValueLayout.JAVA_BYTE, c.locatedOffset(), (byte) 0);
                }
                c.locateWritable(4);
                c.locatedSegment().set(ValueLayout.JAVA_BYTE, c.locatedOffset(), (byte) S_OK);
                q.complete(head, AN_RESP_SIZE);
            }
            default -> {
                q.stats.countRequestError();
                rs.set(ValueLayout.JAVA_BYTE, ro, (byte) S_FAILURE);
                q.complete(head, TMF_RESP_SIZE);
            }
        }
    }
}
