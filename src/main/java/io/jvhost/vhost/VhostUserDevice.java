package io.jvhost.vhost;

import io.jvhost.runtime.Reactor;
import io.jvhost.virtio.VirtQueue;

import java.lang.foreign.MemorySegment;

/**
 * The device side of a controller, apart from the vhost-user protocol (which {@link Session}
 * handles): which features it offers, its config space, how many queues, and what processes a
 * started queue. Implementations: {@link BlkDevice}.
 */
public interface VhostUserDevice {
    /** Virtio device type (2 = block, 8 = SCSI), for logs and RPC. */
    int virtioDeviceId();

    /** Device and transport feature bits offered (VHOST_USER_F_PROTOCOL_FEATURES added by the session). */
    long features();

    /** Queues the front-end may use (GET_QUEUE_NUM). */
    int maxQueues();

    /** Fills {@code dst} (zeroed, 256 bytes) with the config space as of now. */
    void readConfig(MemorySegment dst);

    /**
     * Applies a config write of {@code len} bytes at {@code offset} from {@code src}; returns false
     * when the device does not allow that write.
     */
    boolean writeConfig(int offset, MemorySegment src, int len);

    /**
     * Creates the processor of a started queue (kick fd -1: the front-end polls, never kicks).
     * It runs on {@link #reactor()}'s thread from its start on.
     */
    QueueProcessor newQueueProcessor(VirtQueue queue, int kickFd);

    /** The front-end connection ended (all queues stopped). */
    default void sessionEnded() {
    }

    /** The reactor that runs this device's queues. */
    Reactor reactor();
}
