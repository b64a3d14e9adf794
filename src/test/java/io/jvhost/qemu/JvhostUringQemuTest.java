package io.jvhost.qemu;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.jvhost.bdev.LoopDevice;
import io.jvhost.rpc.JsonRpcServer;
import io.jvhost.rpc.Methods;
import io.jvhost.rpc.RpcClient;
import io.jvhost.runtime.IdleStrategy;
import io.jvhost.sys.IoUring;
import io.jvhost.vhost.VhostTarget;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * A real QEMU guest (TCG, Linux, virtio_blk) on two io_uring bdevs made with
 * {@code bdev_uring_create} through JSON-RPC: one on a raw image file, one on a block device (a
 * loop device over a file; root only, otherwise the guest gets the file disk alone). The guest
 * runs the raw-I/O and ext2 workloads on each; after the target has closed the disks, the host
 * compares the bytes in the image file and in the loop device's backing file with what the guest
 * says it wrote.
 */
@Tag("qemu")
class JvhostUringQemuTest {
    static final long DISK = 64L << 20;
    static Path sockDir;
    static Path file, loopBacking;
    static LoopDevice loop;
    static VhostTarget target;
    static List<String> lines;
    static int exitCode;
    static final List<JsonNode> bdevs = new ArrayList<>();

    @BeforeAll
    static void runGuest() throws Exception {
        assumeTrue(QemuGuest.available(), () -> "QEMU guest tests skipped: " + QemuGuest.unavailableReason().orElse(""));
        assumeTrue(IoUring.unavailableReason() == null, () -> "io_uring unavailable: " + IoUring.unavailableReason());
        QemuGuest.image();
        sockDir = Files.createTempDirectory("jvhost-uring-qemu");
        QemuGuest.Builder b = QemuGuest.builder("jvhost-uring");
        file = b.runDir().resolve("uring-file.img");
        loopBacking = b.runDir().resolve("uring-loop-backing.img");
        for (Path p : List.of(file, loopBacking)) {
            try (RandomAccessFile f = new RandomAccessFile(p.toFile(), "rw")) {
                f.setLength(DISK);
            }
        }
        if (LoopDevice.isRoot()) loop = LoopDevice.attach(loopBacking, 512);
        target = new VhostTarget(sockDir, 1, IdleStrategy.BACKOFF);
        List<String> qemuArgs = new ArrayList<>();
        ObjectMapper json = new ObjectMapper();
        try (var rpc = JsonRpcServer.start(sockDir.resolve("rpc.sock"), new Methods(target));
             var client = RpcClient.connect(sockDir.resolve("rpc.sock"), Duration.ofSeconds(30))) {
            client.call("bdev_uring_create", json.readTree("{\"name\":\"UringFile\",\"filename\":\"" + file + "\"}"));
            client.call("vhost_create_blk_controller", json.readTree("{\"ctrlr\":\"ufile\",\"dev_name\":\"UringFile\",\"num_queues\":2}"));
            qemuArgs.addAll(List.of("-chardev", "socket,id=c0,path=" + target.controller("ufile").socketPath(),
                    "-device", "vhost-user-blk-pci,chardev=c0,num-queues=2"));
            if (loop != null) {
                client.call("bdev_uring_create", json.readTree("{\"name\":\"UringLoop\",\"filename\":\"" + loop.device + "\"}"));
                client.call("vhost_create_blk_controller", json.readTree("{\"ctrlr\":\"uloop\",\"dev_name\":\"UringLoop\",\"num_queues\":2}"));
                qemuArgs.addAll(List.of("-chardev", "socket,id=c1,path=" + target.controller("uloop").socketPath(),
                        "-device", "vhost-user-blk-pci,chardev=c1,num-queues=2"));
            }
            for (JsonNode d : client.call("bdev_get_bdevs", null)) bdevs.add(d);
        }
        b.guestResource("blk-workload.sh", "/qemu/blk-workload.sh")
                .guestScript((loop != null ? """
                        sh /blk-workload.sh /dev/vda file || exit 1
                        sh /blk-workload.sh /dev/vdb loop || exit 1
                        """ : """
                        sh /blk-workload.sh /dev/vda file || exit 1
                        """) + "sync\necho JVHOST-URING-DONE\n")
                .qemuArgs(qemuArgs.toArray(String[]::new));
        try (QemuGuest g = b.start()) {
            g.awaitLine(QemuGuest.BOOTED, Duration.ofSeconds(90));
            exitCode = g.awaitExit(Duration.ofSeconds(400));
            lines = g.lines();
        }
        // Closing the target closes the bdevs (their fds: the loop device's page cache is written back).
        target.close();
        target = null;
    }

    @AfterAll
    static void stop() throws Exception {
        if (target != null) target.close();
        if (loop != null) loop.close();
        if (sockDir != null) Files.deleteIfExists(sockDir);
    }

    @Test
    void bothDisksRunOnIoUringWithODirect() {
        assertThat(bdevs).isNotEmpty();
        for (JsonNode d : bdevs) {
            assertThat(d.at("/driver_specific/uring/io_engine").asText()).as("%s", d.get("name")).isEqualTo("io_uring");
            assertThat(d.at("/driver_specific/uring/o_direct").asBoolean()).as("%s", d.get("name")).isTrue();
        }
        if (loop != null) {
            assertThat(bdevs).anySatisfy(d -> assertThat(d.at("/driver_specific/uring/block_device").asBoolean()).isTrue());
        }
    }

    @Test
    void guestWorkloadsPass() {
        assertThat(lines).contains("JVHOST-BLK-OK file", "JVHOST-URING-DONE");
        if (loop != null) assertThat(lines).contains("JVHOST-BLK-OK loop");
        assertThat(exitCode).isZero();
    }

    @Test
    void imageFileHoldsExactlyWhatTheGuestWrote() {
        assertThat(QemuGuest.verifyMd5Lines(lines, file, "file")).isGreaterThanOrEqualTo(10);
    }

    @Test
    void loopDeviceBackingFileHoldsExactlyWhatTheGuestWrote() {
        assumeTrue(loop != null, "not root: no loop device disk in this run");
        assertThat(QemuGuest.verifyMd5Lines(lines, loopBacking, "loop")).isGreaterThanOrEqualTo(10);
    }
}
