package io.jvhost.vhostuser;

import io.jvhost.sys.Fd;
import io.jvhost.sys.MemFd;
import io.jvhost.sys.Mmap;
import io.jvhost.sys.UnixSocket;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.io.EOFException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import static io.jvhost.vhostuser.VhostUserProtocol.*;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** The codec over a real socketpair, fds included. */
class VhostUserConnectionTest {
    final UnixSocket[] pair = UnixSocket.pair();
    final VhostUserConnection frontEnd = new VhostUserConnection(pair[0], false);
    final VhostUserConnection backEnd = new VhostUserConnection(pair[1], true);
    final VhostUserMessage out = new VhostUserMessage();
    final VhostUserMessage in = new VhostUserMessage();
    final Arena arena = Arena.ofConfined();

    @AfterEach
    void close() {
        frontEnd.close();
        backEnd.close();
        out.close();
        in.close();
        arena.close();
    }

    /** Writes raw bytes (header and payload as given) with fds. */
    void raw(int request, int flags, int size, byte[] payload, int... fds) {
        MemorySegment b = arena.allocate(12 + payload.length);
        b.set(ValueLayout.JAVA_INT_UNALIGNED, 0, request);
        b.set(ValueLayout.JAVA_INT_UNALIGNED, 4, flags);
        b.set(ValueLayout.JAVA_INT_UNALIGNED, 8, size);
        MemorySegment.copy(payload, 0, b, ValueLayout.JAVA_BYTE, 12, payload.length);
        pair[0].send(b, b.byteSize(), fds);
    }

    @Test
    void memTableWithFdsRoundTrips() throws Exception {
        int fd1 = MemFd.create("a", 8192), fd2 = MemFd.create("b", 4096);
        try (Mmap m = Mmap.map(fd1, 4096, 4096, true)) {
            m.segment().set(ValueLayout.JAVA_LONG, 0, 0x1122334455667788L);
            out.begin(VhostUserRequest.SET_MEM_TABLE, VERSION | FLAG_NEED_REPLY, 8 + 64);
            out.putU32(0, 2);
            out.putU64(8, 0x1000);
            out.putU64(16, 4096);
            out.putU64(40, 4096);
            frontEnd.send(out, fd1, fd2);
            backEnd.receive(in);
            assertThat(in.request).isEqualTo(VhostUserRequest.SET_MEM_TABLE);
            assertThat(in.needReply()).isTrue();
            assertThat(in.size).isEqualTo(72);
            assertThat(in.u32(0)).isEqualTo(2);
            assertThat(in.u64(8)).isEqualTo(0x1000);
            assertThat(in.u64(40)).isEqualTo(4096);
            assertThat(in.fds()).hasSize(2);
            // the received fd maps the same memory
            try (Mmap m2 = Mmap.map(in.fds()[0], 4096, 4096, true)) {
                assertThat(m2.segment().get(ValueLayout.JAVA_LONG, 0)).isEqualTo(0x1122334455667788L);
            }
            int[] received = in.fds().clone();
            in.closeFds();
            assertThat(Fd.isValid(received[0])).isFalse();
        } finally {
            Fd.closeQuietly(fd1);
            Fd.closeQuietly(fd2);
        }
    }

    @Test
    void replyRoundTrips() throws Exception {
        out.begin(VhostUserRequest.GET_FEATURES, VERSION, 8);
        out.putU64(0, 0xabcdL);
        backEnd.reply(out, VhostUserRequest.GET_FEATURES, 8);
        frontEnd.receive(in);
        assertThat(in.request).isEqualTo(VhostUserRequest.GET_FEATURES);
        assertThat(in.flags & FLAG_REPLY).isNotZero();
        assertThat(in.u64(0)).isEqualTo(0xabcdL);
    }

    @Test
    void aBackEndToleratesOddHeaderFlagsAsDpdkAndLibvhostUserDo() throws Exception {
        raw(1, 0x2, 0, new byte[0]);
        backEnd.receive(in);
        assertThat(in.request).isEqualTo(VhostUserRequest.GET_FEATURES);
        assertThat(in.tolerated).isEqualTo(VhostUserMessage.TOLERATED_VERSION);
        raw(1, 0x1 | 0x100, 0, new byte[0]);
        backEnd.receive(in);
        assertThat(in.tolerated).isEqualTo(VhostUserMessage.TOLERATED_UNKNOWN_FLAGS);
        raw(1, 0x5, 0, new byte[0]);
        backEnd.receive(in);
        assertThat(in.tolerated).isEqualTo(VhostUserMessage.TOLERATED_REPLY_FLAG);
        raw(1, 0x1 | FLAG_NEED_REPLY, 0, new byte[0]);
        backEnd.receive(in);
        assertThat(in.tolerated).as("a message by the spec").isZero();
        assertThat(in.needReply()).isTrue();
    }

    @Test
    void aFrontEndStaysStrictAboutReplyHeaders() {
        // what QEMU and SPDK's virtio-user require of a reply
        pair[1].send(header(1, 0x1, 0), 12);
        assertThatThrownBy(() -> frontEnd.receive(in)).isInstanceOf(VhostUserProtocolException.class).hasMessageContaining("request where a reply");
        pair[1].send(header(1, 0x6, 0), 12);
        assertThatThrownBy(() -> frontEnd.receive(in)).isInstanceOf(VhostUserProtocolException.class).hasMessageContaining("version");
        pair[1].send(header(1, 0x105, 0), 12);
        assertThatThrownBy(() -> frontEnd.receive(in)).isInstanceOf(VhostUserProtocolException.class).hasMessageContaining("flag");
    }

    private MemorySegment header(int request, int flags, int size) {
        MemorySegment b = arena.allocate(12 + size);
        b.set(ValueLayout.JAVA_INT_UNALIGNED, 0, request);
        b.set(ValueLayout.JAVA_INT_UNALIGNED, 4, flags);
        b.set(ValueLayout.JAVA_INT_UNALIGNED, 8, size);
        return b;
    }

    @Test
    void rejectsAnOversizedPayload() {
        // (a connection is closed after a framing error: each header goes out alone so the
        // next read starts at a header again)
        raw(2, 0x1, 0x7fffffff, new byte[0]);
        assertThatThrownBy(() -> backEnd.receive(in)).isInstanceOf(VhostUserProtocolException.class).hasMessageContaining("exceeds");
        raw(2, 0x1, -1, new byte[0]);
        assertThatThrownBy(() -> backEnd.receive(in)).isInstanceOf(VhostUserProtocolException.class).hasMessageContaining("exceeds");
    }

    @Test
    void rejectsPayloadsShorterThanTheirStructure() {
        raw(VhostUserRequest.SET_FEATURES.code, 0x1, 4, new byte[4]);
        assertThatThrownBy(() -> backEnd.receive(in)).hasMessageContaining("8-byte");
        raw(VhostUserRequest.SET_VRING_ADDR.code, 0x1, 8, new byte[8]);
        assertThatThrownBy(() -> backEnd.receive(in)).hasMessageContaining("40-byte");
        raw(VhostUserRequest.REM_MEM_REG.code, 0x1, 32, new byte[32]);
        assertThatThrownBy(() -> backEnd.receive(in)).hasMessageContaining("40-byte");
        byte[] cfg = new byte[12 + 4];
        cfg[4] = 8; // SET_CONFIG of 8 bytes with 4 sent
        raw(VhostUserRequest.SET_CONFIG.code, 0x1, cfg.length, cfg);
        assertThatThrownBy(() -> backEnd.receive(in)).hasMessageContaining("size field");
    }

    @Test
    void toleratesPayloadsLongerThanTheirStructure() throws Exception {
        byte[] p = new byte[16];
        p[0] = 0x42;
        raw(VhostUserRequest.SET_FEATURES.code, 0x1, 16, p);
        backEnd.receive(in);
        assertThat(in.u64(0)).isEqualTo(0x42);
        assertThat(in.tolerated).isEqualTo(VhostUserMessage.TOLERATED_TRAILING_BYTES);
        raw(VhostUserRequest.GET_FEATURES.code, 0x1, 8, new byte[8]);
        backEnd.receive(in);
        assertThat(in.request).isEqualTo(VhostUserRequest.GET_FEATURES);
        assertThat(in.tolerated).isEqualTo(VhostUserMessage.TOLERATED_TRAILING_BYTES);
        // the stream stays in sync after the extra bytes
        raw(VhostUserRequest.GET_QUEUE_NUM.code, 0x1, 0, new byte[0]);
        backEnd.receive(in);
        assertThat(in.request).isEqualTo(VhostUserRequest.GET_QUEUE_NUM);
        assertThat(in.tolerated).isZero();
    }

    @Test
    void getConfigOfTheFullSpaceAndAHeaderOnlyGetConfigAreAccepted() throws Exception {
        byte[] cfg = new byte[12 + 256];
        cfg[5] = 1; // size 256, as SPDK's virtio-user asks
        raw(VhostUserRequest.GET_CONFIG.code, 0x1, cfg.length, cfg);
        backEnd.receive(in);
        assertThat(in.u32(4)).isEqualTo(256);
        assertThat(in.tolerated).isZero();
        raw(VhostUserRequest.GET_CONFIG.code, 0x1, 12, java.util.Arrays.copyOf(cfg, 12));
        backEnd.receive(in);
        assertThat(in.u32(4)).isEqualTo(256);
        cfg[5] = 2; // 512 bytes: more than any config space
        raw(VhostUserRequest.GET_CONFIG.code, 0x1, 12, java.util.Arrays.copyOf(cfg, 12));
        assertThatThrownBy(() -> backEnd.receive(in)).hasMessageContaining("exceeds");
    }

    @Test
    void rejectsMemTablesWithBadCounts() {
        byte[] p = new byte[8 + 32];
        p[0] = 9; // nine regions claimed
        raw(VhostUserRequest.SET_MEM_TABLE.code, 0x1, p.length, p);
        assertThatThrownBy(() -> backEnd.receive(in)).hasMessageContaining("regions");
        p[0] = 1; // one region, no fd
        raw(VhostUserRequest.SET_MEM_TABLE.code, 0x1, p.length, p);
        assertThatThrownBy(() -> backEnd.receive(in)).hasMessageContaining("file descriptors");
        p[0] = 2; // two regions, one described
        raw(VhostUserRequest.SET_MEM_TABLE.code, 0x1, p.length, p);
        assertThatThrownBy(() -> backEnd.receive(in)).hasMessageContaining("needs");
    }

    @Test
    void anEmptyMemTableIsAccepted() throws Exception {
        raw(VhostUserRequest.SET_MEM_TABLE.code, 0x1, 8, new byte[8]);
        backEnd.receive(in);
        assertThat(in.request).isEqualTo(VhostUserRequest.SET_MEM_TABLE);
        assertThat(in.u32(0)).isZero();
        int fd = MemFd.create("x", 4096);
        try {
            raw(VhostUserRequest.SET_MEM_TABLE.code, 0x1, 8, new byte[8], fd);
            assertThatThrownBy(() -> backEnd.receive(in)).as("an fd with no region").hasMessageContaining("file descriptors");
        } finally {
            Fd.closeQuietly(fd);
        }
    }

    @Test
    void fdsWhereNoneBelongAreClosedAndRejected() throws Exception {
        int fd = MemFd.create("x", 4096);
        int[] before;
        try {
            byte[] p = new byte[8];
            raw(VhostUserRequest.SET_FEATURES.code, 0x1, 8, p, fd, fd);
            assertThatThrownBy(() -> backEnd.receive(in)).isInstanceOf(VhostUserProtocolException.class).hasMessageContaining("file descriptors");
            before = in.fds();
            for (int f : before) assertThat(f).isEqualTo(-1);
        } finally {
            Fd.closeQuietly(fd);
        }
    }

    @Test
    void vringFileNoFdFlagMustMatchTheFds() throws Exception {
        int fd = MemFd.create("x", 4096);
        try {
            byte[] p = new byte[8];
            p[1] = 1; // 0x100: no fd
            raw(VhostUserRequest.SET_VRING_KICK.code, 0x1, 8, p, fd);
            assertThatThrownBy(() -> backEnd.receive(in)).hasMessageContaining("invalid-fd flag");
            p[1] = 0;
            raw(VhostUserRequest.SET_VRING_KICK.code, 0x1, 8, p);
            assertThatThrownBy(() -> backEnd.receive(in)).hasMessageContaining("expected 1");
            p[2] = 1; // a reserved bit: DPDK and libvhost-user mask it off, and so do we
            raw(VhostUserRequest.SET_VRING_CALL.code, 0x1, 8, p, fd);
            backEnd.receive(in);
            assertThat(in.tolerated).isEqualTo(VhostUserMessage.TOLERATED_VRING_FILE_BITS);
            assertThat(in.fds()).hasSize(1);
            in.closeFds();
        } finally {
            Fd.closeQuietly(fd);
        }
    }

    @Test
    void tooManyFdsAreRejectedAndClosed() {
        int[] fds = new int[UnixSocket.MAX_RECV_FDS];
        for (int i = 0; i < fds.length; i++) fds[i] = MemFd.create("f", 4096);
        try {
            // MAX_RECV_FDS fit the buffer but SET_MEM_TABLE allows 8
            byte[] p = new byte[8 + 32];
            p[0] = 1;
            raw(VhostUserRequest.SET_MEM_TABLE.code, 0x1, p.length, p, fds);
            assertThatThrownBy(() -> backEnd.receive(in)).isInstanceOf(VhostUserProtocolException.class);
        } finally {
            for (int f : fds) Fd.closeQuietly(f);
        }
    }

    @Test
    void truncatedMessageIsEndOfStream() {
        MemorySegment b = arena.allocate(12 + 4);
        b.set(ValueLayout.JAVA_INT_UNALIGNED, 0, VhostUserRequest.SET_FEATURES.code);
        b.set(ValueLayout.JAVA_INT_UNALIGNED, 4, 1);
        b.set(ValueLayout.JAVA_INT_UNALIGNED, 8, 8);
        pair[0].send(b, 16);
        pair[0].shutdown();
        assertThatThrownBy(() -> backEnd.receive(in)).isInstanceOf(EOFException.class);
    }

    @Test
    void unknownRequestCodesAreDecodedAsUnknown() throws Exception {
        raw(1000, 0x1, 3, new byte[] {1, 2, 3});
        backEnd.receive(in);
        assertThat(in.request).isEqualTo(VhostUserRequest.UNKNOWN);
        assertThat(in.requestCode).isEqualTo(1000);
        // the stream stays in sync: the next message decodes
        raw(VhostUserRequest.GET_FEATURES.code, 0x1, 0, new byte[0]);
        backEnd.receive(in);
        assertThat(in.request).isEqualTo(VhostUserRequest.GET_FEATURES);
    }
}
