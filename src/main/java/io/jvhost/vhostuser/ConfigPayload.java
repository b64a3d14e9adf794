package io.jvhost.vhostuser;

import java.lang.foreign.MemorySegment;

/**
 * A device config space payload (vhost-user.rst "Device Configuration Space", GET_CONFIG and
 * SET_CONFIG): offset, size and flags (VHOST_SET_CONFIG_TYPE_*), then {@code size} bytes.
 * {@link #data()} is a view of the message buffer (SET_CONFIG) valid only during the request; for
 * GET_CONFIG it is empty (the front-end's bytes there are output space and never read).
 */
public record ConfigPayload(int offset, int size, int flags, MemorySegment data) {}
