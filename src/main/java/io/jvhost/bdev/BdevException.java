package io.jvhost.bdev;

/** A control-path block device error with a kind the RPC layer maps to an error code. */
public final class BdevException extends RuntimeException {
    public enum Kind { NOT_FOUND, EXISTS, IN_USE, INVALID }

    private final Kind kind;

    public BdevException(Kind kind, String message) {
        super(message);
        this.kind = kind;
    }

    public Kind kind() {
        return kind;
    }
}
