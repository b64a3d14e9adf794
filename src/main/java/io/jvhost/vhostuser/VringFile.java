package io.jvhost.vhostuser;

/**
 * A vring file (SET_VRING_KICK / CALL / ERR): the ring index (bits 0-7 of the u64), the no-fd flag
 * (bit 8; polling instead of an eventfd) and the fd that came with the message, or -1. Whoever
 * receives the payload owns {@link #fd()}: keep it or close it.
 */
public record VringFile(int index, boolean nofd, int fd) {}
