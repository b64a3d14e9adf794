package io.jvhost.qemu;

import io.jvhost.bdev.FileBlockDevice;
import io.jvhost.bdev.MallocBlockDevice;
import io.jvhost.runtime.IdleStrategy;
import io.jvhost.vhost.Controller;
import io.jvhost.vhost.VhostTarget;
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
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * A real QEMU guest (TCG, Linux virtio_scsi + sd_mod) uses a jvhost vhost-user-scsi controller
 * with two targets (RAM and file): identity from sysfs and sg3-utils, data integrity and a file
 * system on both, then a target attached while the guest runs (found after the rescan event)
 * and detached again (the disk goes away without a hang). The controller and the hot-plug are
 * driven through the JSON-RPC server.
 */
@Tag("qemu")
class JvhostScsiQemuTest {
    static final long DISK = 64L << 20;
    static Path sockDir;
    static Path file;
    static VhostTarget target;
    static MallocBlockDevice ram;
    static List<String> lines;
    static int exitCode;

    @BeforeAll
    static void runGuest() throws Exception {
        assumeTrue(QemuGuest.available(), () -> "QEMU guest tests skipped: " + QemuGuest.unavailableReason().orElse(""));
        QemuGuest.image();
        sockDir = Files.createTempDirectory("jvhost-qemu");
        QemuGuest.Builder b = QemuGuest.builder("jvhost-scsi");
        file = b.runDir().resolve("file-disk.img");
        try (RandomAccessFile f = new RandomAccessFile(file.toFile(), "rw")) {
            f.setLength(DISK);
        }
        target = new VhostTarget(sockDir, 1, IdleStrategy.BACKOFF);
        ram = new MallocBlockDevice("Malloc0", DISK / 512, 512, null);
        target.bdevs().register(ram);
        target.bdevs().register(new FileBlockDevice("AIO0", file.toString(), 512, false, null));
        // The controller, its targets and the hot-plugged disk are all made through JSON-RPC, as an
        // operator would with 'jvhost rpc' or SPDK's rpc.py.
        rpc = io.jvhost.rpc.JsonRpcServer.start(sockDir.resolve("rpc.sock"), new io.jvhost.rpc.Methods(target));
        client = io.jvhost.rpc.RpcClient.connect(sockDir.resolve("rpc.sock"), Duration.ofSeconds(30));
        call("bdev_malloc_create", "{\"name\":\"Hot0\",\"num_blocks\":8192,\"block_size\":4096}");
        call("vhost_create_scsi_controller", "{\"ctrlr\":\"scsi0\",\"num_queues\":2}");
        call("vhost_scsi_controller_add_target", "{\"ctrlr\":\"scsi0\",\"scsi_target_num\":0,\"bdev_name\":\"Malloc0\"}");
        call("vhost_scsi_controller_add_target", "{\"ctrlr\":\"scsi0\",\"scsi_target_num\":-1,\"bdev_name\":\"AIO0\"}");
        Controller c = target.controller("scsi0");
        b.guestResource("blk-workload.sh", "/qemu/blk-workload.sh")
                .guestScript("""
                        dev_of() { # target id -> sdX
                          for d in /sys/block/sd*; do
                            [ -e "$d/device" ] || continue
                            t=$(basename "$(readlink "$d/device")" | cut -d: -f3)
                            [ "$t" = "$1" ] && { echo "${d##*/}"; return; }
                          done
                        }
                        wait_dev() { i=0; while [ -z "$(dev_of $1)" ] && [ $i -lt 200 ]; do sleep 0.1; i=$((i+1)); done; dev_of $1; }
                        A=$(wait_dev 0); B=$(wait_dev 1)
                        for d in $A $B; do
                          s=/sys/block/$d
                          echo "JVHOST-SD $d $(basename $(readlink $s/device)) [$(cat $s/device/vendor | tr -d ' ')] [$(cat $s/device/model | sed 's/ *$//')] $(cat $s/size) $(cat $s/queue/logical_block_size)"
                        done
                        echo "JVHOST-SGINQ $(sg_inq /dev/$A 2>&1 | grep -E 'Vendor identification' | tr -s ' ')"
                        echo "JVHOST-SERIAL $(sg_vpd -p sn /dev/$A 2>&1 | tr -s ' ' | tr '\\n' ' ')"
                        echo "JVHOST-READCAP $(sg_readcap -l /dev/$A 2>&1 | grep -E 'Last LBA|Logical block length' | tr -s ' ' | tr '\\n' ' ')"
                        echo "JVHOST-MODES $(sg_modes -p 8 /dev/$A 2>&1 | grep -c 'Caching')"
                        echo "JVHOST-UNMAP $(sg_unmap --lba=100 --num=8 /dev/$A >/dev/null 2>&1; echo $?)"
                        echo "JVHOST-TUR $(sg_turs /dev/$A >/dev/null 2>&1; echo $?)"
                        sh /blk-workload.sh /dev/$A ram || exit 1
                        sh /blk-workload.sh /dev/$B file || exit 1
                        echo JVHOST-ATTACH-NOW
                        read -r go
                        C=$(wait_dev 2)
                        echo "JVHOST-ATTACHED [$C] $(cat /sys/block/$C/size 2>/dev/null) $(cat /sys/block/$C/queue/logical_block_size 2>/dev/null)"
                        dd if=/dev/urandom of=/tmp/x bs=4k count=16 2>/dev/null
                        dd if=/tmp/x of=/dev/$C bs=4k count=16 oflag=direct 2>/dev/null
                        dd if=/dev/$C of=/tmp/y bs=4k count=16 iflag=direct 2>/dev/null
                        cmp /tmp/x /tmp/y && echo JVHOST-HOT-IO-OK
                        echo JVHOST-DETACH-NOW
                        read -r go
                        i=0; while [ -e /sys/block/$C ] && [ $i -lt 200 ]; do sleep 0.1; i=$((i+1)); done
                        [ -e /sys/block/$C ] && echo JVHOST-STILL-THERE || echo JVHOST-DETACHED
                        dd if=/dev/$A of=/dev/null bs=4k count=1 iflag=direct 2>/dev/null && echo JVHOST-STILL-SERVING
                        """)
                .qemuArgs("-chardev", "socket,id=c0,path=" + c.socketPath(),
                        "-device", "vhost-user-scsi-pci,chardev=c0,num_queues=2");
        try (QemuGuest g = b.start()) {
            g.awaitLine(QemuGuest.BOOTED, Duration.ofSeconds(90));
            g.awaitLine("^JVHOST-ATTACH-NOW", Duration.ofSeconds(240));
            assertThat(call("vhost_scsi_controller_add_target", "{\"ctrlr\":\"scsi0\",\"scsi_target_num\":-1,\"bdev_name\":\"Hot0\"}").asInt()).isEqualTo(2);
            g.sendLine("go");
            g.awaitLine("^JVHOST-DETACH-NOW", Duration.ofSeconds(60));
            call("vhost_scsi_controller_remove_target", "{\"ctrlr\":\"scsi0\",\"scsi_target_num\":2}");
            g.sendLine("go");
            exitCode = g.awaitExit(Duration.ofSeconds(60));
            lines = g.lines();
        }
    }

    static io.jvhost.rpc.JsonRpcServer rpc;
    static io.jvhost.rpc.RpcClient client;

    static com.fasterxml.jackson.databind.JsonNode call(String method, String params) throws Exception {
        return client.call(method, new com.fasterxml.jackson.databind.ObjectMapper().readTree(params));
    }

    @AfterAll
    static void stop() throws Exception {
        if (client != null) client.close();
        if (rpc != null) rpc.close();
        if (target != null) target.close();
        if (sockDir != null) Files.deleteIfExists(sockDir);
        // (the RPC socket was removed by the server)
    }

    @Test
    void guestSeesBothTargetsAsScsiDisks() {
        assertThat(lines).anyMatch(l -> l.matches("JVHOST-SD sd[a-z] \\d+:0:0:0 \\[JVHOST\\] \\[Malloc disk\\] 131072 512"));
        assertThat(lines).anyMatch(l -> l.matches("JVHOST-SD sd[a-z] \\d+:0:1:0 \\[JVHOST\\] \\[AIO disk\\] 131072 512"));
    }

    @Test
    void sg3UtilsSeeTheCommandSet() {
        assertThat(lines).anyMatch(l -> l.startsWith("JVHOST-SGINQ") && l.contains("JVHOST"));
        String serial = ram.uuid().toString().replace("-", "");
        assertThat(lines).anyMatch(l -> l.startsWith("JVHOST-SERIAL") && l.toLowerCase().contains(serial.toLowerCase()));
        assertThat(lines).anyMatch(l -> l.startsWith("JVHOST-READCAP") && l.contains("Last LBA=131071") && l.contains("Logical block length=512"));
        assertThat(lines).contains("JVHOST-MODES 1", "JVHOST-UNMAP 0", "JVHOST-TUR 0");
    }

    @Test
    void workloadsPassAndTheBytesMatch() throws Exception {
        assertThat(lines).contains("JVHOST-BLK-OK ram", "JVHOST-BLK-OK file");
        Path dump = Files.createTempFile("jvhost-ram", ".img");
        try (FileChannel ch = FileChannel.open(dump, StandardOpenOption.WRITE)) {
            ch.write(ram.memory().asByteBuffer());
        }
        try {
            assertThat(QemuGuest.verifyMd5Lines(lines, dump, "ram")).isGreaterThanOrEqualTo(10);
        } finally {
            Files.delete(dump);
        }
        assertThat(QemuGuest.verifyMd5Lines(lines, file, "file")).isGreaterThanOrEqualTo(10);
    }

    @Test
    void hotAttachedTargetAppearsAndServesIo() {
        assertThat(lines).anyMatch(l -> l.matches("JVHOST-ATTACHED \\[sd[a-z]\\] 65536 4096"));
        assertThat(lines).contains("JVHOST-HOT-IO-OK");
    }

    @Test
    void detachedTargetGoesAwayWithoutAHang() {
        assertThat(lines).contains("JVHOST-DETACHED", "JVHOST-STILL-SERVING");
        assertThat(exitCode).isZero();
        assertThat(target.bdevs().claimedBy("Hot0")).isEmpty();
    }
}
