package io.jvhost.sys;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** The libc wrappers on their own: eventfd, epoll, memfd + mmap + seals, fd passing over AF_UNIX. */
class SysTest {
    final Arena arena = Arena.ofConfined();
    final MemorySegment scratch = EventFd.scratch(arena);
    final List<Integer> fds = new ArrayList<>();

    int track(int fd) {
        fds.add(fd);
        return fd;
    }

    @AfterEach
    void close() {
        for (int fd : fds) Fd.closeQuietly(fd);
        arena.close();
    }

    @Test
    void eventFdCountsSignalsAndDrainsToZero() {
        int fd = track(EventFd.create(true));
        assertThat(EventFd.drain(fd, scratch)).as("empty non-blocking drain returns at once").isZero();
        EventFd.signal(fd, scratch);
        EventFd.signal(fd, scratch);
        EventFd.signal(fd, scratch);
        assertThat(EventFd.drain(fd, scratch)).isEqualTo(3);
        assertThat(EventFd.drain(fd, scratch)).isZero();
    }

    @Test
    void epollReportsOnlyReadyFdsWithTheirDataAndHonoursRemove() {
        int a = track(EventFd.create(true));
        int b = track(EventFd.create(true));
        try (Epoll ep = new Epoll(8)) {
            ep.add(a, Epoll.EPOLLIN, 0xA0000000L | a);
            ep.add(b, Epoll.EPOLLIN, 0xB0000000L | b);
            assertThat(ep.await(0)).as("nothing ready, timeout 0").isZero();
            EventFd.signal(b, scratch);
            assertThat(ep.await(1000)).isEqualTo(1);
            assertThat(ep.data(0)).isEqualTo(0xB0000000L | b);
            assertThat(ep.events(0) & Epoll.EPOLLIN).isNotZero();
            EventFd.drain(b, scratch);
            ep.remove(a);
            EventFd.signal(a, scratch);
            assertThat(ep.await(0)).as("a removed fd is not reported").isZero();
        }
    }

    @Test
    void memFdMappingsShareContentsAndSealsHold() {
        int fd = track(MemFd.create("sys-test", 1 << 16));
        assertThat(Fd.size(fd)).isEqualTo(1 << 16);
        assertThat(Fd.fstat(fd).size()).isEqualTo(1 << 16);
        try (Mmap w = Mmap.map(fd, 0, 1 << 16, true); Mmap r = Mmap.map(fd, 4096, 4096, false)) {
            assertThat(w.length()).isEqualTo(1 << 16);
            w.segment().set(ValueLayout.JAVA_LONG, 4096, 0x1122334455667788L);
            assertThat(r.segment().get(ValueLayout.JAVA_LONG, 0)).isEqualTo(0x1122334455667788L);
        }
        assertThat(Fd.addSeals(fd, Fd.F_SEAL_SHRINK | Fd.F_SEAL_GROW)).isZero();
        assertThat(Fd.seals(fd) & (Fd.F_SEAL_SHRINK | Fd.F_SEAL_GROW)).isEqualTo(Fd.F_SEAL_SHRINK | Fd.F_SEAL_GROW);
        assertThatThrownBy(() -> Fd.ftruncate(fd, 4096)).isInstanceOf(NativeException.class);
        assertThat(Fd.size(fd)).isEqualTo(1 << 16);
    }

    @Test
    void fdsPassOverASocketPairAndStillReferToTheSameFile() throws Exception {
        UnixSocket[] p = UnixSocket.pair();
        try (UnixSocket tx = p[0]; UnixSocket rx = p[1]) {
            int mem = track(MemFd.create("passed", 4096));
            int ev = track(EventFd.create(true));
            MemorySegment msg = arena.allocate(8);
            msg.set(ValueLayout.JAVA_LONG, 0, 42);
            tx.send(msg, 8, new int[] {mem, ev});
            MemorySegment in = arena.allocate(8);
            UnixSocket.Received got = rx.recv(in, 8);
            for (int f : got.fds()) track(f);
            assertThat(got.bytes()).isEqualTo(8);
            assertThat(in.get(ValueLayout.JAVA_LONG, 0)).isEqualTo(42);
            assertThat(got.fds()).hasSize(2).doesNotContain(mem, ev);
            // the received memfd is the same file: a write through it is seen through ours
            try (Mmap mine = Mmap.map(mem, 0, 4096, true); Mmap theirs = Mmap.map(got.fds()[0], 0, 4096, true)) {
                theirs.segment().set(ValueLayout.JAVA_INT, 0, 0x5eed);
                assertThat(mine.segment().get(ValueLayout.JAVA_INT, 0)).isEqualTo(0x5eed);
            }
            // and the received eventfd is the same counter
            EventFd.signal(got.fds()[1], scratch);
            assertThat(EventFd.drain(ev, scratch)).isEqualTo(1);
        }
    }

    @Test
    void atMostMaxRecvFdsTravelInOneMessage() throws Exception {
        UnixSocket[] p = UnixSocket.pair();
        try (UnixSocket tx = p[0]; UnixSocket rx = p[1]) {
            int[] many = new int[UnixSocket.MAX_RECV_FDS + 1];
            for (int i = 0; i < many.length; i++) many[i] = track(EventFd.create(true));
            MemorySegment msg = arena.allocate(8);
            // our sender refuses what our receiver could not take whole
            assertThatThrownBy(() -> tx.send(msg, 8, many)).isInstanceOf(IllegalArgumentException.class);
            MemorySegment in = arena.allocate(8);
            // exactly the maximum arrives whole
            int[] max = java.util.Arrays.copyOf(many, UnixSocket.MAX_RECV_FDS);
            tx.send(msg, 8, max);
            UnixSocket.Received got = rx.recv(in, 8);
            for (int f : got.fds()) track(f);
            assertThat(got.fds()).hasSize(UnixSocket.MAX_RECV_FDS);
        }
    }

    @Test
    void aTruncatedControlMessageIsAProtocolErrorAndClosesWhatArrived() throws Throwable {
        UnixSocket[] p = UnixSocket.pair();
        try (UnixSocket tx = p[0]; UnixSocket rx = p[1]) {
            // A peer that is not us sends more fds than the receiver has room for.
            int n = UnixSocket.MAX_RECV_FDS + 4;
            int[] many = new int[n];
            for (int i = 0; i < n; i++) many[i] = track(EventFd.create(true));
            rawSendWithFds(tx.fd(), many);
            MemorySegment in = arena.allocate(8);
            long openBefore = openFds();
            assertThatThrownBy(() -> rx.recv(in, 8)).isInstanceOf(ProtocolFdException.class)
                    .hasMessageContaining("more than " + UnixSocket.MAX_RECV_FDS);
            assertThat(openFds()).as("the fds that did arrive were closed").isEqualTo(openBefore);
            // the connection still carries the next message
            MemorySegment msg = arena.allocate(8);
            msg.set(ValueLayout.JAVA_LONG, 0, 7);
            tx.send(msg, 8);
            assertThat(rx.recv(in, 8).bytes()).isEqualTo(8);
            assertThat(in.get(ValueLayout.JAVA_LONG, 0)).isEqualTo(7);
        }
    }

    private static long openFds() throws java.io.IOException {
        try (var l = java.nio.file.Files.list(java.nio.file.Path.of("/proc/self/fd"))) {
            return l.count();
        }
    }

    /** sendmsg of 8 bytes with {@code fds} as SCM_RIGHTS, bypassing UnixSocket's own limit. */
    private void rawSendWithFds(int sock, int[] fds) throws Throwable {
        MemorySegment data = arena.allocate(8);
        MemorySegment iov = arena.allocate(16, 8);
        iov.set(ValueLayout.ADDRESS, 0, data);
        iov.set(ValueLayout.JAVA_LONG, 8, 8L);
        long cmsgLen = 16 + 4L * fds.length;
        MemorySegment control = arena.allocate((cmsgLen + 7) & ~7L, 8);
        control.set(ValueLayout.JAVA_LONG, 0, cmsgLen);
        control.set(ValueLayout.JAVA_INT, 8, 1);  // SOL_SOCKET
        control.set(ValueLayout.JAVA_INT, 12, 1); // SCM_RIGHTS
        for (int i = 0; i < fds.length; i++) control.set(ValueLayout.JAVA_INT, 16 + 4L * i, fds[i]);
        MemorySegment msg = arena.allocate(56, 8);
        msg.set(ValueLayout.ADDRESS, 16, iov);
        msg.set(ValueLayout.JAVA_LONG, 24, 1L);
        msg.set(ValueLayout.ADDRESS, 32, control);
        msg.set(ValueLayout.JAVA_LONG, 40, control.byteSize());
        long sent = (long) Native.SENDMSG.invokeExact(Native.capture(), sock, msg, 0);
        assertThat(sent).isEqualTo(8);
    }

    @Test
    void aClosedPeerIsEndOfFile() {
        UnixSocket[] p = UnixSocket.pair();
        try (UnixSocket rx = p[1]) {
            p[0].close();
            assertThatThrownBy(() -> rx.recv(arena.allocate(8), 8)).isInstanceOf(java.io.EOFException.class);
        }
    }

    @Test
    void errnoConstantsAreLibcsOwn() {
        assertThatThrownBy(() -> Fd.open("/nonexistent-jvhost-" + ProcessHandle.current().pid(), Fd.O_RDONLY, 0))
                .isInstanceOf(NativeException.class)
                .satisfies(e -> assertThat(((NativeException) e).errno()).isEqualTo(Errno.ENOENT));
        assertThat(Native.strerror(Errno.ENOENT)).isEqualTo("No such file or directory");
        assertThat(Native.strerror(Errno.EAGAIN)).isEqualTo("Resource temporarily unavailable");
        assertThat(Native.strerror(Errno.ENOTSUP)).isEqualTo("Operation not supported");
    }

    @Test
    void failedCallsCarryTheirErrno() {
        assertThatThrownBy(() -> Fd.ftruncate(-1, 0)).isInstanceOf(NativeException.class)
                .hasMessageContaining("errno " + Errno.EBADF)
                .satisfies(e -> assertThat(((NativeException) e).errno()).isEqualTo(Errno.EBADF));
    }

    @Test
    void largeAnonymousMappingsStartOnAHugePageAndAreAdvisedHuge() throws Exception {
        try (Mmap m = Mmap.anonymous(8L << 20 | 4096)) { // not a multiple of 2 MiB
            long a = m.segment().address();
            assertThat(a % Mmap.HUGE_PAGE).isZero();
            assertThat(m.segment().byteSize()).isEqualTo(8L << 20 | 4096);
            m.segment().set(ValueLayout.JAVA_LONG, m.segment().byteSize() - 8, 42L);
            assertThat(m.segment().get(ValueLayout.JAVA_LONG, m.segment().byteSize() - 8)).isEqualTo(42L);
            // The kernel lists the advice as VmFlags "hg" on the mapping that starts at a.
            String start = Long.toHexString(a) + "-";
            List<String> smaps = java.nio.file.Files.readAllLines(java.nio.file.Path.of("/proc/self/smaps"));
            int at = -1;
            for (int i = 0; i < smaps.size(); i++) if (smaps.get(i).startsWith(start)) at = i;
            assertThat(at).as("mapping listed in smaps").isNotNegative();
            String flags = null;
            for (int i = at + 1; i < smaps.size() && flags == null; i++) if (smaps.get(i).startsWith("VmFlags:")) flags = smaps.get(i);
            boolean thp = !java.nio.file.Files.readString(java.nio.file.Path.of("/sys/kernel/mm/transparent_hugepage/enabled")).contains("[never]");
            if (thp) assertThat(flags).as("VmFlags").contains(" hg");
        }
        try (Mmap small = Mmap.anonymous(12288)) { // below a huge page: a plain mapping
            assertThat(small.segment().byteSize()).isEqualTo(12288);
            small.segment().fill((byte) 1);
        }
    }
}
