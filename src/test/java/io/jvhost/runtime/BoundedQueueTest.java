package io.jvhost.runtime;

import org.junit.jupiter.api.Test;

import java.util.concurrent.CountDownLatch;

import static org.assertj.core.api.Assertions.assertThat;

class BoundedQueueTest {
    @Test
    void fifoAndBounded() {
        BoundedQueue<Integer> q = new BoundedQueue<>(3);
        assertThat(q.capacity()).isEqualTo(4);
        for (int i = 0; i < 4; i++) assertThat(q.offer(i)).isTrue();
        assertThat(q.offer(9)).as("full").isFalse();
        assertThat(q.size()).isEqualTo(4);
        for (int i = 0; i < 4; i++) assertThat(q.poll()).isEqualTo(i);
        assertThat(q.poll()).isNull();
        // wraps around many times
        for (int i = 0; i < 100; i++) {
            assertThat(q.offer(i)).isTrue();
            assertThat(q.poll()).isEqualTo(i);
        }
    }

    @Test
    void manyProducersOneConsumerSeeEveryElementExactlyOnceInPerProducerOrder() throws Exception {
        int producers = 3, each = 200_000;
        BoundedQueue<long[]> q = new BoundedQueue<>(64);
        long[][] items = new long[producers * each][];
        for (int p = 0; p < producers; p++) for (int i = 0; i < each; i++) items[p * each + i] = new long[] {p, i};
        CountDownLatch go = new CountDownLatch(1);
        Thread[] ts = new Thread[producers];
        for (int p = 0; p < producers; p++) {
            int pp = p;
            ts[p] = Thread.ofPlatform().start(() -> {
                try {
                    go.await();
                } catch (InterruptedException e) {
                    return;
                }
                for (int i = 0; i < each; i++) {
                    while (!q.offer(items[pp * each + i])) Thread.onSpinWait();
                }
            });
        }
        go.countDown();
        long[] next = new long[producers];
        int got = 0;
        while (got < producers * each) {
            long[] e = q.poll();
            if (e == null) {
                Thread.onSpinWait();
                continue;
            }
            assertThat(e[1]).as("producer %d in order", e[0]).isEqualTo(next[(int) e[0]]);
            next[(int) e[0]]++;
            got++;
        }
        for (Thread t : ts) t.join();
        assertThat(q.poll()).isNull();
        for (long n : next) assertThat(n).isEqualTo(each);
    }
}
