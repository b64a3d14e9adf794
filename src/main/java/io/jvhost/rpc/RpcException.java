package io.jvhost.rpc;

/** A method failed; {@link #code()} is the JSON-RPC error code sent to the client. */
public final class RpcException extends RuntimeException {
    public static final int PARSE_ERROR = -32700;
    public static final int INVALID_REQUEST = -32600;
    public static final int METHOD_NOT_FOUND = -32601;
    public static final int INVALID_PARAMS = -32602;
    public static final int INTERNAL_ERROR = -32603;
    // SPDK answers "-errno" codes for operation failures; we do the same.
    public static final int ENOENT = -2;
    public static final int EEXIST = -17;
    public static final int EBUSY = -16;
    public static final int EINVAL = -22;

    private final int code;

    public RpcException(int code, String message) {
        super(message);
        this.code = code;
    }

    public int code() {
        return code;
    }

    public static RpcException invalidParams(String message) {
        return new RpcException(INVALID_PARAMS, message);
    }
}
