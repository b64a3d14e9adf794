package io.jvhost.vhost;

import io.jvhost.bdev.BlockDevice;
import io.jvhost.runtime.Reactor;
import io.jvhost.virtio.LittleEndian;
import io.jvhost.virtio.VirtQueue;
import io.jvhost.virtio.VirtioFeatures;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import static io.jvhost.virtio.BlkLayout.*;

/**
 * virtio-blk over vhost-user (VIRTIO 1.2, 5.2): features, config space and queue processors for
 * one block device. Config reads/writes come from the session thread; WCE is the only writable
 * field (5.2.5, CONFIG_WCE).
 */
public final class BlkDevice implements VhostUserDevice {
    /** Largest number of data segments per request we announce (seg_max). */
    public static final int SEG_MAX = 126;
    /** Largest single segment (size_max). */
    public static final int SIZE_MAX = 1 << 20;
    /** Largest discard / write-zeroes request in sectors (1 GiB). */
    public static final int MAX_DISCARD_SECTORS = 1 << 21;

    private final String name;
    private final BlockDevice bdev;
    private final boolean readOnly;
    private final int numQueues;
    private final QueuePlacement placement;
    private volatile boolean writeback;
    /** VIRTIO_F_RING_PACKED is offered (SPDK's packed_ring); set before the controller listens. */
    private volatile boolean packedRing;

    public BlkDevice(String name, BlockDevice bdev, boolean readOnly, int numQueues, Reactor reactor) {
        this(name, bdev, readOnly, numQueues, QueuePlacement.oneReactor(reactor));
    }

    /** Queues on the reactors {@code placement} gives them (each reactor shares one channel to the bdev). */
    public BlkDevice(String name, BlockDevice bdev, boolean readOnly, int numQueues, QueuePlacement placement) {
        if (numQueues < 1 || numQueues > 64) throw new IllegalArgumentException("num_queues must be 1..64, got " + numQueues);
        this.name = name;
        this.bdev = bdev;
        this.readOnly = readOnly || bdev.readOnly();
        this.numQueues = numQueues;
        this.placement = placement;
        this.writeback = bdev.volatileWriteCache();
    }

    public BlockDevice bdev() { return bdev; }
    public boolean readOnly() { return readOnly; }
    public boolean writeback() { return writeback; }
    /** Is VIRTIO_F_RING_PACKED offered? */
    public boolean packedRing() { return packedRing; }
    /** Offers VIRTIO_F_RING_PACKED (or not) to front-ends that connect from now on. */
    public void offerPackedRing(boolean on) { packedRing = on; }
    public String name() { return name; }

    @Override public int virtioDeviceId() { return 2; }
    @Override public int maxQueues() { return numQueues; }
    @Override public Reactor reactor() { return placement.home(); }
    @Override public QueuePlacement placement() { return placement; }

    @Override
    public long features() {
        long f = VirtioFeatures.bit(VirtioFeatures.VERSION_1)
                | VirtioFeatures.bit(VirtioFeatures.RING_INDIRECT_DESC)
                | VirtioFeatures.bit(VirtioFeatures.RING_EVENT_IDX)
                | VirtioFeatures.bit(F_SIZE_MAX) | VirtioFeatures.bit(F_SEG_MAX) | VirtioFeatures.bit(F_BLK_SIZE)
                | VirtioFeatures.bit(F_TOPOLOGY) | VirtioFeatures.bit(F_FLUSH) | VirtioFeatures.bit(F_MQ)
                | VirtioFeatures.bit(F_CONFIG_WCE);
        if (packedRing) f |= VirtioFeatures.bit(VirtioFeatures.RING_PACKED);
        if (readOnly) {
            f |= VirtioFeatures.bit(F_RO);
        } else {
            if (bdev.supportsUnmap()) f |= VirtioFeatures.bit(F_DISCARD);
            if (bdev.supportsWriteZeroes()) f |= VirtioFeatures.bit(F_WRITE_ZEROES);
        }
        return f;
    }

    @Override
    public void readConfig(MemorySegment c) {
        int bs = bdev.blockSize();
        int secPerBlock = bs / SECTOR_SIZE;
        c.set(LittleEndian.U64, C_CAPACITY, bdev.sizeBytes() / SECTOR_SIZE);
        c.set(LittleEndian.U32, C_SIZE_MAX, SIZE_MAX);
        c.set(LittleEndian.U32, C_SEG_MAX, SEG_MAX);
        c.set(LittleEndian.U32, C_BLK_SIZE, bs);
        c.set(ValueLayout.JAVA_BYTE, C_PHYS_BLOCK_EXP, (byte) 0);
        c.set(ValueLayout.JAVA_BYTE, C_ALIGNMENT_OFFSET, (byte) 0);
        c.set(LittleEndian.U16, C_MIN_IO_SIZE, (short) 1);
        c.set(LittleEndian.U32, C_OPT_IO_SIZE, 0);
        c.set(ValueLayout.JAVA_BYTE, C_WRITEBACK, (byte) (writeback ? 1 : 0));
        c.set(LittleEndian.U16, C_NUM_QUEUES, (short) numQueues);
        c.set(LittleEndian.U32, C_MAX_DISCARD_SECTORS, MAX_DISCARD_SECTORS);
        c.set(LittleEndian.U32, C_MAX_DISCARD_SEG, 1);
        c.set(LittleEndian.U32, C_DISCARD_SECTOR_ALIGNMENT, secPerBlock);
        c.set(LittleEndian.U32, C_MAX_WRITE_ZEROES_SECTORS, MAX_DISCARD_SECTORS);
        c.set(LittleEndian.U32, C_MAX_WRITE_ZEROES_SEG, 1);
        c.set(ValueLayout.JAVA_BYTE, C_WRITE_ZEROES_MAY_UNMAP, (byte) 1);
    }

    @Override
    public boolean writeConfig(int offset, MemorySegment src, int len) {
        if (offset == C_WRITEBACK && len == 1) {
            byte v = src.get(ValueLayout.JAVA_BYTE, 0);
            if (v != 0 && v != 1) return false;
            writeback = v == 1;
            return true;
        }
        return false;
    }

    @Override
    public QueueProcessor newQueueProcessor(VirtQueue queue, int kickFd) {
        return new BlkQueueProcessor(this, queue, placement.reactorOf(queue.index()), kickFd);
    }

    /** The 20-byte GET_ID serial: the bdev name, truncated or zero-padded. */
    byte[] serial() {
        byte[] s = new byte[ID_BYTES];
        byte[] n = bdev.name().getBytes(java.nio.charset.StandardCharsets.UTF_8);
        System.arraycopy(n, 0, s, 0, Math.min(n.length, ID_BYTES));
        return s;
    }
}
