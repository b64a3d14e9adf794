package io.jvhost.virtio;

/**
 * Sends the device's used-buffer notification to the driver (VIRTIO 1.2, 2.7.10; vhost-user's
 * "call"). Ring-neutral and policy-free: whether the driver wants one (NO_INTERRUPT, used_event)
 * is decided by the ring, whether to send it now or later by {@link Interrupts}; this only
 * delivers it. Implementations: {@link EventFdNotifier} (the SET_VRING_CALL eventfd); an in-band
 * VHOST_USER_BACKEND_VRING_CALL message later. Called from the queue's owning reactor thread.
 */
public interface Notifier {
    /** No call channel (SET_VRING_CALL with the no-fd flag: the front-end polls). */
    Notifier NONE = () -> true;

    /** The notifier of a SET_VRING_CALL fd: {@link #NONE} for -1 (no fd). */
    static Notifier eventFd(int fd) {
        return fd < 0 ? NONE : new EventFdNotifier(fd);
    }

    /** Delivers one notification; false when delivery failed (counted as a call error). */
    boolean signal();
}
