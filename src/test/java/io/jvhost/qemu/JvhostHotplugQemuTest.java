package io.jvhost.qemu;

import io.jvhost.bdev.MallocBlockDevice;
import io.jvhost.runtime.IdleStrategy;
import io.jvhost.vhost.Controller;
import io.jvhost.vhost.Session;
import io.jvhost.vhost.VhostTarget;
import io.jvhost.vhostuser.VhostUserProtocol;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Memory hotplug under I/O: a guest with {@code -m 512M,slots=4,maxmem=2G} does I/O on a jvhost
 * vhost-user-blk disk while the host adds a 512 MiB memfd pc-dimm over QMP; the guest onlines the
 * new memory as ZONE_MOVABLE (so its I/O buffers and page cache come from it) and runs the
 * block workload; the host checks the bytes behind the disk. Once with ADD_MEM_REG (QEMU's path
 * when CONFIGURE_MEM_SLOTS is negotiated) and once with that feature withheld, so QEMU sends a
 * whole new SET_MEM_TABLE.
 */
@Tag("qemu")
class JvhostHotplugQemuTest {
    static final long DISK = 96L << 20;
    Path sockDir;
    VhostTarget target;

    @BeforeEach
    void setUp() throws Exception {
        assumeTrue(QemuGuest.available(), () -> "QEMU guest tests skipped: " + QemuGuest.unavailableReason().orElse(""));
        QemuGuest.image();
        sockDir = Files.createTempDirectory("jvhost-hotplug");
        target = new VhostTarget(sockDir, 1, IdleStrategy.BACKOFF);
    }

    @AfterEach
    void tearDown() throws Exception {
        if (target != null) target.close();
        if (sockDir != null) {
            try (var s = Files.list(sockDir)) {
                for (Path p : s.toList()) Files.deleteIfExists(p);
            }
            Files.deleteIfExists(sockDir);
        }
    }

    @ParameterizedTest(name = "memory slots offered: {0}")
    @ValueSource(booleans = {true, false})
    void guestUsesHotpluggedMemoryForIoWithoutLosingARequest(boolean memSlots) throws Exception {
        MallocBlockDevice ram = new MallocBlockDevice("Malloc0", DISK / 512, 512, null);
        target.bdevs().register(ram);
        Controller c = target.createBlkController("hp", "Malloc0", false, 2, null);
        if (!memSlots) c.withholdProtocolFeatures(1L << VhostUserProtocol.PF_CONFIGURE_MEM_SLOTS);
        String name = "jvhost-hotplug-" + (memSlots ? "addmemreg" : "memtable");
        QemuGuest.Builder b = QemuGuest.builder(name);
        Path qmpSock = b.runDir().resolve("qmp.sock");
        b.memoryHotplug(4, 2048)
                .guestResource("blk-workload.sh", "/qemu/blk-workload.sh")
                .guestResource("hotplug-guest.sh", "/qemu/hotplug-guest.sh")
                .guestScript("sh /hotplug-guest.sh /dev/vda")
                .qemuArgs("-qmp", "unix:" + qmpSock + ",server=on,wait=off",
                        "-chardev", "socket,id=c0,path=" + c.socketPath(),
                        "-device", "vhost-user-blk-pci,chardev=c0,num-queues=2");
        List<String> lines;
        int exit;
        int regionsBefore;
        long requestsBefore;
        try (QemuGuest g = b.start(); Qmp qmp = Qmp.connect(qmpSock, Duration.ofSeconds(30))) {
            g.awaitLine(QemuGuest.BOOTED, Duration.ofSeconds(120));
            g.awaitLine("^JVHOST-HOTPLUG-READY", Duration.ofSeconds(120));
            Session s = c.session();
            regionsBefore = s.memoryRegions().size();
            requestsBefore = s.runningQueues().stream().mapToLong(q -> q.stats().requests()).sum();
            boolean slotsNegotiated = (s.ackedProtocolFeatures() & (1L << VhostUserProtocol.PF_CONFIGURE_MEM_SLOTS)) != 0;
            assertThat(slotsNegotiated).as("CONFIGURE_MEM_SLOTS negotiated").isEqualTo(memSlots);
            qmp.call("object-add", "qom-type", "memory-backend-memfd", "id", "hp0", "size", 512L << 20, "share", true);
            qmp.call("device_add", "driver", "pc-dimm", "id", "dimm0", "memdev", "hp0");
            // QEMU tells the back-end about the new region while plugging the DIMM.
            await().atMost(Duration.ofSeconds(30)).until(() -> s.memoryRegions().size() > regionsBefore);
            assertThat(s.memoryRegions()).anySatisfy(r -> assertThat(r.size()).isEqualTo(512L << 20));
            g.sendLine("plugged");
            exit = g.awaitExit(Duration.ofSeconds(400));
            lines = g.lines();
        }
        assertThat(c.stats.connections.get()).as("one connection served the whole run").isEqualTo(1);
        assertThat(c.stats.failedRequests.get()).as("no vhost-user request failed").isZero();
        assertThat(lines).noneMatch(l -> l.startsWith("JVHOST-BG-FAIL") || l.startsWith("JVHOST-HOTPLUG-FAIL"));
        assertThat(lines).contains("JVHOST-BLK-OK hp");
        assertThat(exit).isZero();
        assertThat(lines).anyMatch(l -> l.matches("JVHOST-ONLINED [1-9][0-9]*"));
        long movableUsed = lines.stream().filter(l -> l.startsWith("JVHOST-MOVABLE-USED ")).mapToLong(l -> Long.parseLong(l.split(" ")[1]))
                .findFirst().orElse(-1);
        // The workload moves tens of MiB through buffers and page cache: a few thousand 4 KiB pages
        // of the new memory must have been in use at some point.
        assertThat(movableUsed).as("pages of hot-plugged memory in use during the workload").isGreaterThan(2048);
        assertThat(requestsBefore).isPositive();
        Path dump = Files.createTempFile("jvhost-hp", ".img");
        try (FileChannel ch = FileChannel.open(dump, StandardOpenOption.WRITE)) {
            ch.write(ram.memory().asByteBuffer());
        }
        try {
            assertThat(QemuGuest.verifyMd5Lines(lines, dump, "hp")).isGreaterThanOrEqualTo(10);
        } finally {
            Files.delete(dump);
        }
    }
}
