package io.jvhost.sys;

/** The peer sent file descriptors where none (or fewer) were allowed. */
public final class ProtocolFdException extends RuntimeException {
    public ProtocolFdException(String message) {
        super(message);
    }
}
