package io.jvhost.vhost;

import io.jvhost.bdev.BlockChannel;
import io.jvhost.bdev.BlockRequest;
import io.jvhost.runtime.Reactor;
import io.jvhost.sys.Errno;
import io.jvhost.virtio.ChainError;
import io.jvhost.virtio.DescriptorChain;
import io.jvhost.virtio.LittleEndian;
import io.jvhost.virtio.VirtQueue;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import static io.jvhost.virtio.BlkLayout.*;

/**
 * virtio-blk request processing for one queue (VIRTIO 1.2, 5.2.6). One preallocated task per
 * head index; nothing is allocated per request. Framing is not assumed: the 16-byte header is
 * gathered from the start of the device-readable bytes, the status is the last device-writable
 * byte, and the data is what lies between.
 */
final class BlkQueueProcessor extends QueueProcessor implements BlockRequest.Completion {
    private final BlkDevice device;
    /** This reactor's channel to the bdev, shared with the other queues here (from start to stop). */
    private BlockChannel channel;
    /** Requests of this queue accepted by the channel and not completed yet. */
    private int inBlockLayer;
    /** Left the reactor: completions of abandoned requests that still arrive are ignored. */
    private boolean detached;
    /** The channel came from {@link ReactorChannels} (its wake fd is registered with the reactor). */
    private boolean sharedChannel;
    private final MemorySegment header = arena.allocate(HEADER_SIZE, 8);
    private final MemorySegment serial;
    private final Task[] tasks;
    private final long capacitySectors;
    private final int blockSize;
    private final boolean readOnly;
    /**
     * Heads whose submit was answered "no room now" (-EAGAIN/-ENOMEM), oldest first, resubmitted
     * on later polls (SPDK's spdk_bdev_queue_io_wait). Bounded by the queue size: a head is on
     * it at most once.
     */
    private final int[] retry;
    private int retryFirst, retryCount;

    /** seg_max data descriptors plus the header's and the status's. */
    static final int MAX_DESCRIPTORS = BlkDevice.SEG_MAX + 2;
    /**
     * size_max bytes of data per descriptor; a descriptor may also carry the 16-byte header
     * (a write's) or the status byte (a read's) beside its data when a driver merges them.
     */
    static final long MAX_DESCRIPTOR_BYTES = BlkDevice.SIZE_MAX + HEADER_SIZE;

    /** Per-head request state, reused. */
    private static final class Task implements DescriptorChain.BufferSink {
        final BlockRequest req;
        int head;
        int usedLen;
        /** In the block layer (accepted by submit, completion not yet delivered). */
        boolean submitted;
        MemorySegment statusSeg;
        long statusOff;
        boolean flushAfter;

        Task(int maxBuffers) {
            req = new BlockRequest(maxBuffers);
        }

        @Override
        public boolean add(MemorySegment segment, long offset, long length) {
            return req.addBuffer(segment, offset, length);
        }
    }

    BlkQueueProcessor(BlkDevice device, VirtQueue queue, Reactor reactor, int kickFd) {
        super(queue, reactor, kickFd, "vhost-blk " + device.name(), device.name());
        this.device = device;
        this.capacitySectors = device.bdev().sizeBytes() / SECTOR_SIZE;
        this.blockSize = device.bdev().blockSize();
        this.readOnly = device.readOnly();
        byte[] id = device.serial();
        this.serial = arena.allocate(ID_BYTES);
        MemorySegment.copy(id, 0, serial, ValueLayout.JAVA_BYTE, 0, ID_BYTES);
        // A driver sizes its indirect tables from our seg_max, not from the queue size.
        queue.acceptChainsUpTo(MAX_DESCRIPTORS);
        int maxBuffers = maxBuffers(queue.size());
        retry = new int[queue.size()];
        tasks = new Task[queue.size()];
        for (int i = 0; i < tasks.length; i++) {
            Task t = new Task(maxBuffers);
            t.req.completion(this);
            t.req.tag = i;
            tasks[i] = t;
        }
    }

    @Override
    protected void onStart() {
        if (channel == null) openChannel();
    }

    /**
     * On the reactor thread (from {@link #start()}): the reactor's shared channel to the bdev.
     * Driven directly by a test on another thread: a private channel, polled by this queue only.
     */
    private void openChannel() {
        if (reactor != null && reactor.onReactorThread()) { // null: a benchmark drives it without a reactor
            channel = ReactorChannels.acquire(reactor, device.bdev());
            sharedChannel = true;
        } else {
            channel = device.bdev().openChannel();
        }
    }

    @Override
    protected int pendingIo() {
        return inBlockLayer + retryCount;
    }

    @Override
    protected boolean ioWakesReactor() {
        return retryCount == 0 && sharedChannel && channel.wakeFd() >= 0; // the shared channel's wake fd is registered
    }

    @Override
    protected long ioWaitEstimateNanos() {
        return channel.expectedWaitNanos();
    }

    @Override
    protected int pollIo() {
        if (channel == null) openChannel(); // only when driven without start() (tests)
        int n = channel.poll();
        if (retryCount > 0) n += resubmitWaiting();
        return n;
    }

    @Override
    protected void onStopped() {
        detached = true;
        if (channel != null) {
            if (sharedChannel) ReactorChannels.release(reactor, device.bdev(), channel);
            else channel.close();
        }
    }

    @Override
    public void onChain(VirtQueue q, DescriptorChain c) {
        int head = c.head();
        long readable = c.readableBytes();
        long writable = c.writableBytes();
        if (writable < 1 || readable < HEADER_SIZE) {
            // No room for a status byte or no header: nothing meaningful to answer.
            q.stats().countRequestError();
            if (writable >= 1 && c.locateWritable(writable - 1)) c.locatedSegment().set(ValueLayout.JAVA_BYTE, c.locatedOffset(), (byte) S_IOERR);
            q.complete(head, writable >= 1 ? 1 : 0);
            return;
        }
        int type;
        long sector;
        if (c.length(0) >= HEADER_SIZE) {
            // The header in one descriptor (every front-end seen does this): two loads in place.
            // Buffer 0 is readable (readable >= HEADER_SIZE puts at least one readable buffer
            // first). Each field is read once, so a guest rewriting it meanwhile cannot make us
            // see two values.
            MemorySegment s = c.segment(0);
            long o = c.offset(0);
            type = s.get(LittleEndian.U32, o + HDR_TYPE);
            sector = s.get(LittleEndian.U64, o + HDR_SECTOR);
        } else {
            c.copyFromReadable(0, header, 0, HEADER_SIZE);
            type = header.get(LittleEndian.U32, HDR_TYPE);
            sector = header.get(LittleEndian.U64, HDR_SECTOR);
        }
        c.locateWritable(writable - 1);
        Task t = tasks[head];
        t.head = head;
        t.statusSeg = c.locatedSegment();
        t.statusOff = c.locatedOffset();
        t.flushAfter = false;
        BlockRequest req = t.req;
        if (c.descriptorCount() > MAX_DESCRIPTORS || c.longestDescriptor() > MAX_DESCRIPTOR_BYTES) {
            // Beyond the seg_max / size_max we advertised: refused rather than served, so every
            // back-end can rely on them (an iovec array, IOV_MAX) and the guest learns at once.
            q.countRefused(ChainError.EXCEEDS_DEVICE_LIMITS);
            answer(t, S_IOERR, 1);
            return;
        }
        switch (type) {
            case T_IN -> {
                long len = writable - 1;
                if (!checkRange(sector, len)) { answer(t, S_IOERR, 1); return; }
                req.reset(BlockRequest.Op.READ, sector * SECTOR_SIZE);
                if (!c.addWritableRange(t, 0, len)) { answer(t, S_IOERR, 1); return; }
                t.usedLen = (int) Math.min(Integer.MAX_VALUE, len + 1);
                submit(t);
            }
            case T_OUT -> {
                long len = readable - HEADER_SIZE;
                if (readOnly || !checkRange(sector, len)) { answer(t, S_IOERR, 1); return; }
                req.reset(BlockRequest.Op.WRITE, sector * SECTOR_SIZE);
                if (!c.addReadableRange(t, HEADER_SIZE, len)) { answer(t, S_IOERR, 1); return; }
                t.usedLen = 1;
                t.flushAfter = !device.writeback() && device.bdev().volatileWriteCache();
                submit(t);
            }
            case T_FLUSH -> {
                req.reset(BlockRequest.Op.FLUSH, 0);
                t.usedLen = 1;
                submit(t);
            }
            case T_GET_ID -> {
                long n = Math.min(ID_BYTES, writable - 1);
                c.copyToWritable(0, serial, 0, n);
                answer(t, S_OK, (int) n + 1);
            }
            case T_DISCARD, T_WRITE_ZEROES -> discardOrZero(c, t, type, readable);
            default -> answer(t, S_UNSUPP, 1);
        }
    }

    private void discardOrZero(DescriptorChain c, Task t, int type, long readable) {
        long payload = readable - HEADER_SIZE;
        if (readOnly) { answer(t, S_IOERR, 1); return; }
        if (payload != SEGMENT_SIZE) {
            // We announce max_discard_seg = max_write_zeroes_seg = 1 (5.2.6.2).
            answer(t, payload == 0 || payload % SEGMENT_SIZE != 0 ? S_IOERR : S_UNSUPP, 1);
            return;
        }
        c.copyFromReadable(HEADER_SIZE, header, 0, SEGMENT_SIZE);
        long sector = header.get(LittleEndian.U64, SEG_SECTOR);
        long num = Integer.toUnsignedLong(header.get(LittleEndian.U32, SEG_NUM_SECTORS));
        int flags = header.get(LittleEndian.U32, SEG_FLAGS);
        // 5.2.6.2: UNSUPP for unknown flags, and for the unmap flag on discard.
        if ((flags & ~WZ_FLAG_UNMAP) != 0 || (type == T_DISCARD && flags != 0)) { answer(t, S_UNSUPP, 1); return; }
        if (num > BlkDevice.MAX_DISCARD_SECTORS || !checkRange(sector, num * SECTOR_SIZE)) { answer(t, S_IOERR, 1); return; }
        t.req.reset(type == T_DISCARD ? BlockRequest.Op.UNMAP : BlockRequest.Op.WRITE_ZEROES, sector * SECTOR_SIZE);
        t.req.length = num * SECTOR_SIZE;
        t.usedLen = 1;
        submit(t);
    }

    /** Range and alignment check of a data transfer: inside the device, whole logical blocks. */
    private boolean checkRange(long sector, long len) {
        if (len % SECTOR_SIZE != 0) return false;
        if (Long.compareUnsigned(sector, capacitySectors) > 0) return false;
        if (len / SECTOR_SIZE > capacitySectors - sector) return false;
        long off = sector * SECTOR_SIZE;
        return off % blockSize == 0 && len % blockSize == 0;
    }

    private void submit(Task t) {
        if (retryCount > 0) {
            waitForRoom(t); // keep the order: behind the requests already waiting
            return;
        }
        int rc = channel.submit(t.req);
        if (rc == 0) {
            t.submitted = true;
            inBlockLayer++;
        } else if (rc == -Errno.EAGAIN || rc == -Errno.ENOMEM) {
            waitForRoom(t);
        } else {
            // Not accepted: no completion will come (submit contract); answer now.
            t.req.clearBuffers();
            answer(t, rc == -Errno.ENOTSUP ? S_UNSUPP : S_IOERR, t.usedLen);
        }
    }

    /** Back-pressure from the block layer is transient: queue the request, never fail the guest. */
    private void waitForRoom(Task t) {
        queue.stats().countBusyRetry();
        retry[(retryFirst + retryCount) % retry.length] = t.head;
        retryCount++;
    }

    /** Resubmits waiting requests in order until the channel pushes back again; returns how many went in. */
    private int resubmitWaiting() {
        int n = 0;
        while (retryCount > 0) {
            Task t = tasks[retry[retryFirst]];
            int rc = channel.submit(t.req);
            if (rc == -Errno.EAGAIN || rc == -Errno.ENOMEM) break;
            retryFirst = (retryFirst + 1) % retry.length;
            retryCount--;
            n++;
            if (rc == 0) {
                t.submitted = true;
                inBlockLayer++;
            } else {
                t.req.clearBuffers();
                answer(t, rc == -Errno.ENOTSUP ? S_UNSUPP : S_IOERR, t.usedLen);
            }
        }
        return n;
    }

    /** Completes a request that never reached the block device. */
    private void answer(Task t, int status, int usedLen) {
        if (status != S_OK) queue.stats().countRequestError();
        t.statusSeg.set(ValueLayout.JAVA_BYTE, t.statusOff, (byte) status);
        t.statusSeg = null;
        queue.complete(t.head, usedLen);
    }

    @Override
    public void onComplete(BlockRequest req, int status) {
        if (detached) return; // abandoned at a forced stop; its guest memory may be gone
        Task t = tasks[req.tag];
        t.submitted = false;
        inBlockLayer--;
        if (queue.isFaulted()) {
            completeAfterFault(t, status);
            return;
        }
        if (status == 0) countBytes(req);
        if (status == 0 && t.flushAfter) {
            // Write-through mode (WCE = 0) on a device with a volatile cache: flush before answering.
            t.flushAfter = false;
            req.clearBuffers();
            req.reset(BlockRequest.Op.FLUSH, 0);
            submit(t);
            return;
        }
        req.clearBuffers();
        if (status != 0) queue.stats().countRequestError();
        t.statusSeg.set(ValueLayout.JAVA_BYTE, t.statusOff, (byte) (status == 0 ? S_OK : S_IOERR));
        t.statusSeg = null;
        queue.complete(t.head, t.usedLen);
    }

    /** Data bytes of a successful read or write (a write-through write counts before its flush). */
    private void countBytes(BlockRequest req) {
        if (req.op == BlockRequest.Op.READ) queue.stats().addBytesRead(req.length);
        else if (req.op == BlockRequest.Op.WRITE) queue.stats().addBytesWritten(req.length);
    }

    /** A block-layer completion after the queue faulted: answer if the status byte survived. */
    private void completeAfterFault(Task t, int status) {
        t.req.clearBuffers();
        MemorySegment seg = t.statusSeg;
        t.statusSeg = null;
        if (!answerable(seg)) {
            drop(t.head);
            return;
        }
        if (status != 0) queue.stats().countRequestError();
        seg.set(ValueLayout.JAVA_BYTE, t.statusOff, (byte) (status == 0 ? S_OK : S_IOERR));
        queue.complete(t.head, t.usedLen);
    }

    @Override
    protected void onFaulted() {
        // Requests waiting for room never reached the block layer: answer or drop them now.
        while (retryCount > 0) {
            Task t = tasks[retry[retryFirst]];
            retryFirst = (retryFirst + 1) % retry.length;
            retryCount--;
            completeAfterFault(t, -Errno.EIO);
        }
        // The chain being processed when the fault hit (a header or data access) is in flight
        // but not in the block layer: fail it with an I/O error if its status byte survived.
        DescriptorChain c = queue.lastChain();
        int h = c.head();
        if (!queue.isInFlight(h) || tasks[h].submitted) return;
        tasks[h].req.clearBuffers();
        tasks[h].statusSeg = null;
        long w = c.writableBytes();
        if (w >= 1 && c.locateWritable(w - 1) && answerable(c.locatedSegment())) {
            queue.stats().countRequestError();
            c.locatedSegment().set(ValueLayout.JAVA_BYTE, c.locatedOffset(), (byte) S_IOERR);
            queue.complete(h, 1);
        } else {
            drop(h);
        }
    }
}
