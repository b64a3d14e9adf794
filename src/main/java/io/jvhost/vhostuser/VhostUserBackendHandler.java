package io.jvhost.vhostuser;

import java.lang.foreign.MemorySegment;

/**
 * What a vhost-user back-end does for each front-end request, one method per request with its
 * typed payload (vhost-user.rst "Front-end message types"; shaped like rust-vmm's
 * {@code VhostUserBackendReqHandler}). {@link VhostUserBackendDispatcher} decodes the message,
 * applies the feature gating and sends the reply or REPLY_ACK; an implementation only decides.
 *
 * <p>Methods returning {@code boolean} answer "applied" (true) or "refused" (false; the
 * implementation logs why): that is the REPLY_ACK the dispatcher sends when the front-end asked
 * for one. A {@link VhostUserProtocolException} ends the connection (a request that leaves the
 * session undefined, e.g. a ring index the device does not have).
 *
 * <p>Fds: a {@link VringFile}'s fd belongs to the handler (keep or close it, also when throwing);
 * every other fd belongs to the message and is closed after the call (map it during the call).
 *
 * <p>Called on the session's control thread only.
 */
public interface VhostUserBackendHandler {
    /** Virtio feature bits the front-end acked (SET_FEATURES), for gating. */
    long ackedFeatures();

    /** Protocol feature bits the front-end acked (SET_PROTOCOL_FEATURES), for gating. */
    long ackedProtocolFeatures();

    long getFeatures();

    boolean setFeatures(long features);

    long getProtocolFeatures();

    boolean setProtocolFeatures(long features);

    boolean setOwner();

    boolean resetOwner();

    /** RESET_DEVICE. */
    boolean resetDevice();

    long getQueueNum();

    long getMaxMemSlots();

    boolean setMemTable(MemTable table);

    boolean addMemReg(MemRegion region);

    boolean remMemReg(MemRegion region);

    boolean setVringNum(VringState s) throws VhostUserProtocolException;

    boolean setVringAddr(VringAddr a) throws VhostUserProtocolException;

    boolean setVringBase(VringState s) throws VhostUserProtocolException;

    /** Stops ring {@code index} and returns its state ({@code num} = the next avail index). */
    VringState getVringBase(int index) throws VhostUserProtocolException;

    boolean setVringKick(VringFile f) throws VhostUserProtocolException;

    boolean setVringCall(VringFile f) throws VhostUserProtocolException;

    boolean setVringErr(VringFile f) throws VhostUserProtocolException;

    boolean setVringEnable(VringState s) throws VhostUserProtocolException;

    /**
     * GET_CONFIG: writes the requested bytes to {@code dst} (at least {@link VhostUserProtocol#MAX_CONFIG_SIZE}
     * bytes) and returns how many, or -1 when the request cannot be served (the front-end then
     * gets a reply with size 0: a failure it sees, not a hang).
     */
    int getConfig(ConfigPayload request, MemorySegment dst);

    boolean setConfig(ConfigPayload c);

    /** SET_LOG_BASE (dirty log for live migration). */
    boolean setLogBase(LogPayload log);

    /** SET_LOG_FD: the eventfd to signal when the log was written; owned by the message. */
    boolean setLogFd(int fd);

    /**
     * GET_INFLIGHT_FD: the inflight area to share (its fd, if any, is sent with the reply and
     * then closed by the dispatcher); {@link InflightPayload#NONE} for none.
     */
    InflightPayload getInflightFd(InflightPayload request);

    boolean setInflightFd(InflightPayload inflight);
}
