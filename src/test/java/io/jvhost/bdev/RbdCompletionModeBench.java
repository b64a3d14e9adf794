package io.jvhost.bdev;

import io.jvhost.sys.EventFd;
import io.jvhost.sys.Rbd;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Not a test: measures the two ways librbd can report completions, on one thread driving 4 KiB
 * random reads at a fixed depth, interleaved A B A B: (A) the bdev's way, a callback on librbd's
 * thread handing the request over through the channel's queue and eventfd; (B)
 * {@code rbd_set_image_notification} with an eventfd and {@code rbd_poll_io_events} reaped by
 * the submitting thread (no upcall). Runs only with {@code -Djvhost.rbd.modeBench=true}:
 * {@code mvn test -Dtest=RbdCompletionModeBench -Djvhost.rbd.modeBench=true -DexcludedGroups=qemu}.
 */
@Tag("ceph")
@ExtendWith(CephCluster.class)
class RbdCompletionModeBench {
    static final long IMAGE = 64L << 20;

    @Test
    void compare() throws Exception {
        assumeTrue(Boolean.getBoolean("jvhost.rbd.modeBench"), "set -Djvhost.rbd.modeBench=true to run");
        CephCluster.get().createImage("mode", IMAGE >> 20);
        CephCluster.get().tool("rbd", "bench", "--io-type", "write", "--io-pattern", "seq", "--io-size", "4M", "--io-total", "64M", "rbd/mode");
        RbdCluster c = RbdCluster.connect("mode", null, null, CephCluster.get().confFile(), null);
        try (Arena a = Arena.ofShared();
             RbdBlockDevice d = RbdBlockDevice.open("M", "rbd", "mode", 512, null, c, null, null)) {
            long io = Rbd.ioctxCreate(c.handle(), "rbd");
            long img = Rbd.open(io, "mode");
            int efd = EventFd.create(true);
            Rbd.setImageNotification(img, efd);
            for (int qd : new int[] {1, 16}) {
                for (int round = 0; round < 3; round++) {
                    double cb = callbacks(d, a, qd, 4);
                    double ev = eventfd(img, efd, a, qd, 4);
                    System.out.printf("RBD completion modes qd%d round %d: callback %.0f IOPS, eventfd+poll %.0f IOPS, ratio %.2f%n", qd, round, cb, ev, ev / cb);
                }
            }
            Rbd.close(img);
            Rbd.ioctxDestroy(io);
        } finally {
            c.shutdown();
            CephCluster.get().removeImage("mode");
        }
    }

    private static double callbacks(RbdBlockDevice d, Arena a, int qd, int seconds) {
        BlockChannel ch = d.openChannel();
        MemorySegment buf = a.allocate(4096L * qd, 4096);
        long[] done = {0};
        boolean[] stop = {false};
        java.util.SplittableRandom rnd = new java.util.SplittableRandom(1);
        BlockRequest.Completion again = new BlockRequest.Completion() {
            @Override
            public void onComplete(BlockRequest r, int status) {
                done[0]++;
                if (stop[0]) return;
                r.reset(BlockRequest.Op.READ, rnd.nextLong(IMAGE / 4096) * 4096);
                r.addBuffer(buf, 4096L * r.tag, 4096);
                if (ch.submit(r) != 0) throw new IllegalStateException("submit refused");
            }
        };
        for (int i = 0; i < qd; i++) {
            BlockRequest r = new BlockRequest(1);
            r.tag = i;
            r.completion(again);
            r.reset(BlockRequest.Op.READ, rnd.nextLong(IMAGE / 4096) * 4096);
            r.addBuffer(buf, 4096L * i, 4096);
            ch.submit(r);
        }
        long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
        long t0 = System.nanoTime();
        while (System.nanoTime() < end) ch.poll();
        double iops = done[0] / ((System.nanoTime() - t0) / 1e9);
        stop[0] = true;
        while (ch.inFlight() > 0) ch.poll();
        ch.close();
        return iops;
    }

    private static double eventfd(long img, int efd, Arena a, int qd, int seconds) {
        MemorySegment buf = a.allocate(4096L * qd, 4096);
        MemorySegment iov = a.allocate(16L * qd, 8);
        MemorySegment out = a.allocate(8, 8);
        MemorySegment comps = a.allocate(8L * qd, 8);
        MemorySegment scratch = a.allocate(8, 8);
        java.util.SplittableRandom rnd = new java.util.SplittableRandom(2);
        for (int i = 0; i < qd; i++) {
            Rbd.setIovec(iov, i, buf.address() + 4096L * i, 4096);
            submit(img, iov, i, out, rnd);
        }
        long done = 0;
        long t0 = System.nanoTime();
        long end = t0 + TimeUnit.SECONDS.toNanos(seconds);
        int outstanding = qd;
        while (outstanding > 0) {
            if (EventFd.drain(efd, scratch) == 0) continue;
            int n = Rbd.pollIoEvents(img, comps.address(), qd);
            for (int k = 0; k < n; k++) {
                long cmp = comps.get(ValueLayout.JAVA_LONG, 8L * k);
                int slot = (int) Rbd.aioGetArg(cmp);
                if (Rbd.aioGetReturnValue(cmp) < 0) throw new IllegalStateException("read failed");
                Rbd.aioRelease(cmp);
                done++;
                outstanding--;
                if (System.nanoTime() < end) {
                    submit(img, iov, slot, out, rnd);
                    outstanding++;
                }
            }
        }
        return done / ((System.nanoTime() - t0) / 1e9);
    }

    private static void submit(long img, MemorySegment iov, int slot, MemorySegment out, java.util.SplittableRandom rnd) {
        if (Rbd.aioCreateCompletion(slot, 0, out) < 0) throw new IllegalStateException("completion");
        long cmp = out.get(ValueLayout.JAVA_LONG, 0);
        if (Rbd.aioReadv(img, iov.address() + 16L * slot, 1, rnd.nextLong(IMAGE / 4096) * 4096, cmp) < 0) throw new IllegalStateException("readv");
    }
}
