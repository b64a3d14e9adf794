package io.jvhost.bdev;

import io.jvhost.sys.Errno;

/**
 * A channel that does the work inside {@code submit} and delivers the completion from the next
 * {@code poll} (the submit contract forbids completing inside submit). Subclasses implement
 * {@link #execute}; range checking and the completion queue are here. One owner thread.
 */
abstract class InlineBlockChannel implements BlockChannel {
    private final CompletionQueue done = new CompletionQueue(256);
    private final long sizeBytes;

    InlineBlockChannel(long sizeBytes) {
        this.sizeBytes = sizeBytes;
    }

    /** Performs {@code r}; returns 0 or -errno (delivered as the completion status). */
    protected abstract int execute(BlockRequest r);

    @Override
    public final int submit(BlockRequest r) {
        if (r.offset < 0 || r.length < 0 || r.offset > sizeBytes - r.length) return -Errno.EINVAL;
        done.push(r, execute(r));
        return 0;
    }

    @Override
    public final int poll() {
        return done.size() == 0 ? 0 : done.drain();
    }

    @Override
    public final int inFlight() {
        return done.size();
    }

    @Override
    public void close() {}
}
