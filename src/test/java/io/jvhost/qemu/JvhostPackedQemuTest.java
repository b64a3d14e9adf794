package io.jvhost.qemu;

import io.jvhost.bdev.MallocBlockDevice;
import io.jvhost.runtime.IdleStrategy;
import io.jvhost.vhost.Controller;
import io.jvhost.vhost.VhostTarget;
import io.jvhost.virtio.PackedVirtQueue;
import io.jvhost.virtio.VirtQueue;
import io.jvhost.virtio.VirtioFeatures;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

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
 * Packed virtqueues with a real QEMU guest (TCG, Linux virtio_blk and virtio_scsi), one boot for
 * both device kinds: a vhost-user-blk-pci and a vhost-user-scsi-pci device with {@code packed=on}
 * on jvhost controllers created with {@code packed_ring: true}. The guest shows from sysfs that
 * it negotiated VIRTIO_F_RING_PACKED (feature bit 34) on both, runs the same data workload as
 * the split-ring tests on each disk, and the host compares the bytes behind each disk with what
 * the guest says it wrote; while the guest runs, every ring of both controllers is a
 * {@link PackedVirtQueue}.
 */
@Tag("qemu")
class JvhostPackedQemuTest {
    static final long DISK = 64L << 20;
    static Path sockDir;
    static VhostTarget target;
    static MallocBlockDevice blkRam, scsiRam;
    static List<String> lines;
    static int exitCode;
    static final List<String> rings = new ArrayList<>();
    static long blkFeatures, scsiFeatures;

    @BeforeAll
    static void runGuest() throws Exception {
        assumeTrue(QemuGuest.available(), () -> "QEMU guest tests skipped: " + QemuGuest.unavailableReason().orElse(""));
        QemuGuest.image();
        sockDir = Files.createTempDirectory("jvhost-qemu");
        QemuGuest.Builder b = QemuGuest.builder("jvhost-packed");
        target = new VhostTarget(sockDir, 1, IdleStrategy.BACKOFF);
        blkRam = new MallocBlockDevice("Malloc0", DISK / 512, 512, null);
        scsiRam = new MallocBlockDevice("Malloc1", DISK / 512, 512, null);
        target.bdevs().register(blkRam);
        target.bdevs().register(scsiRam);
        Controller blk, scsi;
        try (var rpc = io.jvhost.rpc.JsonRpcServer.start(sockDir.resolve("rpc.sock"), new io.jvhost.rpc.Methods(target));
             var client = io.jvhost.rpc.RpcClient.connect(sockDir.resolve("rpc.sock"), Duration.ofSeconds(30))) {
            var json = new com.fasterxml.jackson.databind.ObjectMapper();
            client.call("vhost_create_blk_controller", json.readTree("{\"ctrlr\":\"blk\",\"dev_name\":\"Malloc0\",\"num_queues\":2,\"packed_ring\":true}"));
            client.call("vhost_create_scsi_controller", json.readTree("{\"ctrlr\":\"scsi\",\"num_queues\":1,\"packed_ring\":true}"));
            client.call("vhost_scsi_controller_add_target", json.readTree("{\"ctrlr\":\"scsi\",\"scsi_target_num\":0,\"bdev_name\":\"Malloc1\"}"));
            blk = target.controller("blk");
            scsi = target.controller("scsi");
        }
        b.guestResource("blk-workload.sh", "/qemu/blk-workload.sh")
                .guestScript("""
                        # features: one character per bit, bit 0 first; bit 34 is VIRTIO_F_RING_PACKED
                        for v in /sys/bus/virtio/devices/*; do
                          echo "JVHOST-VIRTIO $(cat $v/device) packed=$(cut -c35 $v/features)"
                        done
                        i=0; while ! ls /sys/block | grep -q '^sd' && [ $i -lt 200 ]; do sleep 0.1; i=$((i+1)); done
                        S=$(ls /sys/block | grep '^sd' | head -n 1)
                        echo "JVHOST-SCSI-DISK [$S]"
                        taskset -c 0 dd if=/dev/vda of=/dev/null bs=64k count=32 iflag=direct 2>/dev/null
                        taskset -c 1 dd if=/dev/vda of=/dev/null bs=64k count=32 iflag=direct 2>/dev/null
                        sh /blk-workload.sh /dev/vda blk || exit 1
                        sh /blk-workload.sh /dev/$S scsi || exit 1
                        echo JVHOST-SAMPLE
                        read -r ignored
                        """)
                .qemuArgs("-chardev", "socket,id=c0,path=" + blk.socketPath(),
                        "-device", "vhost-user-blk-pci,chardev=c0,num-queues=2,packed=on",
                        "-chardev", "socket,id=c1,path=" + scsi.socketPath(),
                        "-device", "vhost-user-scsi-pci,chardev=c1,num_queues=1,packed=on");
        try (QemuGuest g = b.start()) {
            g.awaitLine(QemuGuest.BOOTED, Duration.ofSeconds(90));
            g.awaitLine("^JVHOST-SAMPLE", Duration.ofSeconds(300));
            for (Controller c : List.of(blk, scsi)) {
                for (VirtQueue q : c.session().runningQueues()) {
                    rings.add(c.name() + ":" + q.index() + ":" + q.getClass().getSimpleName() + ":" + q.stats().requests() + ":" + q.stats().chainErrors());
                }
            }
            blkFeatures = blk.session().negotiatedFeatures();
            scsiFeatures = scsi.session().negotiatedFeatures();
            g.sendLine("go");
            exitCode = g.awaitExit(Duration.ofSeconds(60));
            lines = g.lines();
        }
        System.out.println("jvhost packed guest rings: " + rings);
    }

    @AfterAll
    static void stop() throws Exception {
        if (target != null) target.close();
        if (sockDir != null) Files.deleteIfExists(sockDir);
    }

    @Test
    void guestNegotiatedPackedRingsOnBothDevices() {
        // virtio device ids: 2 block, 8 SCSI
        assertThat(lines).contains("JVHOST-VIRTIO 0x0002 packed=1", "JVHOST-VIRTIO 0x0008 packed=1");
        assertThat(VirtioFeatures.has(blkFeatures, VirtioFeatures.RING_PACKED)).isTrue();
        assertThat(VirtioFeatures.has(scsiFeatures, VirtioFeatures.RING_PACKED)).isTrue();
    }

    @Test
    void everyRingIsPackedAndCarriedRequestsWithoutChainErrors() {
        // blk: 2 request queues; scsi: control, event, 1 request queue
        assertThat(rings).hasSize(5);
        assertThat(rings).allMatch(r -> r.split(":")[2].equals("PackedVirtQueue"));
        assertThat(rings).allMatch(r -> r.endsWith(":0"));
        assertThat(rings).filteredOn(r -> r.startsWith("blk:")).allMatch(r -> Long.parseLong(r.split(":")[3]) > 0);
        assertThat(rings).anyMatch(r -> r.startsWith("scsi:2:") && Long.parseLong(r.split(":")[3]) > 0);
    }

    @Test
    void guestWorkloadsPass() {
        assertThat(lines).contains("JVHOST-BLK-OK blk", "JVHOST-BLK-OK scsi");
        assertThat(lines).noneMatch(l -> l.equals("JVHOST-SCSI-DISK []"));
        assertThat(exitCode).isZero();
    }

    @Test
    void disksHoldExactlyWhatTheGuestWrote() throws Exception {
        for (var disk : List.of(new Object[] {blkRam, "blk"}, new Object[] {scsiRam, "scsi"})) {
            Path dump = Files.createTempFile("jvhost-packed", ".img");
            try (FileChannel ch = FileChannel.open(dump, StandardOpenOption.WRITE)) {
                ch.write(((MallocBlockDevice) disk[0]).memory().asByteBuffer());
            }
            try {
                assertThat(QemuGuest.verifyMd5Lines(lines, dump, (String) disk[1])).as((String) disk[1]).isGreaterThanOrEqualTo(10);
            } finally {
                Files.delete(dump);
            }
        }
    }
}
