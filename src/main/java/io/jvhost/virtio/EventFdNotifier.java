package io.jvhost.virtio;

import io.jvhost.sys.EventFd;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * A {@link Notifier} that writes the vring's call eventfd (vhost-user SET_VRING_CALL). Does not
 * own the fd: the session closes it, after the reactor has acknowledged it no longer uses it.
 */
public final class EventFdNotifier implements Notifier {
    private final int fd;
    /** The 8-byte counter value write(2) sends; reused (owning reactor thread only). */
    private final MemorySegment scratch = Arena.ofAuto().allocate(8, 8);

    public EventFdNotifier(int fd) {
        if (fd < 0) throw new IllegalArgumentException("call fd " + fd);
        this.fd = fd;
    }

    public int fd() {
        return fd;
    }

    @Override
    public boolean signal() {
        return EventFd.signal(fd, scratch) >= 0;
    }

    @Override
    public String toString() {
        return "eventfd " + fd;
    }
}
