package io.jvhost.vhost;

import io.jvhost.bdev.MallocBlockDevice;
import io.jvhost.initiator.BlkInitiator;
import io.jvhost.initiator.VhostUserFrontend;
import io.jvhost.runtime.IdleStrategy;
import io.jvhost.sys.MemFd;
import io.jvhost.sys.Fd;
import io.jvhost.sys.UnixSocket;
import io.jvhost.virtio.SplitRing;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import static org.awaitility.Awaitility.await;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.EOFException;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.time.Duration;

import static io.jvhost.virtio.BlkLayout.*;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

/**
 * Misbehaving front-ends and guests: each gets a clear refusal (closed connection, NACK or a
 * failed request) while another controller keeps serving its own front-end.
 */
class HostileFrontEndTest {
    @TempDir
    Path dir;
    VhostTarget target;
    Controller victim;
    BlkInitiator bystander;

    @BeforeEach
    void setUp() throws Exception {
        target = new VhostTarget(dir, 1, IdleStrategy.BACKOFF);
        target.bdevs().register(new MallocBlockDevice("Bad", 2048, 512, null));
        target.bdevs().register(new MallocBlockDevice("Good", 2048, 512, null));
        victim = target.createBlkController("bad", "Bad", false, 2, null);
        target.createBlkController("good", "Good", false, 2, null);
        bystander = BlkInitiator.connect(dir.resolve("good").toString(), 1, 64, 1 << 20);
    }

    @AfterEach
    void tearDown() {
        bystander.close();
        target.close();
    }

    private void bystanderStillServes() throws IOException {
        bystander.data().set(ValueLayout.JAVA_LONG, 0, System.nanoTime());
        long v = bystander.data().get(ValueLayout.JAVA_LONG, 0);
        assertThat(bystander.write(0, 3, 512)).isEqualTo(S_OK);
        bystander.data().fill((byte) 0);
        assertThat(bystander.read(0, 3, 512)).isEqualTo(S_OK);
        assertThat(bystander.data().get(ValueLayout.JAVA_LONG, 0)).isEqualTo(v);
    }

    /** Sends raw bytes and expects the target to close the connection. */
    private void sendRawExpectClose(int request, int flags, int size, byte[] payload, int... fds) throws Exception {
        try (UnixSocket s = UnixSocket.connect(dir.resolve("bad").toString()); Arena a = Arena.ofConfined()) {
            MemorySegment b = a.allocate(12 + payload.length);
            b.set(ValueLayout.JAVA_INT_UNALIGNED, 0, request);
            b.set(ValueLayout.JAVA_INT_UNALIGNED, 4, flags);
            b.set(ValueLayout.JAVA_INT_UNALIGNED, 8, size);
            MemorySegment.copy(payload, 0, b, ValueLayout.JAVA_BYTE, 12, payload.length);
            s.send(b, b.byteSize(), fds);
            MemorySegment buf = a.allocate(64);
            assertThatThrownBy(() -> s.recv(buf, 64)).isInstanceOf(EOFException.class);
        }
    }

    @Test
    void garbageHeaderClosesOnlyThatConnection() throws Exception {
        long before = victim.stats.protocolErrors.get();
        sendRawExpectClose(0x41414141, 0x41414141, 0x41414141, new byte[32]);
        await().atMost(Duration.ofSeconds(5)).until(() -> victim.stats.protocolErrors.get() == before + 1);
        bystanderStillServes();
    }

    @Test
    void oversizedSizeFieldClosesTheConnection() throws Exception {
        sendRawExpectClose(2, 1, 1 << 30, new byte[8]);
        bystanderStillServes();
    }

    @Test
    void badFdCountsCloseTheConnection() throws Exception {
        int fd = MemFd.create("x", 4096);
        try {
            sendRawExpectClose(12 /* SET_VRING_KICK */, 1, 8, new byte[8], fd, fd);
            sendRawExpectClose(2 /* SET_FEATURES */, 1, 8, new byte[8], fd);
        } finally {
            Fd.closeQuietly(fd);
        }
        bystanderStillServes();
    }

    @Test
    void ringIndexOutOfRangeClosesTheConnection() throws Exception {
        byte[] p = new byte[8];
        p[0] = 7; // ring 7 on a 2-queue device
        p[4] = 0; p[5] = 1; // num 256
        sendRawExpectClose(8 /* SET_VRING_NUM */, 1, 8, p);
        bystanderStillServes();
    }

    @Test
    void semanticErrorsAreNackedAndTheConnectionGoesOn() throws Exception {
        try (VhostUserFrontend fe = VhostUserFrontend.connect(dir.resolve("bad").toString())) {
            fe.getFeatures();
            fe.setProtocolFeatures(1L << 3); // REPLY_ACK
            fe.useReplyAck(true);
            assertThatThrownBy(() -> fe.setFeatures(1L << 60)).as("transport feature never offered").hasMessageContaining("rejected");
            assertThatThrownBy(() -> fe.setFeatures(1L << 34)).as("packed ring never offered").hasMessageContaining("rejected");
            assertThatThrownBy(() -> fe.setVringNum(0, 100)).as("not a power of two").hasMessageContaining("rejected");
            assertThatThrownBy(() -> fe.setVringNum(0, 65536)).hasMessageContaining("rejected");
            assertThatThrownBy(() -> fe.setVringNum(0, 2048)).as("larger than the 1024 we preallocate for").hasMessageContaining("rejected");
            assertThatThrownBy(() -> fe.setConfig(0, new byte[8])).as("capacity is read-only").hasMessageContaining("rejected");
            // a memory region whose fd cannot be mapped at that offset/size
            try (var shm = new io.jvhost.initiator.SharedMemory(1 << 20, 0)) {
                assertThatThrownBy(() -> fe.addMemRegion(shm, 0, 0, 1L << 40)).hasMessageContaining("rejected");
            }
            // ring addresses outside guest memory: the ring does not start, the kick is NACKed
            fe.setVringNum(0, 64);
            fe.setVringAddr(0, 0x1000, 0x3000, 0x2000);
            int kick = io.jvhost.sys.EventFd.create(true);
            try (var shm = new io.jvhost.initiator.SharedMemory(1 << 20, 0)) {
                fe.setMemTable(shm);
                assertThatThrownBy(() -> fe.setVringKick(0, kick)).hasMessageContaining("rejected");
            } finally {
                Fd.closeQuietly(kick);
            }
            // still talking
            assertThat(fe.getQueueNum()).isEqualTo(2);
            assertThat(victim.stats.protocolErrors.get()).isZero();
        }
        bystanderStillServes();
    }

    @Test
    void aHostileGuestChainFailsOnlyThatRequest() throws Exception {
        try (BlkInitiator ini = BlkInitiator.connect(dir.resolve("bad").toString(), 1, 64, 1 << 20)) {
            var q = ini.queue(0);
            // a chain pointing far outside guest memory, then a loop
            q.writeDescriptor(60, 0x7fff_0000_0000L, 4096, SplitRing.F_NEXT, 61);
            q.writeDescriptor(61, ini.dataGpa(), 1, SplitRing.F_WRITE, 0);
            q.pushRawHead(60);
            io.jvhost.sys.EventFd.signal(ini.kickFd(0), Arena.ofAuto().allocate(8));
            ini.waitFor(0, 60, Duration.ofSeconds(5));
            q.writeDescriptor(62, ini.dataGpa(), 16, SplitRing.F_NEXT, 63);
            q.writeDescriptor(63, ini.dataGpa(), 16, SplitRing.F_NEXT, 62);
            q.pushRawHead(62);
            io.jvhost.sys.EventFd.signal(ini.kickFd(0), Arena.ofAuto().allocate(8));
            ini.waitFor(0, 62, Duration.ofSeconds(5));
            // the same queue serves good requests afterwards
            assertThat(ini.write(0, 0, 4096)).isEqualTo(S_OK);
            assertThat(ini.read(0, 0, 4096)).isEqualTo(S_OK);
            assertThat(victim.session().runningQueues().get(0).stats().chainErrors()).isEqualTo(2);
        }
        bystanderStillServes();
    }

    @Test
    void aSecondFrontEndMayConnectButItsRingsWaitForTheFirstToStop() throws Exception {
        BlkInitiator first = BlkInitiator.connect(dir.resolve("bad").toString(), 1, 64, 1 << 20);
        CompletableFuture<BlkInitiator> second;
        try {
            second = CompletableFuture.supplyAsync(() -> {
                try {
                    return BlkInitiator.connect(dir.resolve("bad").toString(), 1, 64, 1 << 20);
                } catch (IOException e) {
                    throw new java.io.UncheckedIOException(e);
                }
            });
            await().atMost(Duration.ofSeconds(10)).until(() -> victim.sessions().size() == 2);
            // the first keeps its rings while the second waits for the lease
            assertThat(first.write(0, 0, 512)).isEqualTo(S_OK);
            assertThat(second).isNotDone();
        } finally {
            first.close();
        }
        try (BlkInitiator s = second.get(20, TimeUnit.SECONDS)) {
            assertThat(s.read(0, 0, 512)).isEqualTo(S_OK);
        }
        assertThat(victim.stats.connections.get()).isEqualTo(2);
        assertThat(victim.stats.ringLeaseRefusals.get()).isZero();
        assertThat(victim.stats.refusedConnections.get()).isZero();
    }

    @Test
    void aSecondFrontEndsRingsAreRefusedWhileTheFirstsStillRun() throws Exception {
        victim.ringLeaseWaitMs(200);
        try (BlkInitiator first = BlkInitiator.connect(dir.resolve("bad").toString(), 1, 64, 1 << 20)) {
            assertThatThrownBy(() -> BlkInitiator.connect(dir.resolve("bad").toString(), 1, 64, 1 << 20)).isInstanceOf(Exception.class);
            assertThat(victim.stats.ringLeaseRefusals.get()).isEqualTo(1);
            assertThat(first.read(0, 0, 512)).isEqualTo(S_OK);
        }
        bystanderStillServes();
    }

    @Test
    void connectionsBeyondTheSessionLimitAreRefused() throws Exception {
        List<SocketChannel> open = new ArrayList<>();
        try {
            for (int i = 0; i < Controller.MAX_SESSIONS; i++) {
                SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX);
                ch.connect(UnixDomainSocketAddress.of(dir.resolve("bad")));
                open.add(ch);
            }
            await().atMost(Duration.ofSeconds(10)).until(() -> victim.sessions().size() == Controller.MAX_SESSIONS);
            try (SocketChannel extra = SocketChannel.open(StandardProtocolFamily.UNIX)) {
                extra.connect(UnixDomainSocketAddress.of(dir.resolve("bad")));
                assertThat(extra.read(ByteBuffer.allocate(1))).as("closed by the controller").isEqualTo(-1);
            }
            assertThat(victim.stats.refusedConnections.get()).isEqualTo(1);
        } finally {
            for (SocketChannel ch : open) ch.close();
        }
        await().atMost(Duration.ofSeconds(10)).until(() -> victim.sessions().isEmpty());
        bystanderStillServes();
    }
}
