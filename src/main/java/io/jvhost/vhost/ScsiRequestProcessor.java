package io.jvhost.vhost;

import io.jvhost.runtime.Reactor;
import io.jvhost.scsi.ScsiStatus;
import io.jvhost.scsi.ScsiTarget;
import io.jvhost.scsi.ScsiTask;
import io.jvhost.virtio.DescriptorChain;
import io.jvhost.virtio.LittleEndian;
import io.jvhost.virtio.VirtQueue;

import io.jvhost.memory.SgList;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import static io.jvhost.virtio.ScsiLayout.*;

/**
 * One virtio-scsi request queue (VIRTIO 1.2, 5.6.6.1): decodes virtio_scsi_req_cmd, runs the
 * command on the addressed target through the transport-free SCSI layer, and writes
 * virtio_scsi_resp_cmd. One preallocated slot (task, response location) per head.
 */
final class ScsiRequestProcessor extends QueueProcessor {
    private static final int MAX_RESP_PIECES = 4;
    /** Source of zeros for the response buffer (never written). */
    private static final MemorySegment ZEROS = Arena.global().allocate(RESP_HEADER + 256, 8);

    private final VirtioScsiDevice device;
    private final MemorySegment header;
    private final Slot[] slots;
    private final int cdbSize;
    private final int senseSize;
    private final int reqSize;
    private final int respSize;
    private int inFlightTasks;
    /** The device's lane of this queue's reactor: whose channels and LUN task lists it uses. */
    private final int lane;

    /** Per-head state, reused; also the buffer sink that feeds the task. */
    private final class Slot implements DescriptorChain.BufferSink, ScsiTask.Completion {
        final ScsiTask task;
        final MemorySegment resp;
        /** Where the response header goes: the first respSize writable bytes. */
        final SgList respPieces = new SgList(MAX_RESP_PIECES, MAX_RESP_PIECES);
        int head;
        boolean dataIn;
        /** Handed to the SCSI layer, completion not yet delivered. */
        boolean executing;

        /** After a fault: can the response still be written (every piece in surviving memory)? */
        boolean answerable() {
            for (int i = 0; i < respPieces.count(); i++) if (!ScsiRequestProcessor.this.answerable(respPieces.segment(i))) return false;
            return respPieces.count() > 0;
        }

        Slot(int maxBuffers) {
            task = new ScsiTask(maxBuffers).completion(this);
            resp = arena.allocate(RESP_HEADER + 256, 8);
        }

        @Override
        public boolean add(MemorySegment segment, long offset, long length) {
            return task.addBuffer(segment, offset, length);
        }

        /** Records where the response header goes: the first respSize writable bytes. */
        final DescriptorChain.BufferSink respSink = respPieces::add;

        /**
         * Writes virtio_scsi_resp_cmd to the recorded location. Sense bytes, when any, were put
         * at RESP_SENSE in {@link #resp} already; everything else up to respSize is zeroed.
         */
        void writeResponse(int response, int status, int senseLen, long residual) {
            // Zeroed by copying from a zero segment: asSlice(..).fill would allocate a slice per call.
            MemorySegment.copy(ZEROS, 0, resp, 0, RESP_HEADER);
            MemorySegment.copy(ZEROS, 0, resp, RESP_SENSE + senseLen, respSize - RESP_SENSE - senseLen);
            resp.set(LittleEndian.U32, RESP_SENSE_LEN, senseLen);
            resp.set(LittleEndian.U32, RESP_RESIDUAL, (int) Math.min(residual, 0xffffffffL));
            resp.set(ValueLayout.JAVA_BYTE, RESP_STATUS, (byte) status);
            resp.set(ValueLayout.JAVA_BYTE, RESP_RESPONSE, (byte) response);
            long done = 0;
            for (int i = 0; i < respPieces.count(); i++) {
                MemorySegment.copy(resp, done, respPieces.segment(i), respPieces.offset(i), respPieces.length(i));
                done += respPieces.length(i);
            }
            respPieces.clear();
        }

        @Override
        public void onTaskComplete(ScsiTask t) {
            // Accounted first: if writing the response faults, the task is still not pending.
            inFlightTasks--;
            executing = false;
            if (queue.isFaulted() && !answerable()) {
                // The response would go into memory that is gone: write nothing, forget the request.
                respPieces.clear();
                drop(head);
                return;
            }
            int response = S_OK;
            int status = 0;
            int senseLen = 0;
            if (t.targetUnavailable()) {
                response = S_BAD_TARGET;
            } else if (t.status() == ScsiStatus.TASK_ABORTED) {
                response = S_ABORTED;
            } else {
                status = t.status();
                senseLen = Math.min(t.senseLength(), senseSize);
                if (senseLen > 0) MemorySegment.copy(t.senseBuffer(), 0, resp, ValueLayout.JAVA_BYTE, RESP_SENSE, senseLen);
            }
            writeResponse(response, status, senseLen, t.residual());
            if (response == S_OK && status == 0) {
                if (dataIn) queue.stats().addBytesRead(t.dataTransferred());
                else if (t.direction() == ScsiTask.Direction.TO_DEVICE) queue.stats().addBytesWritten(t.dataTransferred());
            }
            long used = respSize + (dataIn && response == S_OK ? t.dataTransferred() : 0);
            queue.complete(head, (int) Math.min(used, Integer.MAX_VALUE));
        }
    }

    /**
     * seg_max data descriptors plus the request's and the response's. Not enforced per command,
     * unlike virtio-blk's: QEMU's vhost-user-scsi never asks for our config space and shows the
     * guest its own (seg_max = virtqueue_size - 2, max_sectors = 0xffff), so a guest may
     * rightly send more segments than we announce; the chain limit (at least the queue size)
     * bounds the walk, and the SCSI layer bounds the transfer (its Block Limits VPD maximum
     * transfer length, CHECK CONDITION beyond).
     */
    static final int MAX_DESCRIPTORS = VirtioScsiDevice.SEG_MAX + 2;

    ScsiRequestProcessor(VirtioScsiDevice device, VirtQueue queue, Reactor reactor, int kickFd) {
        super(queue, reactor, kickFd, "vhost-scsi " + device.name(), device.name());
        this.device = device;
        this.lane = device.laneOf(queue.index());
        this.cdbSize = device.cdbSize();
        this.senseSize = device.senseSize();
        this.reqSize = REQ_HEADER + cdbSize;
        this.respSize = RESP_HEADER + senseSize;
        this.header = arena.allocate(REQ_HEADER + 32, 8);
        // A driver sizes its indirect tables from our seg_max, not from the queue size.
        queue.acceptChainsUpTo(MAX_DESCRIPTORS);
        int maxBuffers = maxBuffers(queue.size());
        slots = new Slot[queue.size()];
        for (int i = 0; i < slots.length; i++) {
            slots[i] = new Slot(maxBuffers);
            slots[i].task.lane(lane);
        }
    }

    @Override
    protected int pendingIo() {
        return inFlightTasks;
    }

    @Override
    protected boolean ioWakesReactor() {
        return device.ioWakesReactor(lane);
    }

    @Override
    protected long ioWaitEstimateNanos() {
        return device.ioWaitNanos(lane);
    }

    @Override
    protected int pollIo() {
        return device.pollChannels(lane);
    }

    @Override
    public void onChain(VirtQueue q, DescriptorChain c) {
        int head = c.head();
        long readable = c.readableBytes();
        long writable = c.writableBytes();
        Slot s = slots[head];
        s.head = head;
        s.respPieces.clear();
        if (readable < reqSize || writable < respSize || !c.addWritableRange(s.respSink, 0, respSize)) {
            // Too short for the request or response header (or a response scattered over too
            // many buffers): nothing sensible to answer.
            q.stats().countRequestError();
            s.respPieces.clear();
            reject(head);
            return;
        }
        c.copyFromReadable(0, header, 0, reqSize);
        byte l0 = header.get(ValueLayout.JAVA_BYTE, REQ_LUN);
        byte l1 = header.get(ValueLayout.JAVA_BYTE, REQ_LUN + 1);
        int targetId = target(l0, l1);
        ScsiTarget t = targetId < 0 ? null : device.scsi().target(targetId);
        if (t == null || t.state() != ScsiTarget.State.ACTIVE) {
            s.writeResponse(S_BAD_TARGET, 0, 0, 0);
            q.complete(head, respSize);
            return;
        }
        long dataOut = readable - reqSize;
        long dataIn = writable - respSize;
        if (dataOut > 0 && dataIn > 0) {
            // Bidirectional commands need VIRTIO_SCSI_F_INOUT, which we do not offer.
            q.stats().countRequestError();
            s.writeResponse(S_FAILURE, 0, 0, 0);
            q.complete(head, respSize);
            return;
        }
        ScsiTask task = s.task;
        task.reset().cdb(header, REQ_CDB, cdbSize)
                .lun(lun(header.get(ValueLayout.JAVA_BYTE, REQ_LUN + 2), header.get(ValueLayout.JAVA_BYTE, REQ_LUN + 3)))
                .tag(header.get(LittleEndian.U64, REQ_ID));
        boolean ok;
        if (dataOut > 0) {
            task.direction(ScsiTask.Direction.TO_DEVICE);
            ok = c.addReadableRange(s, reqSize, dataOut);
            s.dataIn = false;
        } else if (dataIn > 0) {
            task.direction(ScsiTask.Direction.FROM_DEVICE);
            ok = c.addWritableRange(s, respSize, dataIn);
            s.dataIn = true;
        } else {
            task.direction(ScsiTask.Direction.NONE);
            ok = true;
            s.dataIn = false;
        }
        if (!ok) {
            q.stats().countRequestError();
            s.writeResponse(S_FAILURE, 0, 0, 0);
            q.complete(head, respSize);
            return;
        }
        inFlightTasks++;
        s.executing = true;
        t.execute(task, device.channelFor(lane, t));
    }

    @Override
    protected void onFaulted() {
        // The chain being decoded when the fault hit: answer it with a failure if its response
        // location survived, else forget it. Tasks in the SCSI layer are answered as they complete.
        DescriptorChain c = queue.lastChain();
        int h = c.head();
        if (!queue.isInFlight(h) || slots[h].executing) return;
        Slot s = slots[h];
        if (s.head == h && s.answerable()) {
            queue.stats().countRequestError();
            s.writeResponse(S_FAILURE, 0, 0, 0);
            queue.complete(h, respSize);
        } else {
            s.respPieces.clear();
            drop(h);
        }
    }
}
