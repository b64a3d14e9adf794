package io.jvhost.vhostuser;

/**
 * SET_LOG_BASE's payload (vhost-user.rst "Log description"): the size of the dirty log to map
 * and its offset in the fd that came with the message. The fd stays owned by the message.
 */
public record LogPayload(long mmapSize, long mmapOffset, int fd) {}
