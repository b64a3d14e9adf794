package io.jvhost.vhostuser;

import io.jvhost.sys.EventFd;
import io.jvhost.sys.Fd;
import io.jvhost.sys.UnixSocket;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.MethodSource;
import org.slf4j.LoggerFactory;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import io.jvhost.runtime.Counter;
import java.util.stream.Stream;

import static io.jvhost.vhostuser.VhostUserProtocol.*;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * The dispatcher against a recording handler, over a real socketpair (so every message also
 * passes the connection's shape check): one test per request shape, the feature gating
 * decisions (README, Compatibility), the reply/ack rules, and the malformed-payload catalogue.
 */
@Timeout(value = 20, threadMode = Timeout.ThreadMode.SEPARATE_THREAD) // a missing reply would block the read
class VhostUserBackendDispatcherTest {
    final UnixSocket[] pair = UnixSocket.pair();
    final VhostUserConnection front = new VhostUserConnection(pair[0], false);
    final VhostUserConnection back = new VhostUserConnection(pair[1], true);
    final VhostUserMessage out = new VhostUserMessage();   // what the front-end sends
    final VhostUserMessage in = new VhostUserMessage();    // what the back-end received
    final VhostUserMessage reply = new VhostUserMessage(); // the back-end's reply buffer
    final VhostUserMessage got = new VhostUserMessage();   // what the front-end received
    final Counter tolerated = Counter.standalone();
    final Counter failed = Counter.standalone();
    final Counter unsupported = Counter.standalone();
    final FakeHandler h = new FakeHandler();
    final VhostUserBackendDispatcher d = new VhostUserBackendDispatcher("test", h, back, reply,
            new ToleranceLog(LoggerFactory.getLogger(VhostUserBackendDispatcherTest.class), "test", tolerated), failed, unsupported);
    final List<Integer> fdsToClose = new ArrayList<>();

    @AfterEach
    void close() {
        for (int fd : fdsToClose) Fd.closeQuietly(fd);
        front.close();
        back.close();
        out.close();
        in.close();
        reply.close();
        got.close();
    }

    /** A handler that records each call and its typed payload. */
    static final class FakeHandler implements VhostUserBackendHandler {
        long features = 1L << VhostUserBackendDispatcher.F_PROTOCOL_FEATURES;
        long protocolFeatures;
        boolean result = true;
        int configResult = Integer.MIN_VALUE; // MIN_VALUE: serve the requested size
        InflightPayload inflightAnswer = InflightPayload.NONE;
        VringState vringBase = new VringState(0, 0);
        final List<String> calls = new ArrayList<>();
        Object last;
        byte[] lastConfigData;

        private boolean rec(String name, Object payload) {
            calls.add(name);
            last = payload;
            return result;
        }

        @Override public long ackedFeatures() { return features; }
        @Override public long ackedProtocolFeatures() { return protocolFeatures; }
        @Override public long getFeatures() { calls.add("getFeatures"); return 0x1234; } // the barrier: leaves last alone
        @Override public boolean setFeatures(long f) { return rec("setFeatures", f); }
        @Override public long getProtocolFeatures() { rec("getProtocolFeatures", null); return 0x55; }
        @Override public boolean setProtocolFeatures(long f) { return rec("setProtocolFeatures", f); }
        @Override public boolean setOwner() { return rec("setOwner", null); }
        @Override public boolean resetOwner() { return rec("resetOwner", null); }
        @Override public boolean resetDevice() { return rec("resetDevice", null); }
        @Override public long getQueueNum() { rec("getQueueNum", null); return 4; }
        @Override public long getMaxMemSlots() { rec("getMaxMemSlots", null); return 509; }
        @Override public boolean setMemTable(MemTable t) { return rec("setMemTable", t); }
        @Override public boolean addMemReg(MemRegion r) { return rec("addMemReg", r); }
        @Override public boolean remMemReg(MemRegion r) { return rec("remMemReg", r); }
        @Override public boolean setVringNum(VringState s) { return rec("setVringNum", s); }
        @Override public boolean setVringAddr(VringAddr a) { return rec("setVringAddr", a); }
        @Override public boolean setVringBase(VringState s) { return rec("setVringBase", s); }
        @Override public VringState getVringBase(int index) { rec("getVringBase", index); return vringBase; }
        @Override public boolean setVringKick(VringFile f) { return rec("setVringKick", f); }
        @Override public boolean setVringCall(VringFile f) { return rec("setVringCall", f); }
        @Override public boolean setVringErr(VringFile f) { return rec("setVringErr", f); }
        @Override public boolean setVringEnable(VringState s) { return rec("setVringEnable", s); }

        @Override
        public int getConfig(ConfigPayload c, MemorySegment dst) {
            rec("getConfig", c);
            if (configResult != Integer.MIN_VALUE) return configResult;
            for (int i = 0; i < c.size(); i++) dst.set(ValueLayout.JAVA_BYTE, i, (byte) (0x40 + i));
            return c.size();
        }

        @Override
        public boolean setConfig(ConfigPayload c) {
            lastConfigData = c.data().toArray(ValueLayout.JAVA_BYTE);
            return rec("setConfig", c);
        }

        @Override public boolean setLogBase(LogPayload l) { return rec("setLogBase", l); }
        @Override public boolean setLogFd(int fd) { return rec("setLogFd", fd); }
        @Override public InflightPayload getInflightFd(InflightPayload r) { rec("getInflightFd", r); return inflightAnswer; }
        @Override public boolean setInflightFd(InflightPayload p) { return rec("setInflightFd", p); }
    }

    private int eventFd() {
        int fd = EventFd.create(false);
        fdsToClose.add(fd);
        return fd;
    }

    private void begin(VhostUserRequest req, boolean needReply, int size) {
        out.begin(req, VERSION | (needReply ? FLAG_NEED_REPLY : 0), size);
    }

    /** Sends {@code out} from the front-end and dispatches it at the back-end; returns the replies it produced. */
    private List<Reply> send(int... fds) throws Exception {
        front.send(out, fds);
        back.receive(in);
        d.dispatch(in);
        // Anything the request answered arrives before the answer to this barrier.
        out.begin(VhostUserRequest.GET_FEATURES, VERSION, 0);
        front.send(out);
        back.receive(in);
        int callsBefore = h.calls.size();
        d.dispatch(in);
        h.calls.remove(callsBefore); // the barrier's own getFeatures
        List<Reply> replies = new ArrayList<>();
        while (true) {
            front.receive(got);
            if (got.request == VhostUserRequest.GET_FEATURES) return replies;
            replies.add(new Reply(got.request, got.size, got.payload().asSlice(0, got.size).toArray(ValueLayout.JAVA_BYTE), got.fds().length));
            got.closeFds();
        }
    }

    record Reply(VhostUserRequest request, int size, byte[] payload, int fds) {
        long u64(int off) {
            return MemorySegment.ofArray(payload).get(ValueLayout.JAVA_LONG_UNALIGNED, off);
        }

        int u32(int off) {
            return MemorySegment.ofArray(payload).get(ValueLayout.JAVA_INT_UNALIGNED, off);
        }
    }

    // ---- typed payloads, one request at a time ----

    @Test
    void vringAddrKeepsTheLogFlagAndTheLogAddress() throws Exception {
        begin(VhostUserRequest.SET_VRING_ADDR, false, VRING_ADDR_SIZE);
        VhostUserPayloads.put(out, new VringAddr(1, VRING_ADDR_F_LOG, 0x1000, 0x2000, 0x3000, 0xabc000));
        assertThat(send()).isEmpty();
        assertThat(h.calls).containsExactly("setVringAddr");
        VringAddr a = (VringAddr) h.last;
        assertThat(a).isEqualTo(new VringAddr(1, VRING_ADDR_F_LOG, 0x1000, 0x2000, 0x3000, 0xabc000));
        assertThat(a.logging()).isTrue();
    }

    @Test
    void vringStatesReachTheirMethods() throws Exception {
        for (VhostUserRequest r : List.of(VhostUserRequest.SET_VRING_NUM, VhostUserRequest.SET_VRING_BASE, VhostUserRequest.SET_VRING_ENABLE)) {
            begin(r, false, VRING_STATE_SIZE);
            VhostUserPayloads.put(out, new VringState(3, 0x8_0001));
            send();
            assertThat(h.last).as(r.toString()).isEqualTo(new VringState(3, 0x8_0001));
        }
        assertThat(h.calls).containsExactly("setVringNum", "setVringBase", "setVringEnable");
        assertThat(tolerated.get()).isZero(); // VHOST_USER_F_PROTOCOL_FEATURES acked: ENABLE is in order
    }

    @Test
    void vringFileHandsItsFdToTheHandler() throws Exception {
        int fd = eventFd();
        begin(VhostUserRequest.SET_VRING_CALL, false, 8);
        out.putU64(0, VhostUserPayloads.vringFileU64(1, false));
        send(fd);
        VringFile f = (VringFile) h.last;
        fdsToClose.add(f.fd());
        assertThat(f.index()).isEqualTo(1);
        assertThat(f.nofd()).isFalse();
        assertThat(f.fd()).isNotNegative();
        try (java.lang.foreign.Arena a = java.lang.foreign.Arena.ofConfined()) {
            assertThat(EventFd.signal(f.fd(), EventFd.scratch(a))).as("the fd left the message: still open after the message's fds were closed").isNotNegative();
        }

        begin(VhostUserRequest.SET_VRING_KICK, false, 8);
        out.putU64(0, VhostUserPayloads.vringFileU64(2, true));
        send();
        assertThat(h.last).isEqualTo(new VringFile(2, true, -1));
    }

    @Test
    void memTableAndSingleRegions() throws Exception {
        h.protocolFeatures = 1L << PF_REPLY_ACK;
        begin(VhostUserRequest.SET_MEM_TABLE, true, MEM_TABLE_HEADER + 2 * MEM_REGION_SIZE);
        out.putU32(0, 2);
        VhostUserPayloads.put(out, MEM_TABLE_HEADER, new MemRegion(0, 0x10000, 0x7f0000000000L, 0, -1));
        VhostUserPayloads.put(out, MEM_TABLE_HEADER + MEM_REGION_SIZE, new MemRegion(0x100000000L, 0x20000, 0x7f1000000000L, 0x10000, -1));
        List<Reply> r = send(eventFd(), eventFd());
        assertThat(r).singleElement().satisfies(a -> assertThat(a.u64(0)).isZero());
        MemTable t = (MemTable) h.last;
        assertThat(t.regions()).hasSize(2);
        assertThat(t.regions().get(1).guestAddr()).isEqualTo(0x100000000L);
        assertThat(t.regions().get(1).size()).isEqualTo(0x20000);
        assertThat(t.regions().get(1).userAddr()).isEqualTo(0x7f1000000000L);
        assertThat(t.regions().get(1).mmapOffset()).isEqualTo(0x10000);
        assertThat(t.regions()).allSatisfy(m -> assertThat(m.fd()).isNotNegative());

        h.protocolFeatures = 1L << PF_CONFIGURE_MEM_SLOTS;
        begin(VhostUserRequest.ADD_MEM_REG, false, 8 + MEM_REGION_SIZE);
        VhostUserPayloads.put(out, 8, new MemRegion(0x5000, 0x1000, 0x9000, 0x20, -1));
        send(eventFd());
        MemRegion added = (MemRegion) h.last;
        assertThat(added.guestAddr()).isEqualTo(0x5000);
        assertThat(added.mmapOffset()).isEqualTo(0x20);
        assertThat(added.fd()).isNotNegative();

        begin(VhostUserRequest.REM_MEM_REG, false, 8 + MEM_REGION_SIZE);
        VhostUserPayloads.put(out, 8, new MemRegion(0x5000, 0x1000, 0x9000, 0x20, -1));
        send();
        assertThat(h.last).isEqualTo(new MemRegion(0x5000, 0x1000, 0x9000, 0x20, -1));
        assertThat(tolerated.get()).isZero();
    }

    @Test
    void configIsDecodedAndGetConfigAnswersWhatTheHandlerWrote() throws Exception {
        h.protocolFeatures = 1L << PF_CONFIG;
        begin(VhostUserRequest.SET_CONFIG, false, CONFIG_HEADER + 3);
        VhostUserPayloads.putConfigHeader(out, 4, 3, 1);
        out.payload().asSlice(CONFIG_HEADER, 3).copyFrom(MemorySegment.ofArray(new byte[] {7, 8, 9}));
        send();
        assertThat(((ConfigPayload) h.last).offset()).isEqualTo(4);
        assertThat(((ConfigPayload) h.last).flags()).isEqualTo(1);
        assertThat(h.lastConfigData).containsExactly(7, 8, 9);

        begin(VhostUserRequest.GET_CONFIG, true, CONFIG_HEADER + 8); // NEED_REPLY: still one reply
        VhostUserPayloads.putConfigHeader(out, 0, 8, 0);
        List<Reply> r = send();
        assertThat(r).hasSize(1);
        assertThat(r.get(0).size()).isEqualTo(CONFIG_HEADER + 8);
        assertThat(r.get(0).u32(4)).isEqualTo(8);
        assertThat(r.get(0).payload()[CONFIG_HEADER + 7]).isEqualTo((byte) 0x47);

        h.configResult = -1;
        begin(VhostUserRequest.GET_CONFIG, false, CONFIG_HEADER + 8);
        VhostUserPayloads.putConfigHeader(out, 300, 8, 0);
        r = send();
        assertThat(r).singleElement().satisfies(a -> {
            assertThat(a.size()).as("a failure the front-end sees, not a hang").isEqualTo(CONFIG_HEADER);
            assertThat(a.u32(0)).isEqualTo(300);
            assertThat(a.u32(4)).isZero();
        });
        assertThat(tolerated.get()).isZero();
    }

    @Test
    void getVringBaseRepliesOnceWithTheHandlersState() throws Exception {
        h.vringBase = new VringState(1, 77);
        begin(VhostUserRequest.GET_VRING_BASE, true, VRING_STATE_SIZE);
        VhostUserPayloads.put(out, new VringState(1, 0));
        List<Reply> r = send();
        assertThat(r).singleElement().satisfies(a -> {
            assertThat(a.request()).isEqualTo(VhostUserRequest.GET_VRING_BASE);
            assertThat(a.u32(0)).isEqualTo(1);
            assertThat(a.u32(4)).isEqualTo(77);
        });
        assertThat(h.last).isEqualTo(1);
    }

    @Test
    void needReplyIsAckedWithTheHandlersAnswer() throws Exception {
        h.protocolFeatures = 1L << PF_REPLY_ACK;
        begin(VhostUserRequest.SET_FEATURES, true, 8);
        out.putU64(0, 0x42);
        assertThat(send()).singleElement().satisfies(a -> assertThat(a.u64(0)).isZero());
        assertThat(h.last).isEqualTo(0x42L);
        h.result = false;
        begin(VhostUserRequest.SET_FEATURES, true, 8);
        assertThat(send()).singleElement().satisfies(a -> assertThat(a.u64(0)).isNotZero());
        begin(VhostUserRequest.SET_FEATURES, false, 8);
        assertThat(send()).as("no NEED_REPLY, no ack").isEmpty();
        assertThat(failed.get()).isEqualTo(2);
        assertThat(tolerated.get()).isZero();
    }

    @Test
    void unknownRequestIsNackedAndCounted() throws Exception {
        out.begin(VhostUserRequest.UNKNOWN, VERSION | FLAG_NEED_REPLY, 0);
        out.requestCode = 99;
        assertThat(send()).singleElement().satisfies(a -> assertThat(a.u64(0)).isNotZero());
        assertThat(unsupported.get()).isEqualTo(1);
        assertThat(h.calls).isEmpty();
    }

    // ---- feature gating ----

    /** The requests served without their feature (DPDK and libvhost-user serve them too) with a valid message each. */
    static Stream<Arguments> servedWithoutTheirFeature() {
        return Stream.of(
                Arguments.of(VhostUserRequest.GET_QUEUE_NUM, PF_MQ, "getQueueNum"),
                Arguments.of(VhostUserRequest.GET_CONFIG, PF_CONFIG, "getConfig"),
                Arguments.of(VhostUserRequest.SET_CONFIG, PF_CONFIG, "setConfig"),
                Arguments.of(VhostUserRequest.RESET_DEVICE, PF_RESET_DEVICE, "resetDevice"),
                Arguments.of(VhostUserRequest.GET_MAX_MEM_SLOTS, PF_CONFIGURE_MEM_SLOTS, "getMaxMemSlots"),
                Arguments.of(VhostUserRequest.ADD_MEM_REG, PF_CONFIGURE_MEM_SLOTS, "addMemReg"),
                Arguments.of(VhostUserRequest.REM_MEM_REG, PF_CONFIGURE_MEM_SLOTS, "remMemReg"));
    }

    private List<Reply> sendValid(VhostUserRequest r) throws Exception {
        switch (r.payload) {
            case NONE -> begin(r, false, 0);
            case CONFIG -> { begin(r, false, CONFIG_HEADER + 4); VhostUserPayloads.putConfigHeader(out, 0, 4, 0); }
            case MEM_REGION -> begin(r, false, 8 + MEM_REGION_SIZE);
            case VRING_STATE -> begin(r, false, VRING_STATE_SIZE);
            default -> throw new IllegalArgumentException(r.toString());
        }
        return r == VhostUserRequest.ADD_MEM_REG ? send(eventFd()) : send();
    }

    @ParameterizedTest
    @MethodSource("servedWithoutTheirFeature")
    void servedWithoutItsFeatureAndCountedAsTolerated(VhostUserRequest r, int feature, String method) throws Exception {
        h.protocolFeatures = 0;
        sendValid(r);
        assertThat(h.calls).containsExactly(method);
        assertThat(tolerated.get()).isEqualTo(1);
        assertThat(failed.get()).isZero();
        assertThat(VhostUserBackendDispatcher.gate(r).bit()).isEqualTo(feature);

        h.protocolFeatures = 1L << feature;
        sendValid(r);
        assertThat(tolerated.get()).as("with the feature it is in order").isEqualTo(1);
    }

    @Test
    void vringEnableWithoutProtocolFeaturesIsAppliedAndCounted() throws Exception {
        h.features = 0;
        sendValid(VhostUserRequest.SET_VRING_ENABLE);
        sendValid(VhostUserRequest.SET_VRING_ENABLE);
        assertThat(h.calls).containsExactly("setVringEnable", "setVringEnable");
        assertThat(tolerated.get()).isEqualTo(2);
    }

    @Test
    void logAndInflightRequestsWithoutTheirFeatureAreRefusedNeverLeftHanging() throws Exception {
        begin(VhostUserRequest.SET_LOG_BASE, true, LOG_SIZE);
        VhostUserPayloads.put(out, new LogPayload(0x1000, 0, -1));
        assertThat(send(eventFd())).singleElement().satisfies(a -> {
            assertThat(a.request()).isEqualTo(VhostUserRequest.SET_LOG_BASE);
            assertThat(a.u64(0)).isNotZero();
        });
        begin(VhostUserRequest.SET_LOG_BASE, false, LOG_SIZE);
        assertThat(send()).as("no NEED_REPLY and no LOG_SHMFD: no reply, as QEMU expects").isEmpty();

        begin(VhostUserRequest.SET_LOG_FD, true, 0);
        assertThat(send(eventFd())).singleElement().satisfies(a -> assertThat(a.u64(0)).isNotZero());

        begin(VhostUserRequest.SET_INFLIGHT_FD, true, INFLIGHT_SIZE);
        VhostUserPayloads.put(out, new InflightPayload(4096, 0, 2, 128, -1));
        assertThat(send(eventFd())).singleElement().satisfies(a -> assertThat(a.u64(0)).isNotZero());

        begin(VhostUserRequest.GET_INFLIGHT_FD, true, INFLIGHT_SIZE);
        VhostUserPayloads.put(out, new InflightPayload(0, 0, 2, 128, -1));
        assertThat(send()).as("one reply, NEED_REPLY or not").singleElement().satisfies(a -> {
            assertThat(a.request()).isEqualTo(VhostUserRequest.GET_INFLIGHT_FD);
            assertThat(a.size()).isEqualTo(INFLIGHT_SIZE);
            assertThat(a.u64(0)).as("mmap_size 0: no inflight area").isZero();
            assertThat(a.fds()).isZero();
        });

        assertThat(h.calls).as("the handler never sees a request whose feature is missing").isEmpty();
        assertThat(unsupported.get()).isEqualTo(5);
        assertThat(failed.get()).isEqualTo(5);
    }

    @Test
    void logBaseWithLogShmfdAlwaysGetsItsReply() throws Exception {
        h.protocolFeatures = 1L << PF_LOG_SHMFD;
        begin(VhostUserRequest.SET_LOG_BASE, false, LOG_SIZE);
        VhostUserPayloads.put(out, new LogPayload(0x2000, 0x100, -1));
        assertThat(send(eventFd())).singleElement().satisfies(a -> assertThat(a.u64(0)).isZero());
        LogPayload l = (LogPayload) h.last;
        assertThat(l.mmapSize()).isEqualTo(0x2000);
        assertThat(l.mmapOffset()).isEqualTo(0x100);
        assertThat(l.fd()).isNotNegative();
        h.result = false;
        begin(VhostUserRequest.SET_LOG_BASE, true, LOG_SIZE);
        assertThat(send(eventFd())).as("one reply even with NEED_REPLY").singleElement().satisfies(a -> assertThat(a.u64(0)).isNotZero());
    }

    @Test
    void inflightWithItsFeatureRoundTripsThroughTheCodec() throws Exception {
        h.protocolFeatures = 1L << PF_INFLIGHT_SHMFD;
        int area = EventFd.create(false); // any fd: the dispatcher sends and then closes it
        h.inflightAnswer = new InflightPayload(8192, 0, 2, 256, area);
        begin(VhostUserRequest.GET_INFLIGHT_FD, false, INFLIGHT_SIZE);
        VhostUserPayloads.put(out, new InflightPayload(0, 0, 2, 256, -1));
        List<Reply> r = send();
        assertThat(h.last).isEqualTo(new InflightPayload(0, 0, 2, 256, -1));
        assertThat(r).singleElement().satisfies(a -> {
            assertThat(a.u64(0)).isEqualTo(8192);
            assertThat(a.u32(16)).isEqualTo(2 | 256 << 16);
            assertThat(a.fds()).isEqualTo(1);
        });
    }

    @ParameterizedTest
    @EnumSource(VhostUserRequest.class)
    void everyGateIsOnTheListInTheReadme(VhostUserRequest r) {
        VhostUserBackendDispatcher.Gate g = VhostUserBackendDispatcher.gate(r);
        if (g == null) return;
        // Only what jvhost does not implement is refused; everything else is served (and counted).
        boolean unimplemented = switch (r) {
            case SET_LOG_BASE, SET_LOG_FD, GET_INFLIGHT_FD, SET_INFLIGHT_FD -> true;
            default -> false;
        };
        assertThat(g.ungated()).isEqualTo(unimplemented ? VhostUserBackendDispatcher.Ungated.REFUSE : VhostUserBackendDispatcher.Ungated.SERVE);
    }

    // ---- malformed payload catalogue ----

    /** Each request with a fixed structure, and the smallest size that is still too short. */
    static Stream<Arguments> tooShort() {
        return Stream.of(
                Arguments.of(VhostUserRequest.SET_FEATURES, 7),
                Arguments.of(VhostUserRequest.SET_PROTOCOL_FEATURES, 7),
                Arguments.of(VhostUserRequest.SET_VRING_NUM, 7),
                Arguments.of(VhostUserRequest.SET_VRING_BASE, 4),
                Arguments.of(VhostUserRequest.GET_VRING_BASE, 4),
                Arguments.of(VhostUserRequest.SET_VRING_ENABLE, 0),
                Arguments.of(VhostUserRequest.SET_VRING_ADDR, 32),
                Arguments.of(VhostUserRequest.SET_VRING_CALL, 4),
                Arguments.of(VhostUserRequest.SET_MEM_TABLE, 4),
                Arguments.of(VhostUserRequest.ADD_MEM_REG, 39),
                Arguments.of(VhostUserRequest.REM_MEM_REG, 8),
                Arguments.of(VhostUserRequest.GET_CONFIG, 11),
                Arguments.of(VhostUserRequest.SET_CONFIG, 11),
                Arguments.of(VhostUserRequest.SET_LOG_BASE, 8),
                Arguments.of(VhostUserRequest.GET_INFLIGHT_FD, 20),
                Arguments.of(VhostUserRequest.SET_INFLIGHT_FD, 23));
    }

    @ParameterizedTest
    @MethodSource("tooShort")
    void aShortPayloadIsRefusedByTheConnectionAndByTheDecoder(VhostUserRequest r, int size) {
        VhostUserMessage m = new VhostUserMessage();
        try {
            m.begin(r, VERSION, size);
            assertThat(VhostUserConnection.checkShape(m)).as("connection shape check").isNotNull();
            h.features = ~0L;
            h.protocolFeatures = ~0L; // every gate open: the decoder is what must refuse
            assertThatThrownBy(() -> d.dispatch(m)).isInstanceOf(VhostUserProtocolException.class);
            assertThat(h.calls).as("the handler never sees a short payload").isEmpty();
        } finally {
            m.close();
        }
    }

    static Stream<Arguments> badValues() {
        return Stream.of(
                Arguments.of("memory table of 9 regions", VhostUserRequest.SET_MEM_TABLE, MEM_TABLE_HEADER + 9 * MEM_REGION_SIZE, 0, 9),
                Arguments.of("memory table of 2 regions in the room of 1", VhostUserRequest.SET_MEM_TABLE, MEM_TABLE_HEADER + MEM_REGION_SIZE, 0, 2),
                Arguments.of("config size 257", VhostUserRequest.GET_CONFIG, CONFIG_HEADER, 4, 257),
                Arguments.of("SET_CONFIG shorter than its size field", VhostUserRequest.SET_CONFIG, CONFIG_HEADER + 3, 4, 4));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("badValues")
    void aBadCountOrSizeFieldIsRefused(String what, VhostUserRequest r, int size, int fieldOffset, int fieldValue) {
        VhostUserMessage m = new VhostUserMessage();
        try {
            m.begin(r, VERSION, size);
            m.putU32(fieldOffset, fieldValue);
            assertThat(VhostUserConnection.checkShape(m)).isNotNull();
            h.protocolFeatures = ~0L;
            assertThatThrownBy(() -> d.dispatch(m)).isInstanceOf(VhostUserProtocolException.class);
            assertThat(h.calls).isEmpty();
        } finally {
            m.close();
        }
    }

    @Test
    void theShapeCheckRefusesAnFdCountThatDoesNotMatch() throws Exception {
        begin(VhostUserRequest.SET_LOG_FD, false, 0);
        front.send(out); // SET_LOG_FD without its fd
        assertThatThrownBy(() -> back.receive(in)).isInstanceOf(VhostUserProtocolException.class).hasMessageContaining("expected 1");
        begin(VhostUserRequest.GET_INFLIGHT_FD, false, INFLIGHT_SIZE);
        front.send(out, eventFd()); // GET takes no fd
        assertThatThrownBy(() -> back.receive(in)).isInstanceOf(VhostUserProtocolException.class).hasMessageContaining("expected none");
    }
}
