package io.jvhost.sys;

/** A libc call failed on the control path; carries the errno and libc's text for it. */
public final class NativeException extends RuntimeException {
    private final int errno;

    public NativeException(String what, int errno) {
        super(what + ": " + Native.strerror(errno) + " (errno " + errno + ")");
        this.errno = errno;
    }

    public int errno() {
        return errno;
    }
}
