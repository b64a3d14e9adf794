package io.jvhost.vhostuser;

/** The peer broke the vhost-user protocol; the connection cannot continue. */
public final class VhostUserProtocolException extends Exception {
    public VhostUserProtocolException(String message) {
        super(message);
    }
}
