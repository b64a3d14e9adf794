package io.jvhost.sys;

/** A libc call failed on the control path; carries the errno and libc's text for it. */
public class NativeException extends RuntimeException {
    private final int errno;

    public NativeException(String what, int errno) {
        super(what + ": " + Native.strerror(errno) + " (errno " + errno + ")");
        this.errno = errno;
    }

    /** A failure whose message is already complete (the errno is still reported to callers). */
    protected NativeException(int errno, String message) {
        super(message);
        this.errno = errno;
    }

    public int errno() {
        return errno;
    }
}
