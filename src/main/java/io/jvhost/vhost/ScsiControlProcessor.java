package io.jvhost.vhost;

import io.jvhost.runtime.Reactor;
import io.jvhost.scsi.ScsiTarget;
import io.jvhost.scsi.ScsiTmf;
import io.jvhost.virtio.DescriptorChain;
import io.jvhost.virtio.LittleEndian;
import io.jvhost.virtio.VirtQueue;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import static io.jvhost.virtio.ScsiLayout.*;

/**
 * The virtio-scsi control queue (VIRTIO 1.2, 5.6.6.2): task management functions, answered when
 * the SCSI layer has finished them (aborted commands complete first), and asynchronous
 * notification query/subscribe, answered with no events supported.
 *
 * <p><b>Lanes.</b> When the device's request queues are spread over several reactors, the
 * tasks a function affects may be on any of them, and each reactor alone may touch its tasks.
 * The function is then sent as a message to every lane's reactor (this one included), runs
 * there on that lane's tasks, and each lane's answer comes back as a message to this reactor;
 * the response is written once every lane has answered: FUNCTION SUCCEEDED if any lane found
 * the queried task(s), INCORRECT LUN or REJECTED if a lane said so, FAILURE if a lane's reactor
 * could not be reached. TMFs are rare: these messages allocate, the I/O path does not.
 */
final class ScsiControlProcessor extends QueueProcessor {
    private static final ScsiTmf.Function[] SUBTYPES = {
            ScsiTmf.Function.ABORT_TASK, ScsiTmf.Function.ABORT_TASK_SET, ScsiTmf.Function.CLEAR_ACA,
            ScsiTmf.Function.CLEAR_TASK_SET, ScsiTmf.Function.I_T_NEXUS_RESET, ScsiTmf.Function.LOGICAL_UNIT_RESET,
            ScsiTmf.Function.QUERY_TASK, ScsiTmf.Function.QUERY_TASK_SET};

    private final VirtioScsiDevice device;
    private final MemorySegment req = arena.allocate(TMF_REQ_SIZE, 8);
    private final Slot[] slots;
    private int pending;

    private final class Slot implements ScsiTmf.Completion {
        final ScsiTmf tmf = new ScsiTmf().completion(this);
        int head;
        MemorySegment respSeg;
        long respOff;
        // Several lanes (this reactor only): one function per lane, and what they answered.
        ScsiTmf[] laneTmfs;
        int lanesPending;
        boolean anySucceeded, anyIncorrectLun, anyRejected, anyFailed;

        @Override
        public void onTmfComplete(ScsiTmf t) {
            respond(code(t.response()));
        }

        /** A lane's answer ({@code null}: its reactor could not be reached); this reactor. */
        void laneAnswered(ScsiTmf.Response r) {
            if (r == null) anyFailed = true;
            else if (r == ScsiTmf.Response.FUNCTION_SUCCEEDED) anySucceeded = true;
            else if (r == ScsiTmf.Response.INCORRECT_LOGICAL_UNIT_NUMBER) anyIncorrectLun = true;
            else if (r == ScsiTmf.Response.FUNCTION_REJECTED) anyRejected = true;
            if (--lanesPending > 0) return;
            respond(anyFailed ? S_FAILURE : anyIncorrectLun ? S_INCORRECT_LUN : anyRejected ? S_FUNCTION_REJECTED
                    : anySucceeded ? S_FUNCTION_SUCCEEDED : S_OK);
        }

        private void respond(int r) {
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

    private static int code(ScsiTmf.Response r) {
        return switch (r) {
            case FUNCTION_COMPLETE -> S_OK;
            case FUNCTION_SUCCEEDED -> S_FUNCTION_SUCCEEDED;
            case FUNCTION_REJECTED -> S_FUNCTION_REJECTED;
            case INCORRECT_LOGICAL_UNIT_NUMBER -> S_INCORRECT_LUN;
        };
    }

    ScsiControlProcessor(VirtioScsiDevice device, VirtQueue queue, Reactor reactor, int kickFd) {
        super(queue, reactor, kickFd, "vhost-scsi " + device.name() + " controlq");
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
        return device.pollChannels(device.laneOf(queue.index()));
    }


    @Override
    public void onChain(VirtQueue q, DescriptorChain c) {
        int head = c.head();
        long readable = c.readableBytes();
        long writable = c.writableBytes();
        if (readable < 4 || writable < 1) {
            reject(head);
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
                    q.stats().countRequestError();
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
                if (device.lanes() == 1) {
                    // Task management runs on this reactor, which owns every queue of the device.
                    s.tmf.set(SUBTYPES[subtype], lun, tag);
                    t.manage(s.tmf);
                } else {
                    toEveryLane(s, t, SUBTYPES[subtype], lun, tag);
                }
            }
            case T_AN_QUERY, T_AN_SUBSCRIBE -> {
                if (readable < AN_REQ_SIZE || writable < AN_RESP_SIZE) {
                    reject(head);
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
                q.stats().countRequestError();
                rs.set(ValueLayout.JAVA_BYTE, ro, (byte) S_FAILURE);
                q.complete(head, TMF_RESP_SIZE);
            }
        }
    }

    /** Sends the function to every lane's reactor; each answer comes back here (see the class comment). */
    private void toEveryLane(Slot s, ScsiTarget t, ScsiTmf.Function f, int lun, long tag) {
        int lanes = device.lanes();
        if (s.laneTmfs == null) s.laneTmfs = new ScsiTmf[lanes];
        s.lanesPending = lanes;
        s.anySucceeded = s.anyIncorrectLun = s.anyRejected = s.anyFailed = false;
        for (int lane = 0; lane < lanes; lane++) {
            ScsiTmf sub = s.laneTmfs[lane];
            // One still pending (its reactor died with it) is left behind rather than reused.
            if (sub == null || sub.busy()) s.laneTmfs[lane] = sub = new ScsiTmf();
            sub.set(f, lun, tag);
            sub.lane = lane;
            // Runs on the lane's reactor when the function is done there; the answer comes home.
            sub.completion(x -> {
                ScsiTmf.Response r = x.response();
                if (reactor.onReactorThread()) {
                    s.laneAnswered(r);
                } else {
                    reactor.call(() -> {
                        s.laneAnswered(r);
                        return null;
                    });
                }
            });
            Reactor r = device.laneReactor(lane);
            if (r == reactor) {
                t.manage(sub);
            } else {
                ScsiTmf toRun = sub;
                r.call(() -> {
                    t.manage(toRun);
                    return null;
                }).whenComplete((v, e) -> {
                    if (e == null) return;
                    log.warn("vhost-scsi {} controlq: task management could not run on reactor {}: {}", device.name(), r.id(), e.toString());
                    reactor.call(() -> {
                        s.laneAnswered(null);
                        return null;
                    });
                });
            }
        }
    }

    private static final org.slf4j.Logger log = org.slf4j.LoggerFactory.getLogger(ScsiControlProcessor.class);
}
