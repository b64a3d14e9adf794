package io.jvhost.bdev;

/**
 * A fixed-capacity FIFO of finished requests and their statuses, for channels that finish work
 * inline in {@code submit} but must deliver completions later from {@code poll} (the submit
 * contract forbids completing inside submit). One owner thread; allocation-free.
 */
final class CompletionQueue {
    private BlockRequest[] reqs;
    private int[] statuses;
    private int head, size;

    CompletionQueue(int initialCapacity) {
        reqs = new BlockRequest[initialCapacity];
        statuses = new int[initialCapacity];
    }

    void push(BlockRequest r, int status) {
        if (size == reqs.length) grow();
        int i = (head + size) % reqs.length;
        reqs[i] = r;
        statuses[i] = status;
        size++;
    }

    private void grow() {
        BlockRequest[] nr = new BlockRequest[reqs.length * 2];
        int[] ns = new int[reqs.length * 2];
        for (int i = 0; i < size; i++) {
            nr[i] = reqs[(head + i) % reqs.length];
            ns[i] = statuses[(head + i) % reqs.length];
        }
        reqs = nr;
        statuses = ns;
        head = 0;
    }

    int size() {
        return size;
    }

    /** Completes everything queued at the time of the call (completions may queue more). */
    int drain() {
        int n = size;
        for (int k = 0; k < n; k++) {
            BlockRequest r = reqs[head];
            int st = statuses[head];
            reqs[head] = null;
            head = (head + 1) % reqs.length;
            size--;
            r.complete(st);
        }
        return n;
    }
}
