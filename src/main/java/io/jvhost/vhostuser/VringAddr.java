package io.jvhost.vhostuser;

/**
 * A vring address (vhost-user.rst "A vring address description"): the front-end virtual
 * addresses of the three ring parts, the ring's flags and the guest address of its used ring for
 * dirty logging. {@link #logging()} is VHOST_VRING_F_LOG: the used ring's writes are to be logged
 * at {@link #logGuestAddr()} once logging is on (VHOST_F_LOG_ALL); kept so live migration can
 * attach to it.
 */
public record VringAddr(int index, int flags, long descUva, long usedUva, long availUva, long logGuestAddr) {
    /** VHOST_VRING_F_LOG: the used ring is to be dirty-logged. */
    public boolean logging() {
        return (flags & VhostUserProtocol.VRING_ADDR_F_LOG) != 0;
    }
}
