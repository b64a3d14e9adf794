package io.jvhost.qemu;

import io.jvhost.bdev.CephCluster;
import io.jvhost.rpc.JsonRpcServer;
import io.jvhost.rpc.Methods;
import io.jvhost.rpc.RpcClient;
import io.jvhost.runtime.IdleStrategy;
import io.jvhost.vhost.VhostTarget;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * A real QEMU guest runs the raw-I/O and file-system workloads on a vhost-user-blk disk that
 * jvhost serves from a Ceph RBD image (cluster registered and bdev created through JSON-RPC, as
 * an operator would). After the guest exits and the bdev is deleted, the image is read back on
 * the host with {@code rbd export} (librbd, not jvhost): every region the guest wrote must hold
 * exactly its bytes, and the guest's file system must pass {@code e2fsck -n}.
 */
@Tag("qemu")
@Tag("ceph")
@ExtendWith(CephCluster.class)
class JvhostRbdQemuTest {
    static final String IMAGE = "qemu-rbd";
    static Path sockDir;
    static VhostTarget target;
    static List<String> lines;
    static int exitCode;
    static Path exported;

    @BeforeAll
    static void runGuest() throws Exception {
        assumeTrue(QemuGuest.available(), () -> "QEMU guest tests skipped: " + QemuGuest.unavailableReason().orElse(""));
        QemuGuest.image();
        CephCluster.get().createImage(IMAGE, 64);
        sockDir = Files.createTempDirectory("jvhost-qemu-rbd");
        target = new VhostTarget(sockDir, 1, IdleStrategy.BACKOFF);
        var om = new com.fasterxml.jackson.databind.ObjectMapper();
        try (var rpc = JsonRpcServer.start(sockDir.resolve("rpc.sock"), new Methods(target));
             var client = RpcClient.connect(sockDir.resolve("rpc.sock"), Duration.ofSeconds(60))) {
            client.call("bdev_rbd_register_cluster", om.readTree("{\"name\":\"ceph\",\"config_file\":\"" + CephCluster.get().confFile() + "\"}"));
            client.call("bdev_rbd_create", om.readTree("{\"name\":\"Ceph0\",\"pool_name\":\"rbd\",\"rbd_name\":\"" + IMAGE
                    + "\",\"block_size\":512,\"cluster_name\":\"ceph\"}"));
            client.call("vhost_create_blk_controller", om.readTree("{\"ctrlr\":\"rbd\",\"dev_name\":\"Ceph0\",\"num_queues\":2}"));

            QemuGuest.Builder b = QemuGuest.builder("jvhost-rbd");
            b.guestResource("blk-workload.sh", "/qemu/blk-workload.sh")
                    .guestScript("""
                            echo "JVHOST-SERIAL vda $(cat /sys/block/vda/serial)"
                            sh /blk-workload.sh /dev/vda rbd || exit 1
                            """)
                    .qemuArgs("-chardev", "socket,id=c0,path=" + target.controller("rbd").socketPath(),
                            "-device", "vhost-user-blk-pci,chardev=c0,num-queues=2");
            long t0 = System.nanoTime();
            try (QemuGuest g = b.start()) {
                g.awaitLine(QemuGuest.BOOTED, Duration.ofSeconds(120));
                exitCode = g.awaitExit(Duration.ofSeconds(400));
                lines = g.lines();
            }
            System.out.printf("jvhost rbd guest run: %d ms%n", Duration.ofNanos(System.nanoTime() - t0).toMillis());
            // The session ends asynchronously once QEMU is gone.
            org.awaitility.Awaitility.await().atMost(Duration.ofSeconds(30)).ignoreExceptions().until(() -> {
                client.call("vhost_delete_controller", om.readTree("{\"ctrlr\":\"rbd\"}"));
                return true;
            });
            client.call("bdev_rbd_delete", om.readTree("{\"name\":\"Ceph0\"}"));
            client.call("bdev_rbd_unregister_cluster", om.readTree("{\"name\":\"ceph\"}"));
        }
        exported = sockDir.resolve("export.img");
        CephCluster.get().tool("rbd", "export", "--no-progress", "rbd/" + IMAGE, exported.toString());
    }

    @AfterAll
    static void stop() throws Exception {
        if (target != null) target.close();
        if (exported != null) Files.deleteIfExists(exported);
        if (sockDir != null) Files.deleteIfExists(sockDir.resolve("rpc.sock"));
        if (sockDir != null) Files.deleteIfExists(sockDir);
        if (target != null) CephCluster.get().removeImage(IMAGE);
    }

    @Test
    void guestWorkloadsPassOnTheRbdDisk() {
        assertThat(lines).contains("JVHOST-SERIAL vda Ceph0", "JVHOST-BLK-OK rbd");
        assertThat(exitCode).isZero();
    }

    @Test
    void rbdExportHoldsExactlyWhatTheGuestWrote() {
        assertThat(QemuGuest.verifyMd5Lines(lines, exported, "rbd")).isGreaterThanOrEqualTo(10);
    }

    @Test
    void guestFileSystemIsCleanInTheExportedImage() throws Exception {
        assumeTrue(Files.isExecutable(Path.of("/usr/sbin/e2fsck")) || Files.isExecutable(Path.of("/sbin/e2fsck")), "e2fsck not installed");
        Process p = new ProcessBuilder("e2fsck", "-fn", exported.toString()).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes());
        assertThat(p.waitFor()).as("e2fsck -fn on the exported image:\n%s", out).isZero();
    }
}
