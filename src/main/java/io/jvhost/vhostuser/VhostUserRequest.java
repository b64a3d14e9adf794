package io.jvhost.vhostuser;

/**
 * Front-end request codes (QEMU docs/interop/vhost-user.rst, "Front-end message types") with the
 * payload size and fd count each one must carry. {@link #UNKNOWN} stands for codes we do not know.
 */
public enum VhostUserRequest {
    UNKNOWN(0, Payload.ANY, Fds.NONE),
    GET_FEATURES(1, Payload.NONE, Fds.NONE),
    SET_FEATURES(2, Payload.U64, Fds.NONE),
    SET_OWNER(3, Payload.NONE, Fds.NONE),
    RESET_OWNER(4, Payload.NONE, Fds.NONE),
    SET_MEM_TABLE(5, Payload.MEM_TABLE, Fds.PER_REGION),
    SET_LOG_BASE(6, Payload.LOG, Fds.ZERO_OR_ONE),
    SET_LOG_FD(7, Payload.NONE, Fds.ONE),
    SET_VRING_NUM(8, Payload.VRING_STATE, Fds.NONE),
    SET_VRING_ADDR(9, Payload.VRING_ADDR, Fds.NONE),
    SET_VRING_BASE(10, Payload.VRING_STATE, Fds.NONE),
    GET_VRING_BASE(11, Payload.VRING_STATE, Fds.NONE),
    SET_VRING_KICK(12, Payload.U64, Fds.VRING_FILE),
    SET_VRING_CALL(13, Payload.U64, Fds.VRING_FILE),
    SET_VRING_ERR(14, Payload.U64, Fds.VRING_FILE),
    GET_PROTOCOL_FEATURES(15, Payload.NONE, Fds.NONE),
    SET_PROTOCOL_FEATURES(16, Payload.U64, Fds.NONE),
    GET_QUEUE_NUM(17, Payload.NONE, Fds.NONE),
    SET_VRING_ENABLE(18, Payload.VRING_STATE, Fds.NONE),
    SEND_RARP(19, Payload.ANY, Fds.NONE),
    NET_SET_MTU(20, Payload.ANY, Fds.NONE),
    SET_BACKEND_REQ_FD(21, Payload.ANY, Fds.ANY),
    IOTLB_MSG(22, Payload.ANY, Fds.NONE),
    SET_VRING_ENDIAN(23, Payload.ANY, Fds.NONE),
    GET_CONFIG(24, Payload.CONFIG, Fds.NONE),
    SET_CONFIG(25, Payload.CONFIG, Fds.NONE),
    CREATE_CRYPTO_SESSION(26, Payload.ANY, Fds.NONE),
    CLOSE_CRYPTO_SESSION(27, Payload.ANY, Fds.NONE),
    POSTCOPY_ADVISE(28, Payload.ANY, Fds.NONE),
    POSTCOPY_LISTEN(29, Payload.ANY, Fds.NONE),
    POSTCOPY_END(30, Payload.ANY, Fds.NONE),
    GET_INFLIGHT_FD(31, Payload.INFLIGHT, Fds.NONE),
    SET_INFLIGHT_FD(32, Payload.INFLIGHT, Fds.ONE),
    GPU_SET_SOCKET(33, Payload.ANY, Fds.ANY),
    RESET_DEVICE(34, Payload.NONE, Fds.NONE),
    VRING_KICK(35, Payload.VRING_STATE, Fds.NONE),
    GET_MAX_MEM_SLOTS(36, Payload.NONE, Fds.NONE),
    ADD_MEM_REG(37, Payload.MEM_REGION, Fds.ONE),
    REM_MEM_REG(38, Payload.MEM_REGION, Fds.ZERO_OR_ONE),
    SET_STATUS(39, Payload.U64, Fds.NONE),
    GET_STATUS(40, Payload.NONE, Fds.NONE);

    /** Expected payload shapes. */
    public enum Payload { NONE, U64, VRING_STATE, VRING_ADDR, MEM_TABLE, MEM_REGION, CONFIG, LOG, INFLIGHT, ANY }

    /** Expected fd counts. */
    public enum Fds { NONE, ONE, ZERO_OR_ONE, PER_REGION, VRING_FILE, ANY }

    public final int code;
    public final Payload payload;
    public final Fds fds;

    VhostUserRequest(int code, Payload payload, Fds fds) {
        this.code = code;
        this.payload = payload;
        this.fds = fds;
    }

    private static final VhostUserRequest[] BY_CODE = new VhostUserRequest[64];

    static {
        for (VhostUserRequest r : values()) if (r != UNKNOWN) BY_CODE[r.code] = r;
    }

    public static VhostUserRequest of(int code) {
        if (code <= 0 || code >= BY_CODE.length || BY_CODE[code] == null) return UNKNOWN;
        return BY_CODE[code];
    }
}
