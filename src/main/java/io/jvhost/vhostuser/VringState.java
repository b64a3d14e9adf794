package io.jvhost.vhostuser;

/**
 * A vring state (vhost-user.rst "A vring state description"): a ring index and a number whose
 * meaning depends on the request (ring size for SET_VRING_NUM, avail index for SET/GET_VRING_BASE,
 * enable for SET_VRING_ENABLE). Both are unsigned 32-bit values on the wire.
 */
public record VringState(int index, int num) {}
