package io.jvhost.sys;

/**
 * A listening socket cannot be created at a path: something that is not a stale socket is
 * there ({@code EEXIST}), another process serves on it ({@code EADDRINUSE}), or its permissions
 * cannot be set. The message names the path and says what to do; {@link #errno()} is what the
 * RPC layer answers ({@code -errno}).
 */
public final class SocketPathException extends NativeException {
    public SocketPathException(int errno, String message) {
        super(errno, message);
    }
}
