package io.jvhost.vhostuser;

import io.jvhost.sys.Fd;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.lang.foreign.MemorySegment;
import io.jvhost.runtime.Counter;

import static io.jvhost.vhostuser.VhostUserProtocol.*;

/**
 * Turns one received front-end message into one call of a {@link VhostUserBackendHandler}:
 * decodes the typed payload ({@link VhostUserPayloads}), checks the feature that gates the
 * request ({@link #gate}), calls the handler, and sends the request's own reply or, when the
 * front-end set NEED_REPLY, the REPLY_ACK. rust-vmm's {@code BackendReqHandler::handle_request}
 * has the same shape.
 *
 * <p>Gating is liberal where the ecosystem is (README "Compatibility"): a request whose feature
 * was not negotiated is served and counted as tolerated when DPDK's vhost library and
 * libvhost-user serve it too and serving it is safe; it is refused (NACK, or for a request with
 * its own reply an empty reply of the right shape, never silence) only where serving it would
 * be unsafe or is not implemented.
 *
 * <p>Owned by the session's control thread; not thread-safe.
 */
public final class VhostUserBackendDispatcher {
    private static final Logger log = LoggerFactory.getLogger(VhostUserBackendDispatcher.class);

    /** Where VHOST_USER_F_PROTOCOL_FEATURES sits in the virtio feature bits. */
    public static final int F_PROTOCOL_FEATURES = 30;

    /** What happens to a request whose gating feature was not negotiated. */
    public enum Ungated {
        /** Served and counted as a tolerated deviation. */
        SERVE,
        /** Refused: NACK (or an empty reply), counted as unsupported and failed. */
        REFUSE
    }

    /**
     * The feature a request needs: a protocol feature bit, or (when {@code virtioFeature}) a
     * virtio feature bit, and what happens without it.
     */
    public record Gate(int bit, boolean virtioFeature, Ungated ungated, String featureName) {}

    private static final Gate[] GATES = new Gate[64];

    private static void gate(VhostUserRequest r, int pf, String name, Ungated u) {
        GATES[r.code] = new Gate(pf, false, u, name);
    }

    static {
        // Served without the feature: QEMU 7.2 only sends these after negotiating it, but SPDK
        // 23.01's virtio-user sends GET_QUEUE_NUM whatever MQ says, and DPDK's vhost library and
        // libvhost-user serve all of them without looking at the protocol features. Each is as
        // safe without the feature as with it (same checks on values, fds and memory).
        gate(VhostUserRequest.GET_QUEUE_NUM, PF_MQ, "PROTOCOL_F_MQ", Ungated.SERVE);
        gate(VhostUserRequest.GET_CONFIG, PF_CONFIG, "PROTOCOL_F_CONFIG", Ungated.SERVE);
        gate(VhostUserRequest.SET_CONFIG, PF_CONFIG, "PROTOCOL_F_CONFIG", Ungated.SERVE);
        gate(VhostUserRequest.RESET_DEVICE, PF_RESET_DEVICE, "PROTOCOL_F_RESET_DEVICE", Ungated.SERVE);
        gate(VhostUserRequest.GET_MAX_MEM_SLOTS, PF_CONFIGURE_MEM_SLOTS, "PROTOCOL_F_CONFIGURE_MEM_SLOTS", Ungated.SERVE);
        gate(VhostUserRequest.ADD_MEM_REG, PF_CONFIGURE_MEM_SLOTS, "PROTOCOL_F_CONFIGURE_MEM_SLOTS", Ungated.SERVE);
        gate(VhostUserRequest.REM_MEM_REG, PF_CONFIGURE_MEM_SLOTS, "PROTOCOL_F_CONFIGURE_MEM_SLOTS", Ungated.SERVE);
        GATES[VhostUserRequest.SET_VRING_ENABLE.code] = new Gate(F_PROTOCOL_FEATURES, true, Ungated.SERVE, "VHOST_USER_F_PROTOCOL_FEATURES");
        // Refused without the feature: the dirty log and the inflight area change what the rings
        // write, so they are served only to a front-end that negotiated them.
        gate(VhostUserRequest.SET_LOG_BASE, PF_LOG_SHMFD, "PROTOCOL_F_LOG_SHMFD", Ungated.REFUSE);
        gate(VhostUserRequest.SET_LOG_FD, PF_LOG_SHMFD, "PROTOCOL_F_LOG_SHMFD", Ungated.REFUSE);
        gate(VhostUserRequest.GET_INFLIGHT_FD, PF_INFLIGHT_SHMFD, "PROTOCOL_F_INFLIGHT_SHMFD", Ungated.REFUSE);
        gate(VhostUserRequest.SET_INFLIGHT_FD, PF_INFLIGHT_SHMFD, "PROTOCOL_F_INFLIGHT_SHMFD", Ungated.REFUSE);
    }

    /** The gate of {@code r}, or null when it needs no feature. */
    public static Gate gate(VhostUserRequest r) {
        return r == VhostUserRequest.UNKNOWN ? null : GATES[r.code];
    }

    private final String name;
    private final VhostUserBackendHandler handler;
    private final VhostUserConnection conn;
    private final VhostUserMessage out;
    private final ToleranceLog tolerance;
    private final Counter failedRequests;
    private final Counter unsupportedRequests;
    private boolean loggedNeedReplyWithoutAck;

    /**
     * @param out       the reply buffer (owned by the caller, who closes it)
     * @param failed    counts requests answered with a failure
     * @param unsupported counts requests not implemented or refused for lack of their feature
     */
    public VhostUserBackendDispatcher(String name, VhostUserBackendHandler handler, VhostUserConnection conn, VhostUserMessage out,
                                      ToleranceLog tolerance, Counter failed, Counter unsupported) {
        this.name = name;
        this.handler = handler;
        this.conn = conn;
        this.out = out;
        this.tolerance = tolerance;
        this.failedRequests = failed;
        this.unsupportedRequests = unsupported;
    }

    private boolean negotiated(Gate g) {
        long have = g.virtioFeature() ? handler.ackedFeatures() : handler.ackedProtocolFeatures();
        return (have & (1L << g.bit())) != 0;
    }

    /**
     * Handles {@code m}: exactly one reply when the request has its own, else a REPLY_ACK when
     * NEED_REPLY is set. Throws when the connection must end; the caller closes {@code m}'s fds.
     */
    public void dispatch(VhostUserMessage m) throws VhostUserProtocolException {
        tolerance.codecDeviations(m);
        VhostUserRequest req = m.request;
        Gate g = gate(req);
        if (g != null && !negotiated(g)) {
            if (g.ungated() == Ungated.REFUSE) {
                refuse(m, g);
                return;
            }
            tolerance.ungated(req, g.featureName());
        }
        boolean ok;
        switch (req) {
            case GET_FEATURES -> { replyU64(req, handler.getFeatures()); return; }
            case GET_PROTOCOL_FEATURES -> { replyU64(req, handler.getProtocolFeatures()); return; }
            case GET_QUEUE_NUM -> { replyU64(req, handler.getQueueNum()); return; }
            case GET_MAX_MEM_SLOTS -> { replyU64(req, handler.getMaxMemSlots()); return; }
            case GET_VRING_BASE -> {
                VringState s = handler.getVringBase(VhostUserPayloads.vringState(m).index());
                out.begin(req, VERSION | FLAG_REPLY, VRING_STATE_SIZE);
                VhostUserPayloads.put(out, s);
                conn.reply(out, req, VRING_STATE_SIZE);
                return;
            }
            case GET_CONFIG -> { getConfig(m); return; }
            case GET_INFLIGHT_FD -> { replyInflight(handler.getInflightFd(VhostUserPayloads.inflight(m))); return; }
            case SET_LOG_BASE -> {
                // With LOG_SHMFD negotiated the front-end waits for this reply whether or not it
                // set NEED_REPLY (vhost-user.rst, SET_LOG_BASE): it is the request's own reply.
                ok = handler.setLogBase(VhostUserPayloads.log(m));
                if (!ok) failedRequests.incrementAndGet();
                replyU64(req, ok ? 0 : 1);
                return;
            }
            case SET_FEATURES -> ok = handler.setFeatures(VhostUserPayloads.u64(m));
            case SET_PROTOCOL_FEATURES -> ok = handler.setProtocolFeatures(VhostUserPayloads.u64(m));
            case SET_OWNER -> ok = handler.setOwner();
            case RESET_OWNER -> ok = handler.resetOwner();
            case RESET_DEVICE -> ok = handler.resetDevice();
            case SET_MEM_TABLE -> ok = handler.setMemTable(VhostUserPayloads.memTable(m));
            case ADD_MEM_REG -> ok = handler.addMemReg(VhostUserPayloads.memRegion(m));
            case REM_MEM_REG -> ok = handler.remMemReg(VhostUserPayloads.memRegion(m));
            case SET_VRING_NUM -> ok = handler.setVringNum(VhostUserPayloads.vringState(m));
            case SET_VRING_ADDR -> ok = handler.setVringAddr(VhostUserPayloads.vringAddr(m));
            case SET_VRING_BASE -> ok = handler.setVringBase(VhostUserPayloads.vringState(m));
            case SET_VRING_KICK -> ok = handler.setVringKick(VhostUserPayloads.vringFile(m));
            case SET_VRING_CALL -> ok = handler.setVringCall(VhostUserPayloads.vringFile(m));
            case SET_VRING_ERR -> ok = handler.setVringErr(VhostUserPayloads.vringFile(m));
            case SET_VRING_ENABLE -> ok = handler.setVringEnable(VhostUserPayloads.vringState(m));
            case SET_CONFIG -> ok = handler.setConfig(VhostUserPayloads.config(m));
            case SET_LOG_FD -> {
                if (m.fds().length != 1) throw new VhostUserProtocolException("SET_LOG_FD carries " + m.fds().length + " fds, expected 1");
                ok = handler.setLogFd(m.fds()[0]);
            }
            case SET_INFLIGHT_FD -> ok = handler.setInflightFd(VhostUserPayloads.inflight(m));
            default -> {
                unsupportedRequests.incrementAndGet();
                log.warn("{}: unsupported request {} (code {}), rejected", name, req, Integer.toUnsignedString(m.requestCode));
                ok = false;
            }
        }
        finish(m, ok);
    }

    /** Counts a failure and sends the REPLY_ACK if asked for: the end of every request without its own reply. */
    private void finish(VhostUserMessage m, boolean ok) {
        if (!ok) failedRequests.incrementAndGet();
        // A front-end that sets NEED_REPLY waits for the ack whether or not REPLY_ACK was
        // negotiated; DPDK's vhost library and libvhost-user ack it in both cases, and so do we.
        if (m.needReply()) {
            if ((handler.ackedProtocolFeatures() & (1L << PF_REPLY_ACK)) == 0) {
                tolerance.tolerate(QUIRK_NEED_REPLY_WITHOUT_REPLY_ACK, "NEED_REPLY on " + m.request + " without REPLY_ACK negotiated");
            }
            conn.ack(out, m.request, ok);
        }
    }

    /** Tolerance kind of NEED_REPLY without REPLY_ACK (a session quirk bit, see {@link ToleranceLog}). */
    public static final int QUIRK_NEED_REPLY_WITHOUT_REPLY_ACK = 1 << 19;

    /** A request whose feature is missing and must not be served: answered, never left hanging. */
    private void refuse(VhostUserMessage m, Gate g) {
        unsupportedRequests.incrementAndGet();
        log.warn("{}: {} needs {}, which was not negotiated; rejected", name, m.request, g.featureName());
        // A request with its own reply gets an empty one of its shape, NEED_REPLY or not: the
        // front-end waits for it, and an ack in its place would be read as the answer.
        switch (m.request) {
            case GET_INFLIGHT_FD -> {
                failedRequests.incrementAndGet();
                replyInflight(InflightPayload.NONE); // QEMU reads mmap_size 0 as "no inflight area"
            }
            case GET_QUEUE_NUM, GET_MAX_MEM_SLOTS, GET_FEATURES, GET_PROTOCOL_FEATURES -> {
                failedRequests.incrementAndGet();
                replyU64(m.request, 0);
            }
            case GET_CONFIG -> {
                failedRequests.incrementAndGet();
                out.begin(VhostUserRequest.GET_CONFIG, VERSION | FLAG_REPLY, CONFIG_HEADER);
                conn.reply(out, VhostUserRequest.GET_CONFIG, CONFIG_HEADER); // size 0: nothing read
            }
            default -> finish(m, false);
        }
    }

    private void replyU64(VhostUserRequest req, long v) {
        out.begin(req, VERSION | FLAG_REPLY, 8);
        out.putU64(0, v);
        conn.reply(out, req, 8);
    }

    private void replyInflight(InflightPayload p) {
        out.begin(VhostUserRequest.GET_INFLIGHT_FD, VERSION | FLAG_REPLY, INFLIGHT_SIZE);
        VhostUserPayloads.put(out, p);
        try {
            if (p.fd() >= 0) conn.send(out, p.fd());
            else conn.send(out);
        } finally {
            if (p.fd() >= 0) Fd.closeQuietly(p.fd());
        }
    }

    private void getConfig(VhostUserMessage m) throws VhostUserProtocolException {
        ConfigPayload c = VhostUserPayloads.config(m);
        out.begin(VhostUserRequest.GET_CONFIG, VERSION | FLAG_REPLY, CONFIG_HEADER + MAX_CONFIG_SIZE);
        MemorySegment dst = out.payload().asSlice(CONFIG_HEADER, MAX_CONFIG_SIZE);
        int n = handler.getConfig(c, dst);
        if (n < 0) {
            // An empty config: the front-end sees a failure instead of hanging.
            VhostUserPayloads.putConfigHeader(out, c.offset(), 0, c.flags());
            conn.reply(out, VhostUserRequest.GET_CONFIG, CONFIG_HEADER);
            return;
        }
        VhostUserPayloads.putConfigHeader(out, c.offset(), n, c.flags());
        conn.reply(out, VhostUserRequest.GET_CONFIG, CONFIG_HEADER + n);
    }
}
