package io.jvhost.runtime;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.concurrent.atomic.AtomicLongArray;

/**
 * A bounded, lock-free, multi-producer multi-consumer FIFO of references (D. Vyukov's array
 * queue: each slot carries a sequence number that says whose turn it is). Offering and polling
 * allocate nothing, so it carries requests between a reactor and foreign threads (a worker
 * pool's submissions, completions handed back to the reactor) without garbage on either side.
 *
 * <p>Thread safety: any thread may {@link #offer} and {@link #poll}; {@link #size()} is a
 * snapshot. A successful {@code poll} happens-after the {@code offer} of the same element, so
 * plain fields written before {@code offer} are visible to the thread that polls it.
 */
public final class BoundedQueue<E> {
    private static final VarHandle HEAD;
    private static final VarHandle TAIL;
    private static final VarHandle ELEMS = MethodHandles.arrayElementVarHandle(Object[].class);

    static {
        try {
            MethodHandles.Lookup l = MethodHandles.lookup();
            HEAD = l.findVarHandle(BoundedQueue.class, "head", long.class);
            TAIL = l.findVarHandle(BoundedQueue.class, "tail", long.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    private final Object[] elems;
    private final AtomicLongArray seq;
    private final int mask;
    @SuppressWarnings("unused") private volatile long head; // next position to poll
    @SuppressWarnings("unused") private volatile long tail; // next position to offer

    /** @param capacity rounded up to a power of two */
    public BoundedQueue(int capacity) {
        if (capacity < 1 || capacity > (1 << 30)) throw new IllegalArgumentException("capacity " + capacity);
        int cap = Integer.highestOneBit(capacity);
        if (cap < capacity) cap <<= 1;
        elems = new Object[cap];
        seq = new AtomicLongArray(cap);
        for (int i = 0; i < cap; i++) seq.set(i, i);
        mask = cap - 1;
    }

    public int capacity() {
        return mask + 1;
    }

    /** Appends {@code e}; false when the queue is full. */
    public boolean offer(E e) {
        long pos = (long) TAIL.getVolatile(this);
        for (;;) {
            int i = (int) pos & mask;
            long s = seq.getAcquire(i);
            long dif = s - pos;
            if (dif == 0) {
                if (TAIL.compareAndSet(this, pos, pos + 1)) {
                    ELEMS.setOpaque(elems, i, e);
                    seq.setRelease(i, pos + 1);
                    return true;
                }
                pos = (long) TAIL.getVolatile(this);
            } else if (dif < 0) {
                return false; // full
            } else {
                pos = (long) TAIL.getVolatile(this);
            }
        }
    }

    /** Removes and returns the oldest element, or null when empty. */
    @SuppressWarnings("unchecked")
    public E poll() {
        long pos = (long) HEAD.getVolatile(this);
        for (;;) {
            int i = (int) pos & mask;
            long s = seq.getAcquire(i);
            long dif = s - (pos + 1);
            if (dif == 0) {
                if (HEAD.compareAndSet(this, pos, pos + 1)) {
                    Object e = ELEMS.getOpaque(elems, i);
                    ELEMS.setOpaque(elems, i, null);
                    seq.setRelease(i, pos + mask + 1);
                    return (E) e;
                }
                pos = (long) HEAD.getVolatile(this);
            } else if (dif < 0) {
                return null; // empty
            } else {
                pos = (long) HEAD.getVolatile(this);
            }
        }
    }

    /** Elements queued now (a snapshot). */
    public int size() {
        long n = (long) TAIL.getVolatile(this) - (long) HEAD.getVolatile(this);
        return (int) Math.max(0, Math.min(n, capacity()));
    }
}
