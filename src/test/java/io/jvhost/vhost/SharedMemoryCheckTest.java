package io.jvhost.vhost;

import io.jvhost.cli.ServeProcess;
import io.jvhost.initiator.SharedMemory;
import io.jvhost.initiator.VhostUserFrontend;
import io.jvhost.memory.MemoryRegion;
import io.jvhost.sys.UnixSocket;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;
import java.nio.file.Path;
import java.util.List;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static org.assertj.core.api.Assertions.assertThat;

/**
 * Guest memory a front-end maps privately (QEMU without share=on) is named with its fix; shared
 * memory and what cannot be told are not reported.
 */
class SharedMemoryCheckTest {
    @TempDir
    Path dir;

    private static final long SIZE = 2 << 20;
    private static final int PROT_RW = 3, MAP_PRIVATE = 2, MAP_FIXED = 0x10;

    /** Replaces {@code mem}'s shared mapping with a private one of the same memfd at the same address (as QEMU's share=off maps it). */
    static void remapPrivately(SharedMemory mem) throws Throwable {
        MethodHandle mmap = Linker.nativeLinker().downcallHandle(Linker.nativeLinker().defaultLookup().find("mmap").orElseThrow(),
                FunctionDescriptor.of(ADDRESS, ADDRESS, JAVA_LONG, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_LONG));
        MemorySegment r = (MemorySegment) mmap.invokeExact(MemorySegment.ofAddress(mem.userAddr()), mem.size(), PROT_RW, MAP_PRIVATE | MAP_FIXED, mem.fd(), 0L);
        assertThat(r.address()).isEqualTo(mem.userAddr());
    }

    @Test
    void aPrivateMappingOfTheFrontEndIsNamedASharedOneIsNot() throws Throwable {
        long pid = ProcessHandle.current().pid();
        UnixSocket[] pair = UnixSocket.pair();
        try (SharedMemory shared = new SharedMemory(SIZE, 0); SharedMemory priv = new SharedMemory(SIZE, SIZE)) {
            assertThat(pair[0].peerPid()).isEqualTo(pid);
            remapPrivately(priv);
            try (MemoryRegion s = MemoryRegion.map(shared.fd(), 0, SIZE, shared.userAddr(), 0);
                 MemoryRegion p = MemoryRegion.map(priv.fd(), SIZE, SIZE, priv.userAddr() + 4096, 0)) {
                assertThat(SharedMemoryCheck.privateRegion(pid, List.of(s))).isNull();
                assertThat(SharedMemoryCheck.privateRegion(pid, List.of(s, p)))
                        .isEqualTo("the front-end (pid " + pid + ") maps guest memory at 0x" + Long.toHexString(priv.userAddr() + 4096)
                                + " privately (rw-p /memfd:jvhost-initiator (deleted)), so the guest's writes never reach jvhost");
                // Nothing to tell: no pid, a process that does not exist, an address nobody maps.
                assertThat(SharedMemoryCheck.privateRegion(-1, List.of(p))).isNull();
                assertThat(SharedMemoryCheck.privateRegion(Integer.MAX_VALUE, List.of(p))).isNull();
                try (MemoryRegion nowhere = MemoryRegion.map(priv.fd(), 0, SIZE, 0x1000, 0)) {
                    assertThat(SharedMemoryCheck.privateRegion(pid, List.of(nowhere))).isNull();
                }
            }
        } finally {
            pair[0].close();
            pair[1].close();
        }
    }

    @Test
    void serveLogsOneLineWithTheFixWhenAFrontEndsMemoryIsNotShared() throws Throwable {
        try (ServeProcess serve = ServeProcess.start("-S", dir.toString(), "--malloc", "16M", "--no-rpc");
             SharedMemory mem = new SharedMemory(SIZE, 0);
             VhostUserFrontend fe = VhostUserFrontend.connect(dir.resolve("vhost.0").toString())) {
            remapPrivately(mem);
            fe.setOwner();
            fe.setMemTable(mem);
            String line = serve.awaitLine(l -> l.contains("guest memory is not shared"));
            assertThat(line).contains("vhost.0").contains("pid " + ProcessHandle.current().pid()).contains("privately (rw-p")
                    .contains("start QEMU with shared guest RAM: -object memory-backend-memfd,id=mem,size=<RAM>,share=on -machine memory-backend=mem");
        }
    }
}
