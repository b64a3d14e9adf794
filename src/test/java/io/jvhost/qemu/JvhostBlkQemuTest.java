package io.jvhost.qemu;

import io.jvhost.bdev.FileBlockDevice;
import io.jvhost.bdev.MallocBlockDevice;
import io.jvhost.runtime.IdleStrategy;
import io.jvhost.vhost.Controller;
import io.jvhost.vhost.VhostTarget;
import io.jvhost.virtio.VirtQueue;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import java.io.RandomAccessFile;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * A real QEMU guest (TCG, Linux, virtio_blk) uses two jvhost vhost-user-blk disks at once, a RAM
 * disk and a file disk, each with 2 queues: raw I/O at many offsets and sizes read back with
 * O_DIRECT, an ext2 file system, discard; the host then compares the bytes behind each disk with
 * what the guest says it wrote.
 */
@Tag("qemu")
class JvhostBlkQemuTest {
    static final long DISK = 64L << 20;
    static Path sockDir;
    static Path file;
    static VhostTarget target;
    static MallocBlockDevice ram;
    static List<String> lines;
    static int exitCode;
    static final List<long[]> queueRequests = new ArrayList<>();
    static Duration runTime;
    static boolean ramSpreadOverTwoReactors;

    /** /metrics scraped when the guest has booted and again after its workloads, while it still runs. */
    static io.jvhost.metrics.Exposition metricsAtBoot, metricsAfterIo;

    @BeforeAll
    static void runGuest() throws Exception {
        assumeTrue(QemuGuest.available(), () -> "QEMU guest tests skipped: " + QemuGuest.unavailableReason().orElse(""));
        QemuGuest.image();
        sockDir = Files.createTempDirectory("jvhost-qemu");
        QemuGuest.Builder b = QemuGuest.builder("jvhost-blk");
        file = b.runDir().resolve("file-disk.img");
        try (RandomAccessFile f = new RandomAccessFile(file.toFile(), "rw")) {
            f.setLength(DISK);
        }
        // Two reactors: the RAM disk's queues are spread over both (queue 0 on one, queue 1 on the other).
        target = new VhostTarget(sockDir, 2, IdleStrategy.BACKOFF);
        ram = new MallocBlockDevice("Malloc0", DISK / 512, 512, null);
        target.bdevs().register(ram);
        target.bdevs().register(new FileBlockDevice("AIO0", file.toString(), 512, false, null));
        Controller cr = target.createBlkController("ram", "Malloc0", false, 4, null, io.jvhost.vhost.QueuePlacement.Mode.SPREAD);
        ramSpreadOverTwoReactors = cr.device().reactor(0) != cr.device().reactor(1);
        // The file disk's controller is created through JSON-RPC, as an operator would.
        Controller cf;
        try (var rpc = io.jvhost.rpc.JsonRpcServer.start(sockDir.resolve("rpc.sock"), new io.jvhost.rpc.Methods(target));
             var client = io.jvhost.rpc.RpcClient.connect(sockDir.resolve("rpc.sock"), Duration.ofSeconds(30))) {
            client.call("vhost_create_blk_controller", new com.fasterxml.jackson.databind.ObjectMapper()
                    .readTree("{\"ctrlr\":\"file\",\"dev_name\":\"AIO0\",\"num_queues\":4}"));
            cf = target.controller("file");
        }
        b.guestResource("blk-workload.sh", "/qemu/blk-workload.sh")
                .guestScript("""
                        for d in vda vdb; do
                          echo "JVHOST-QUEUES $d $(ls /sys/block/$d/mq | wc -l)"
                          echo "JVHOST-SERIAL $d $(cat /sys/block/$d/serial)"
                          echo "JVHOST-SIZE $d $(cat /sys/block/$d/size) $(cat /sys/block/$d/queue/discard_max_bytes)"
                        done
                        # I/O from both vCPUs so both queues carry requests
                        taskset -c 0 dd if=/dev/vda of=/dev/null bs=64k count=64 iflag=direct 2>/dev/null
                        taskset -c 1 dd if=/dev/vda of=/dev/null bs=64k count=64 iflag=direct 2>/dev/null
                        taskset -c 1 dd if=/dev/vdb of=/dev/null bs=64k count=64 iflag=direct 2>/dev/null
                        # discard: the last MiB of the RAM disk reads back as zeros
                        dd if=/dev/urandom of=/dev/vda bs=64k seek=1008 count=16 oflag=direct 2>/dev/null
                        blkdiscard -o 66060288 -l 1048576 /dev/vda || { echo "JVHOST-DISCARD-FAIL"; exit 1; }
                        echo 3 > /proc/sys/vm/drop_caches
                        z=$(dd if=/dev/vda bs=64k skip=1008 count=16 iflag=direct 2>/dev/null | md5sum | cut -d' ' -f1)
                        e=$(dd if=/dev/zero bs=64k count=16 2>/dev/null | md5sum | cut -d' ' -f1)
                        [ "$z" = "$e" ] && echo JVHOST-DISCARD-OK || echo "JVHOST-DISCARD-FAIL $z"
                        # the workloads come after the discard check: their regions are compared on the host
                        sh /blk-workload.sh /dev/vda ram || exit 1
                        sh /blk-workload.sh /dev/vdb file || exit 1
                        echo JVHOST-SAMPLE-STATS
                        read -r ignored
                        """)
                .qemuArgs("-chardev", "socket,id=c0,path=" + cr.socketPath(),
                        "-device", "vhost-user-blk-pci,chardev=c0,num-queues=2",
                        "-chardev", "socket,id=c1,path=" + cf.socketPath(),
                        "-device", "vhost-user-blk-pci,chardev=c1,num-queues=2");
        long t0 = System.nanoTime();
        try (QemuGuest g = b.start();
             var metrics = io.jvhost.metrics.MetricsServer.start(new java.net.InetSocketAddress(java.net.InetAddress.getLoopbackAddress(), 0),
                     io.jvhost.runtime.CounterRegistry.global())) {
            g.awaitLine(QemuGuest.BOOTED, Duration.ofSeconds(90));
            metricsAtBoot = scrape(metrics);
            g.awaitLine("^JVHOST-SAMPLE-STATS", Duration.ofSeconds(240));
            metricsAfterIo = scrape(metrics);
            for (Controller c : List.of(cr, cf)) {
                for (VirtQueue q : c.session().runningQueues()) queueRequests.add(new long[] {q.index(), q.stats().requests()});
            }
            g.sendLine("go");
            exitCode = g.awaitExit(Duration.ofSeconds(60));
            lines = g.lines();
        }
        runTime = Duration.ofNanos(System.nanoTime() - t0);
        System.out.printf("jvhost blk guest run: %d ms, queue requests %s%n", runTime.toMillis(),
                queueRequests.stream().map(a -> a[0] + ":" + a[1]).toList());
    }

    private static io.jvhost.metrics.Exposition scrape(io.jvhost.metrics.MetricsServer m) throws Exception {
        var http = java.net.http.HttpClient.newHttpClient();
        var r = http.send(java.net.http.HttpRequest.newBuilder(java.net.URI.create(m.url())).timeout(Duration.ofSeconds(30)).build(),
                java.net.http.HttpResponse.BodyHandlers.ofString());
        assertThat(r.statusCode()).isEqualTo(200);
        return io.jvhost.metrics.Exposition.parse(r.body());
    }

    @AfterAll
    static void stop() throws Exception {
        if (target != null) target.close();
        if (sockDir != null) Files.deleteIfExists(sockDir);
    }

    /** Issue 13: scraped while a guest runs I/O, the counters move as the I/O does. */
    @Test
    void prometheusCountersMovedWhileTheGuestRanIo() {
        var a = metricsAtBoot;
        var z = metricsAfterIo;
        for (String ctrlr : List.of("ram", "file")) {
            assertThat(z.sum("jvhost_queue_requests_total", "ctrlr", ctrlr)).as(ctrlr + " requests").isGreaterThan(a.sum("jvhost_queue_requests_total", "ctrlr", ctrlr));
            assertThat(z.sum("jvhost_queue_written_bytes_total", "ctrlr", ctrlr)).as(ctrlr + " bytes written").isGreaterThan(a.sum("jvhost_queue_written_bytes_total", "ctrlr", ctrlr));
            assertThat(z.sum("jvhost_queue_read_bytes_total", "ctrlr", ctrlr)).as(ctrlr + " bytes read").isGreaterThan(a.sum("jvhost_queue_read_bytes_total", "ctrlr", ctrlr));
            assertThat(z.sum("jvhost_queue_errors_total", "ctrlr", ctrlr, "kind", "chain")).isZero();
        }
        for (String bdev : List.of("Malloc0", "AIO0")) {
            for (String op : List.of("read", "write")) {
                assertThat(z.sum("jvhost_bdev_ops_total", "bdev", bdev, "op", op)).as(bdev + " " + op).isGreaterThan(a.sum("jvhost_bdev_ops_total", "bdev", bdev, "op", op));
                assertThat(z.sum("jvhost_bdev_latency_seconds_count", "bdev", bdev, "op", op)).isGreaterThan(a.sum("jvhost_bdev_latency_seconds_count", "bdev", bdev, "op", op));
            }
        }
        assertThat(z.sum("jvhost_reactor_busy_seconds_total")).isGreaterThan(a.sum("jvhost_reactor_busy_seconds_total"));
        assertThat(z.value("process_resident_memory_bytes")).isPositive();
    }

    @Test
    void guestWorkloadsPass() {
        assertThat(lines).contains("JVHOST-BLK-OK ram", "JVHOST-BLK-OK file", "JVHOST-DISCARD-OK");
        assertThat(exitCode).isZero();
    }

    @Test
    void guestSeesTwoQueuesSerialSizeAndDiscard() {
        assertThat(lines).contains("JVHOST-QUEUES vda 2", "JVHOST-QUEUES vdb 2", "JVHOST-SERIAL vda Malloc0", "JVHOST-SERIAL vdb AIO0");
        assertThat(lines).anyMatch(l -> l.startsWith("JVHOST-SIZE vda 131072 ") && !l.endsWith(" 0"));
    }

    @Test
    void bothQueuesOfEachDiskCarriedRequests() {
        assertThat(queueRequests).hasSize(4);
        assertThat(ramSpreadOverTwoReactors).as("the ram disk's queues 0 and 1 run on different reactors").isTrue();
        assertThat(queueRequests).allSatisfy(q -> assertThat(q[1]).as("requests on queue %d", q[0]).isPositive());
    }

    @Test
    void ramDiskHoldsExactlyWhatTheGuestWrote() throws Exception {
        Path dump = Files.createTempFile("jvhost-ram", ".img");
        try (FileChannel ch = FileChannel.open(dump, StandardOpenOption.WRITE)) {
            ch.write(ram.memory().asByteBuffer());
        }
        try {
            assertThat(QemuGuest.verifyMd5Lines(lines, dump, "ram")).isGreaterThanOrEqualTo(10);
        } finally {
            Files.delete(dump);
        }
    }

    @Test
    void fileDiskHoldsExactlyWhatTheGuestWrote() {
        assertThat(QemuGuest.verifyMd5Lines(lines, file, "file")).isGreaterThanOrEqualTo(10);
    }
}
