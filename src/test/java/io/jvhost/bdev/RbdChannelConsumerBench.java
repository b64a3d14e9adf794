package io.jvhost.bdev;

import io.jvhost.sys.Epoll;
import io.jvhost.sys.EventFd;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Not a test: the QD1 ablation of BENCHMARKS.md "Ceph RBD: where QD1 writes and 128 KiB reads
 * lose". One {@link RbdBlockDevice} channel (librbd callback, completion queue, eventfd: the hop
 * jvhost's reactor sees) driven at 4 KiB random QD1 without vhost-user, the reactor or a client
 * process, its consumer either sleeping in epoll on the channel's wake fd or spinning on
 * {@code poll()}, interleaved with {@code rbd bench} on the same image; writeback cache from
 * the start on both. Runs only with {@code -Djvhost.rbd.consumerBench=true}:
 * {@code mvn test -Dtest=RbdChannelConsumerBench -Djvhost.rbd.consumerBench=true -DexcludedGroups=qemu}.
 */
@Tag("ceph")
@ExtendWith(CephCluster.class)
class RbdChannelConsumerBench {
    static final long IMAGE = 256L << 20;
    static final int SECONDS = 5;

    @Test
    void compare() throws Exception {
        assumeTrue(Boolean.getBoolean("jvhost.rbd.consumerBench"), "set -Djvhost.rbd.consumerBench=true to run");
        CephCluster.Instance ceph = CephCluster.get();
        ceph.tool("rbd", "create", "--size", (IMAGE >> 20) + "M", "--image-feature", "layering", "rbd/qd1");
        ceph.tool("rbd", "bench", "--io-type", "write", "--io-pattern", "seq", "--io-size", "4M", "--io-total", (IMAGE >> 20) + "M", "rbd/qd1");
        RbdCluster c = RbdCluster.connect("qd1", null, Map.of("rbd_cache_writethrough_until_flush", "false"), ceph.confFile(), null);
        try (RbdBlockDevice d = RbdBlockDevice.open("Q", "rbd", "qd1", 512, null, c, null, null)) {
            for (BlockRequest.Op op : new BlockRequest.Op[] {BlockRequest.Op.WRITE, BlockRequest.Op.READ}) {
                for (int round = 0; round < 3; round++) {
                    double sleep = run(d, op, false);
                    double spin = run(d, op, true);
                    double rbd = rbdBench(ceph, op);
                    System.out.printf("RBD QD1 4k %s round %d: consumer sleeps %.0f, consumer spins %.0f, rbd bench %.0f IOPS%n",
                            op, round, sleep, spin, rbd);
                }
            }
        } finally {
            c.shutdown();
            ceph.removeImage("qd1");
        }
    }

    private static double run(RbdBlockDevice d, BlockRequest.Op op, boolean spin) {
        BlockChannel ch = d.openChannel();
        try (Arena a = Arena.ofConfined(); Epoll ep = new Epoll(4)) {
            MemorySegment buf = a.allocate(4096, 4096);
            MemorySegment scratch = EventFd.scratch(a);
            ep.add(ch.wakeFd(), Epoll.EPOLLIN, 1);
            long[] done = {0};
            boolean[] stop = {false};
            SplittableRandom rnd = new SplittableRandom(7);
            BlockRequest r = new BlockRequest(1);
            r.completion((req, status) -> {
                if (status < 0) throw new IllegalStateException("I/O failed: " + status);
                done[0]++;
                if (stop[0]) return;
                req.reset(op, rnd.nextLong(IMAGE / 4096) * 4096);
                req.addBuffer(buf, 0, 4096);
                if (ch.submit(req) != 0) throw new IllegalStateException("submit refused");
            });
            r.reset(op, rnd.nextLong(IMAGE / 4096) * 4096);
            r.addBuffer(buf, 0, 4096);
            if (ch.submit(r) != 0) throw new IllegalStateException("submit refused");
            long rampEnd = System.nanoTime() + TimeUnit.SECONDS.toNanos(2);
            long end = rampEnd + TimeUnit.SECONDS.toNanos(SECONDS);
            long t0 = 0, d0 = 0;
            for (long now = System.nanoTime(); now < end; now = System.nanoTime()) {
                if (t0 == 0 && now > rampEnd) {
                    t0 = now;
                    d0 = done[0];
                }
                if (ch.poll() == 0 && !spin) {
                    ep.await(100);
                    EventFd.drain(ch.wakeFd(), scratch);
                }
            }
            double iops = (done[0] - d0) / ((System.nanoTime() - t0) / 1e9);
            stop[0] = true;
            while (ch.inFlight() > 0) ch.poll();
            return iops;
        } finally {
            ch.close();
        }
    }

    /** rbd bench at QD1 on the same image (its own process), IOPS from its summary line. */
    private static double rbdBench(CephCluster.Instance ceph, BlockRequest.Op op) throws Exception {
        long total = 4096L * 4000;
        String out = ceph.tool("rbd", "bench", "--rbd_cache_writethrough_until_flush=false", "--io-type", op == BlockRequest.Op.WRITE ? "write" : "read",
                "--io-pattern", "rand", "--io-size", "4K", "--io-threads", "1", "--io-total", Long.toString(total), "rbd/qd1");
        for (String line : out.split("\n")) {
            if (line.startsWith("elapsed:")) {
                String[] f = line.trim().split("\\s+");
                for (int i = 0; i < f.length - 1; i++) if (f[i].equals("ops/sec:")) return Double.parseDouble(f[i + 1]);
            }
        }
        throw new IllegalStateException("no summary from rbd bench: " + out);
    }
}
