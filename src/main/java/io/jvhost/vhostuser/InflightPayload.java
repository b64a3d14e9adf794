package io.jvhost.vhostuser;

/**
 * GET_INFLIGHT_FD / SET_INFLIGHT_FD payload (vhost-user.rst "Inflight description"): size and
 * offset of the shared inflight area, and the queue count and size it describes (u16 each, then
 * 4 bytes of padding: 24 bytes as QEMU, DPDK and libvhost-user lay it out). A GET_INFLIGHT_FD
 * reply with {@code mmapSize == 0} and no fd means "no inflight area" to QEMU. {@link #fd()} is
 * the fd of SET_INFLIGHT_FD (-1 otherwise), owned by the message.
 */
public record InflightPayload(long mmapSize, long mmapOffset, int numQueues, int queueSize, int fd) {
    /** The answer of a back-end that keeps no inflight area. */
    public static final InflightPayload NONE = new InflightPayload(0, 0, 0, 0, -1);
}
