package io.jvhost.virtio;

/** Two {@link QueueHooks} called in order (inflight tracking first, then dirty logging). */
public final class HooksPair implements QueueHooks {
    private final QueueHooks first;
    private final QueueHooks second;

    private HooksPair(QueueHooks first, QueueHooks second) {
        this.first = first;
        this.second = second;
    }

    /** {@code a} and {@code b} together; either may be null or {@link QueueHooks#NONE}. */
    public static QueueHooks of(QueueHooks a, QueueHooks b) {
        if (a == null || a == NONE) return b == null ? NONE : b;
        if (b == null || b == NONE) return a;
        return new HooksPair(a, b);
    }

    @Override
    public void popped(VirtQueue queue, int head) {
        first.popped(queue, head);
        second.popped(queue, head);
    }

    @Override
    public void completed(VirtQueue queue, int head, int len, long ringOffset, int bytes) {
        first.completed(queue, head, len, ringOffset, bytes);
        second.completed(queue, head, len, ringOffset, bytes);
    }

    @Override
    public void published(VirtQueue queue, int usedIdx, long ringOffset, int bytes) {
        first.published(queue, usedIdx, ringOffset, bytes);
        second.published(queue, usedIdx, ringOffset, bytes);
    }
}
