package io.jvhost.vhost;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;
import io.jvhost.bdev.MallocBlockDevice;
import io.jvhost.initiator.BlkInitiator;
import io.jvhost.initiator.SharedMemory;
import io.jvhost.runtime.IdleStrategy;
import io.jvhost.runtime.Reactor;
import io.jvhost.sys.Epoll;
import io.jvhost.sys.EventFd;
import io.jvhost.sys.Fd;
import io.jvhost.sys.UnixSocket;
import io.jvhost.vhostuser.VhostUserConnection;
import io.jvhost.vhostuser.VhostUserMessage;
import io.jvhost.vhostuser.VhostUserProtocolException;
import io.jvhost.vhostuser.VhostUserRequest;
import org.junit.jupiter.api.AfterAll;

import java.io.EOFException;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

import static io.jvhost.virtio.BlkLayout.S_OK;
import static io.jvhost.virtio.BlkLayout.T_OUT;
import static io.jvhost.vhostuser.VhostUserProtocol.*;

/**
 * Coverage-guided fuzzing (Jazzer) of the vhost-user message handler: each input is a program
 * for a hostile front-end that talks to a real {@link Session} over a socketpair (messages with
 * fds: memfds, eventfds, wrong kinds of fd), plays the guest in the shared memory it handed over
 * (descriptor chains with blk/scsi headers, raw bytes, kicks), and may start with a standard
 * bring-up so that most inputs reach the deep states (features negotiated, memory table set,
 * rings configured, started and kicked) before the hostile part.
 *
 * <p>Oracle: the session answers every synchronising request within 10 s or closes the
 * connection (a reply the front-end codec rejects is a finding); the session ends within 20 s of
 * the front-end hanging up (so every queue stop completed); afterwards no queue of it is left on
 * the reactor; no thread dies and nothing is logged at ERROR level ({@link FuzzOracle}); and a
 * bystander controller on the same reactor keeps serving I/O (checked every 256 inputs and at
 * the end).
 *
 * <p>With {@link FuzzOracle#VANISHING_MEMORY} the program may also truncate the guest memory's
 * memfd under the live rings (issue 15 item 1); off by default.
 */
class SessionFuzzTest {
    private static final int MEM = 128 * 1024;
    /** Per ring: descriptor table, available ring and used ring in a 16 KiB block of region 0. */
    private static final int RING_BLOCK = 0x4000;
    private static final int MAX_ACTIONS = 40;

    private static Fixture fx;

    private static final class Fixture {
        final Path dir;
        final VhostTarget target;
        final Controller blk;
        final Controller scsi;
        final BlkInitiator bystander;
        final Reactor reactor;
        final int baselinePollables;
        final ExecutorService sessions = Executors.newCachedThreadPool(r -> Thread.ofPlatform().daemon(true).name("fuzz-session").unstarted(r));
        int ids;
        long inputs;
        /** Inputs that had rings running at the end, and the chains those rings fetched (how deep the fuzzer gets). */
        long deepInputs, chains;
        final long started = System.nanoTime();

        Fixture() throws IOException {
            dir = Files.createTempDirectory("jvfz");
            target = new VhostTarget(dir, 1, IdleStrategy.BACKOFF);
            target.bdevs().register(new MallocBlockDevice("FzBlk", 256, 512, null));
            target.bdevs().register(new MallocBlockDevice("FzScsi", 256, 512, null));
            target.bdevs().register(new MallocBlockDevice("Good", 256, 512, null));
            blk = target.createBlkController("fzblk", "FzBlk", false, 2, null);
            scsi = target.createScsiController("fzscsi", 1, null);
            target.addScsiTarget("fzscsi", 0, "FzScsi");
            target.createBlkController("good", "Good", false, 1, null);
            bystander = BlkInitiator.connect(dir.resolve("good").toString(), 1, 64, 1 << 16);
            reactor = target.reactors()[0];
            bystanderServes();
            baselinePollables = reactor.stats().pollables();
        }

        void bystanderServes() throws IOException {
            var c = bystander.request(0, T_OUT, 0, 512, 512, Duration.ofSeconds(10));
            if (c.status() != S_OK) throw new AssertionError("bystander write failed with status " + c.status());
        }

        void close() {
            sessions.shutdownNow();
            bystander.close();
            target.close();
            try {
                Files.deleteIfExists(dir);
            } catch (IOException e) {
                // a temp dir left behind
            }
        }
    }

    private static synchronized Fixture fixture() throws IOException {
        if (fx == null) {
            FuzzOracle.install();
            fx = new Fixture();
        }
        return fx;
    }

    @AfterAll
    static synchronized void closeFixture() throws IOException {
        if (fx == null) return;
        try {
            FuzzOracle.report("SessionFuzzTest", fx.inputs, fx.started);
            System.out.printf("FUZZ-DEPTH harness=SessionFuzzTest inputs-with-running-rings=%d chains-fetched=%d%n", fx.deepInputs, fx.chains);
            fx.bystanderServes();
            FuzzOracle.check();
        } finally {
            fx.close();
            fx = null;
        }
    }

    @FuzzTest(maxDuration = "10s")
    void session(FuzzedDataProvider d) throws Exception {
        Fixture f = fixture();
        try (Run r = new Run(f, d)) {
            r.run();
        }
        FuzzOracle.check();
        if ((++f.inputs & 255) == 0) f.bystanderServes();
    }

    /** One input: one connection, one session. */
    private static final class Run implements AutoCloseable {
        final Fixture f;
        final FuzzedDataProvider d;
        final Controller ctrl;
        final int nq;
        final UnixSocket fe;
        final VhostUserConnection feConn;
        final Session session;
        final Future<?> done;
        final Arena arena = Arena.ofConfined();
        final MemorySegment buf = arena.allocate(HEADER_SIZE + 1024, 8);
        final MemorySegment scratch = arena.allocate(8, 8);
        final VhostUserMessage reply = new VhostUserMessage();
        final Epoll epoll = new Epoll(1);
        final SharedMemory mem0;
        SharedMemory mem1;
        final int[] kick;
        final int[] call;
        final int[] num;
        final int[] availIdx;
        final int[] nextDesc;
        int dataNext;
        int pendingSyncs;
        boolean closed;
        boolean vanished;
        final boolean sealable;
        /** A message went out whose size field does not match its bytes: the stream is no longer framed. */
        boolean misframed;
        volatile Thread sessionThread;

        Run(Fixture f, FuzzedDataProvider d) {
            this.f = f;
            this.d = d;
            this.ctrl = d.consumeBoolean() ? f.blk : f.scsi;
            this.nq = ctrl.device().maxQueues();
            UnixSocket[] pair = UnixSocket.pair();
            fe = pair[0];
            feConn = new VhostUserConnection(fe, false);
            session = new Session(ctrl, ctrl.device(), new VhostUserConnection(pair[1], true), ++f.ids);
            done = f.sessions.submit(() -> {
                sessionThread = Thread.currentThread();
                session.run();
            });
            epoll.add(fe.fd(), Epoll.EPOLLIN, 0);
            long gpa = switch (d.consumeInt(0, 3)) {
                case 0, 1 -> 0;
                case 2 -> 0x100000;
                default -> d.consumeLong() & ~0xfffL;
            };
            // Sealable or not is the front-end's choice; the target seals what it can against shrinking.
            sealable = !FuzzOracle.VANISHING_MEMORY || d.consumeBoolean();
            mem0 = sealable ? new SharedMemory(MEM, gpa) : SharedMemory.unsealable(MEM, gpa);
            kick = new int[nq];
            call = new int[nq];
            num = new int[nq];
            availIdx = new int[nq];
            nextDesc = new int[nq];
            for (int i = 0; i < nq; i++) {
                kick[i] = EventFd.create(true);
                call[i] = EventFd.create(true);
                num[i] = 256;
            }
            dataNext = nq * RING_BLOCK;
        }

        void run() throws Exception {
            if (d.consumeInt(0, 3) != 0) bringUp();
            for (int i = 0; i < MAX_ACTIONS && d.remainingBytes() > 0; i++) action();
            // A polite front-end has read every reply before it hangs up (see HANG_UP_WITH_REPLIES_OWED).
            if (!closed && (!FuzzOracle.HANG_UP_WITH_REPLIES_OWED || d.consumeBoolean())) sync();
            var running = session.runningQueues();
            if (!running.isEmpty()) f.deepInputs++;
            for (var q : running) f.chains += q.stats().requests() + q.stats().chainErrors(); // racy read: statistics only
            // Hang up; the session must notice, stop its queues and end.
            fe.shutdown();
            try {
                done.get(20, TimeUnit.SECONDS);
            } catch (TimeoutException e) {
                throw new AssertionError("session " + session.name() + " did not end within 20 s of the front-end hanging up" + stacks());
            }
            if (!session.runningQueues().isEmpty()) throw new AssertionError("queues still running after the session ended: " + session.runningQueues().size());
            int p = f.reactor.stats().pollables();
            if (p != f.baselinePollables) throw new AssertionError("reactor has " + p + " pollables after the session ended, " + f.baselinePollables + " before");
        }

        // ---- the front-end program ----

        private void bringUp() throws Exception {
            long features = ctrl.device().features() | (1L << 30);
            if (d.consumeBoolean()) features &= ~(1L << 28 | 1L << 29); // without indirect / event idx
            send(VhostUserRequest.GET_FEATURES, 0);
            putU64(0, features);
            send(VhostUserRequest.SET_FEATURES, 8);
            send(VhostUserRequest.GET_PROTOCOL_FEATURES, 0);
            putU64(0, d.consumeBoolean() ? Session.offeredProtocolFeatures() : (1L << PF_MQ | 1L << PF_CONFIG));
            send(VhostUserRequest.SET_PROTOCOL_FEATURES, 8);
            memTable(new SharedMemory[] {mem0}, false);
            int n = 1 << d.consumeInt(0, 8);
            for (int q = 0; q < nq; q++) {
                ringNum(q, n);
                ringAddr(q, mem0.uva(q * RING_BLOCK), mem0.uva(q * RING_BLOCK + 0x2000), mem0.uva(q * RING_BLOCK + 0x1000));
                putU32(0, q);
                putU32(4, 0);
                send(VhostUserRequest.SET_VRING_BASE, 8);
                ringFd(VhostUserRequest.SET_VRING_CALL, q, call[q]);
                ringFd(VhostUserRequest.SET_VRING_KICK, q, kick[q]);
                putU32(0, q);
                putU32(4, 1);
                send(VhostUserRequest.SET_VRING_ENABLE, 8);
            }
            sync();
        }

        private void action() throws Exception {
            int ring = d.consumeInt(0, nq); // nq itself: out of range
            switch (d.consumeInt(0, 30)) {
                case 0 -> send(VhostUserRequest.GET_FEATURES, 0);
                case 1 -> {
                    long offered = ctrl.device().features() | (1L << 30);
                    putU64(0, d.consumeBoolean() ? offered & d.consumeLong() : d.consumeLong());
                    send(VhostUserRequest.SET_FEATURES, 8);
                }
                case 2 -> send(VhostUserRequest.GET_PROTOCOL_FEATURES, 0);
                case 3 -> {
                    putU64(0, d.consumeBoolean() ? Session.offeredProtocolFeatures() & d.consumeLong() : d.consumeLong());
                    send(VhostUserRequest.SET_PROTOCOL_FEATURES, 8);
                }
                case 4 -> send(d.consumeBoolean() ? VhostUserRequest.SET_OWNER : VhostUserRequest.RESET_OWNER, 0);
                case 5 -> send(VhostUserRequest.RESET_DEVICE, 0);
                case 6 -> memTable(d.consumeBoolean() ? new SharedMemory[] {mem0} : new SharedMemory[] {mem0, mem1()}, d.consumeInt(0, 3) == 0);
                case 7 -> memReg(VhostUserRequest.ADD_MEM_REG, d.consumeBoolean() ? mem1() : mem0, d.consumeInt(0, 3) == 0);
                case 8 -> memReg(VhostUserRequest.REM_MEM_REG, d.consumeBoolean() ? mem1() : mem0, d.consumeInt(0, 3) == 0);
                case 9 -> ringNum(ring, d.consumeBoolean() ? 1 << d.consumeInt(0, 11) : d.consumeInt());
                case 10 -> {
                    long base = d.consumeBoolean() ? mem0.userAddr() + (long) Math.min(ring, nq - 1) * RING_BLOCK : mem0.userAddr() + d.consumeInt(0, MEM);
                    if (d.consumeInt(0, 7) == 0) base = d.consumeLong();
                    ringAddr(ring, base, base + (d.consumeBoolean() ? 0x2000 : d.consumeInt(-64, 0x4000)), base + (d.consumeBoolean() ? 0x1000 : d.consumeInt(-64, 0x4000)));
                }
                case 11 -> {
                    putU32(0, ring);
                    putU32(4, d.consumeBoolean() ? d.consumeInt(0, 0xffff) : d.consumeInt());
                    send(VhostUserRequest.SET_VRING_BASE, 8);
                }
                case 12 -> {
                    putU32(0, ring);
                    putU32(4, 0);
                    send(VhostUserRequest.GET_VRING_BASE, 8);
                }
                case 13 -> ringFd(VhostUserRequest.SET_VRING_KICK, ring, pickEventFd(ring, true));
                case 14 -> ringFd(VhostUserRequest.SET_VRING_CALL, ring, pickEventFd(ring, false));
                case 15 -> ringFd(VhostUserRequest.SET_VRING_ERR, ring, pickEventFd(ring, false));
                case 16 -> {
                    putU32(0, ring);
                    putU32(4, d.consumeBoolean() ? d.consumeInt(0, 1) : d.consumeInt());
                    send(VhostUserRequest.SET_VRING_ENABLE, 8);
                }
                case 17 -> {
                    int size = d.consumeBoolean() ? d.consumeInt(0, MAX_CONFIG_SIZE) : d.consumeInt();
                    putU32(0, d.consumeBoolean() ? 0 : d.consumeInt());
                    putU32(4, size);
                    putU32(8, 0);
                    int payload = d.consumeBoolean() ? CONFIG_HEADER + Math.max(0, Math.min(size, MAX_CONFIG_SIZE)) : d.consumeInt(0, 300);
                    send(VhostUserRequest.GET_CONFIG, payload);
                }
                case 18 -> {
                    int size = d.consumeBoolean() ? 4 : d.consumeInt(0, 40);
                    putU32(0, d.consumeBoolean() ? 20 + 4 * d.consumeInt(0, 1) : d.consumeInt(0, 300));
                    putU32(4, d.consumeBoolean() ? size : d.consumeInt());
                    putU32(8, 0);
                    putU32(CONFIG_HEADER, d.consumeInt(0, 300));
                    send(VhostUserRequest.SET_CONFIG, CONFIG_HEADER + size);
                }
                case 19, 20 -> sync();
                case 21 -> send(VhostUserRequest.GET_MAX_MEM_SLOTS, 0);
                case 22 -> rawMessage();
                case 23, 24, 25 -> guestRequest(Math.min(ring, nq - 1));
                case 26 -> {
                    int off = d.consumeInt(0, MEM - 1);
                    byte[] b = d.consumeBytes(64);
                    if (!vanished) MemorySegment.copy(b, 0, mem0.segment(), ValueLayout.JAVA_BYTE, off, Math.min(b.length, MEM - off));
                }
                case 27, 28 -> EventFd.signal(kick[Math.min(ring, nq - 1)], scratch);
                default -> {
                    if (FuzzOracle.VANISHING_MEMORY && d.consumeInt(0, 3) == 0 && !vanished) {
                        // The front-end shrinks the guest memory's file under the live rings.
                        try {
                            Fd.ftruncate(mem0.fd(), d.consumeLong(0, MEM - 1) & ~0xfffL);
                            vanished = true;
                        } catch (io.jvhost.sys.NativeException e) {
                            // EPERM: the target sealed it (it had the memory table); nothing vanished
                            if (e.errno() != io.jvhost.sys.Errno.EPERM) throw e;
                        }
                        for (int k : kick) EventFd.signal(k, scratch);
                    } else {
                        EventFd.signal(kick[Math.min(ring, nq - 1)], scratch);
                    }
                }
            }
        }

        private SharedMemory mem1() {
            if (mem1 == null) mem1 = new SharedMemory(64 * 1024, mem0.gpaBase() + (d.consumeBoolean() ? MEM : 0x1000_0000L));
            return mem1;
        }

        private int pickEventFd(int ring, boolean kickFd) {
            return switch (d.consumeInt(0, 5)) {
                case 0 -> -1; // the NOFD flag
                case 1 -> mem0.fd(); // not an eventfd
                default -> (kickFd ? kick : call)[Math.min(ring, nq - 1)];
            };
        }

        private void memTable(SharedMemory[] mems, boolean mangle) throws Exception {
            int n = mems.length;
            if (mangle && d.consumeBoolean()) n = d.consumeInt(0, 9);
            putU32(0, n);
            putU32(4, 0);
            int[] fds = new int[Math.min(n, mems.length)];
            for (int i = 0; i < n; i++) {
                SharedMemory m = mems[Math.min(i, mems.length - 1)];
                int off = MEM_TABLE_HEADER + i * MEM_REGION_SIZE;
                putU64(off, mangle && d.consumeBoolean() ? d.consumeLong() : m.gpaBase());
                putU64(off + 8, mangle && d.consumeBoolean() ? d.consumeLong() : m.size());
                putU64(off + 16, mangle && d.consumeBoolean() ? d.consumeLong() : m.userAddr());
                putU64(off + 24, mangle && d.consumeBoolean() ? d.consumeLong(0, 0x20000) : 0);
                if (i < fds.length) fds[i] = mangle && d.consumeInt(0, 3) == 0 ? kick[0] : m.fd();
            }
            send(VhostUserRequest.SET_MEM_TABLE, MEM_TABLE_HEADER + n * MEM_REGION_SIZE, fds);
        }

        private void memReg(VhostUserRequest req, SharedMemory m, boolean mangle) throws Exception {
            putU64(0, 0);
            long off = mangle && d.consumeBoolean() ? d.consumeLong(0, 0x20000) & ~0xfffL : 0;
            putU64(8, mangle && d.consumeBoolean() ? d.consumeLong() : m.gpaBase() + off);
            putU64(16, mangle && d.consumeBoolean() ? d.consumeLong() : m.size() - off);
            putU64(24, mangle && d.consumeBoolean() ? d.consumeLong() : m.userAddr() + off);
            putU64(32, off);
            if (req == VhostUserRequest.ADD_MEM_REG) send(req, 8 + MEM_REGION_SIZE, m.fd());
            else send(req, 8 + MEM_REGION_SIZE);
        }

        private void ringNum(int ring, int n) throws Exception {
            if (ring < nq && n > 0 && n <= 256 && Integer.bitCount(n) == 1) num[ring] = n;
            putU32(0, ring);
            putU32(4, n);
            send(VhostUserRequest.SET_VRING_NUM, 8);
        }

        private void ringAddr(int ring, long desc, long used, long avail) throws Exception {
            putU32(0, ring);
            putU32(4, d.consumeInt(0, 15) == 0 ? 1 : 0); // VHOST_VRING_F_LOG sometimes
            putU64(8, desc);
            putU64(16, used);
            putU64(24, avail);
            putU64(32, 0);
            send(VhostUserRequest.SET_VRING_ADDR, VRING_ADDR_SIZE);
        }

        private void ringFd(VhostUserRequest req, int ring, int fd) throws Exception {
            long v = ring & VRING_FILE_INDEX_MASK;
            if (d.consumeInt(0, 15) == 0) v |= d.consumeLong() & ~0x1ffL;
            if (fd < 0) {
                putU64(0, v | VRING_FILE_NOFD);
                send(req, 8);
            } else {
                putU64(0, v);
                send(req, 8, fd);
            }
        }

        private void rawMessage() throws Exception {
            int code = d.consumeInt(0, 45);
            // GET_QUEUE_NUM is the synchronisation marker: a raw one would be taken for the sync's answer.
            if (code == VhostUserRequest.GET_QUEUE_NUM.code) code = 46;
            int flags = d.consumeBoolean() ? VERSION : d.consumeInt();
            byte[] payload = d.consumeBytes(d.consumeInt(0, 300));
            // A size field that lies misframes the stream; then replies may be owed when we hang up.
            int size = FuzzOracle.HANG_UP_WITH_REPLIES_OWED && d.consumeBoolean() ? d.consumeInt() : payload.length;
            int nfds = d.consumeInt(0, 3);
            int[] fds = new int[nfds];
            for (int i = 0; i < nfds; i++) fds[i] = d.consumeBoolean() ? mem0.fd() : kick[0];
            if (closed) return;
            buf.set(ValueLayout.JAVA_INT_UNALIGNED, 0, code);
            buf.set(ValueLayout.JAVA_INT_UNALIGNED, 4, flags);
            buf.set(ValueLayout.JAVA_INT_UNALIGNED, 8, size);
            MemorySegment.copy(payload, 0, buf, ValueLayout.JAVA_BYTE, HEADER_SIZE, payload.length);
            if (size != payload.length) misframed = true;
            transmit(HEADER_SIZE + payload.length, fds);
        }

        /** The guest side: a request chain on ring {@code q} in the standard layout, then maybe a kick. */
        private void guestRequest(int q) {
            if (vanished) return;
            MemorySegment m = mem0.segment();
            int n = num[q];
            long descBase = (long) q * RING_BLOCK;
            long availBase = descBase + 0x1000;
            int parts = d.consumeInt(1, 4);
            boolean indirect = d.consumeInt(0, 3) == 0;
            int head = nextDesc[q];
            long table = indirect ? data(16 * parts) : -1;
            for (int i = 0; i < parts; i++) {
                int len;
                long addr;
                int flags;
                if (i == 0) {
                    len = ctrl == f.blk ? 16 : 51;
                    addr = data(len);
                    m.set(ValueLayout.JAVA_INT_UNALIGNED, addr, ctrl == f.blk ? d.consumeInt(0, 14) : 1);
                    m.set(ValueLayout.JAVA_LONG_UNALIGNED, addr + 8, d.consumeInt(0, 300));
                    if (ctrl == f.scsi) {
                        m.set(ValueLayout.JAVA_BYTE, addr + 19, (byte) d.consumeInt(0, 255));
                        m.set(ValueLayout.JAVA_BYTE, addr + 1, (byte) d.consumeInt(0, 1));
                    }
                    flags = 0;
                } else if (i == parts - 1) {
                    len = ctrl == f.blk ? 1 : 108;
                    addr = data(len);
                    flags = 2;
                } else {
                    len = 512 * d.consumeInt(0, 8);
                    addr = data(len);
                    flags = d.consumeBoolean() ? 2 : 0;
                }
                if (d.consumeInt(0, 15) == 0) len = d.consumeInt();
                if (d.consumeInt(0, 15) == 0) addr = d.consumeLong();
                else addr += mem0.gpaBase();
                int next = indirect ? i + 1 : (head + i + 1) & (n - 1);
                long at = indirect ? table + 16L * i : descBase + 16L * ((head + i) & (n - 1));
                desc(m, at, addr, len, flags | (i < parts - 1 ? 1 : 0), next);
            }
            if (indirect) {
                desc(m, descBase + 16L * head, mem0.gpaBase() + table, 16 * parts, 4, 0);
                nextDesc[q] = (head + 1) & (n - 1);
            } else {
                nextDesc[q] = (head + parts) & (n - 1);
            }
            m.set(ValueLayout.JAVA_SHORT_UNALIGNED, availBase + 4 + 2L * (availIdx[q] & (n - 1)), (short) head);
            availIdx[q] = (availIdx[q] + 1) & 0xffff;
            m.set(ValueLayout.JAVA_SHORT_UNALIGNED, availBase + 2, (short) availIdx[q]);
            if (d.consumeBoolean()) EventFd.signal(kick[q], scratch);
        }

        private static void desc(MemorySegment m, long at, long addr, int len, int flags, int next) {
            m.set(ValueLayout.JAVA_LONG_UNALIGNED, at, addr);
            m.set(ValueLayout.JAVA_INT_UNALIGNED, at + 8, len);
            m.set(ValueLayout.JAVA_SHORT_UNALIGNED, at + 12, (short) flags);
            m.set(ValueLayout.JAVA_SHORT_UNALIGNED, at + 14, (short) next);
        }

        /** Data space after the ring blocks (offset in region 0). */
        private long data(int len) {
            int l = Math.min(Math.max(len, 1), 8192);
            if (dataNext + l > MEM) dataNext = nq * RING_BLOCK;
            long at = dataNext;
            dataNext = (dataNext + l + 15) & ~15;
            return at;
        }

        // ---- wire ----

        private void putU64(int off, long v) {
            buf.set(ValueLayout.JAVA_LONG_UNALIGNED, HEADER_SIZE + off, v);
        }

        private void putU32(int off, int v) {
            buf.set(ValueLayout.JAVA_INT_UNALIGNED, HEADER_SIZE + off, v);
        }

        private void send(VhostUserRequest req, int size, int... fds) throws Exception {
            if (closed) return;
            int flags = VERSION | (d.consumeInt(0, 3) == 0 ? FLAG_NEED_REPLY : 0);
            buf.set(ValueLayout.JAVA_INT_UNALIGNED, 0, req.code);
            buf.set(ValueLayout.JAVA_INT_UNALIGNED, 4, flags);
            buf.set(ValueLayout.JAVA_INT_UNALIGNED, 8, size);
            int bytes = Math.max(0, Math.min(size, 1024));
            if (bytes != size) misframed = true;
            transmit(HEADER_SIZE + bytes, fds);
        }

        private void transmit(long len, int[] fds) {
            try {
                fe.send(buf, len, fds);
            } catch (RuntimeException e) {
                closed = true; // the session hung up (EPIPE/ECONNRESET)
            }
        }

        /**
         * GET_QUEUE_NUM, then reads replies until its answer: every reply must be well-formed and
         * arrive within 10 s, unless the session closes the connection (or the stream was
         * misframed by a raw message, when no answer is owed).
         */
        private void sync() throws Exception {
            if (closed) return;
            buf.set(ValueLayout.JAVA_INT_UNALIGNED, 0, VhostUserRequest.GET_QUEUE_NUM.code);
            buf.set(ValueLayout.JAVA_INT_UNALIGNED, 4, VERSION);
            buf.set(ValueLayout.JAVA_INT_UNALIGNED, 8, 0);
            transmit(HEADER_SIZE, new int[0]);
            if (closed || misframed) return; // after a short message our bytes are its payload: no answer is owed
            pendingSyncs++;
            while (pendingSyncs > 0) {
                if (epoll.await(10_000) == 0) {
                    throw new AssertionError("no reply and no hang-up within 10 s (" + session.name() + ")" + stacks());
                }
                try {
                    feConn.receive(reply);
                } catch (EOFException e) {
                    closed = true;
                    return;
                } catch (VhostUserProtocolException e) {
                    throw new AssertionError("the target sent a malformed reply: " + e.getMessage(), e);
                }
                reply.closeFds();
                if (reply.request == VhostUserRequest.GET_QUEUE_NUM) {
                    if (reply.u64(0) != nq) throw new AssertionError("GET_QUEUE_NUM answered " + reply.u64(0) + ", expected " + nq);
                    pendingSyncs--;
                }
            }
        }

        /** Where the session and reactor threads are, for a hang report. */
        private String stacks() {
            StringBuilder b = new StringBuilder();
            for (var e : Thread.getAllStackTraces().entrySet()) {
                Thread t = e.getKey();
                if (t != sessionThread && !t.getName().startsWith("reactor-")) continue;
                b.append("\n--- ").append(t.getName()).append(':');
                for (StackTraceElement el : e.getValue()) b.append("\n    at ").append(el);
            }
            return b.toString();
        }

        @Override
        public void close() {
            if (!done.isDone()) {
                session.close();
                try {
                    done.get(30, TimeUnit.SECONDS);
                } catch (Exception e) {
                    // reported by run() already
                }
            }
            feConn.close();
            reply.close();
            epoll.close();
            for (int i = 0; i < nq; i++) {
                Fd.closeQuietly(kick[i]);
                Fd.closeQuietly(call[i]);
            }
            mem0.close(); // unmapping a truncated mapping is fine; only touching it faults
            if (mem1 != null) mem1.close();
            arena.close();
        }
    }
}
