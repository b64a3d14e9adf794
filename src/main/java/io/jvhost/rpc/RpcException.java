package io.jvhost.rpc;

/**
 * A method or request failed; {@link #code()} is the JSON-RPC error code sent to the client.
 *
 * <p>Codes follow SPDK (doc/jsonrpc.md): the JSON-RPC 2.0 codes for protocol and parameter
 * errors, and {@code -errno} for operation failures ("bdev in use" is {@link #EBUSY}, "name
 * exists" {@link #EEXIST}, "not found" {@link #ENODEV}), with a message that says what and why.
 */
public final class RpcException extends RuntimeException {
    public static final int PARSE_ERROR = -32700;
    public static final int INVALID_REQUEST = -32600;
    public static final int METHOD_NOT_FOUND = -32601;
    public static final int INVALID_PARAMS = -32602;
    public static final int INTERNAL_ERROR = -32603;
    /** SPDK: the method exists but cannot be called in the current state. */
    public static final int INVALID_STATE = -1;
    // SPDK answers "-errno" codes for operation failures; we do the same.
    public static final int ENOENT = -2;
    public static final int ENOMEM = -12;
    public static final int EBUSY = -16;
    public static final int EEXIST = -17;
    public static final int ENODEV = -19;
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

    /** SPDK's text for the codes it uses (spdk_strerror of the errno), or null. */
    static String errnoText(int code) {
        return switch (code) {
            case ENOENT -> "No such file or directory";
            case ENOMEM -> "Cannot allocate memory";
            case EBUSY -> "Device or resource busy";
            case EEXIST -> "File exists";
            case ENODEV -> "No such device";
            case EINVAL -> "Invalid argument";
            default -> null;
        };
    }
}
