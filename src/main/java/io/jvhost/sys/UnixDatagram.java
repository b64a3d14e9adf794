package io.jvhost.sys;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;

/**
 * AF_UNIX datagram sockets, for the service manager's notification socket (sd_notify(3):
 * {@code NOTIFY_SOCKET}). An address is a filesystem path, or an abstract name written with a
 * leading {@code '@'} (the socket lives in the abstract namespace: {@code sun_path[0] == 0},
 * no file, and its length is part of the address), as systemd spells it.
 *
 * <pre>
 * struct sockaddr_un (110 bytes)
 *   0 u16  sun_family  (AF_UNIX = 1)
 *   2 char sun_path[108]   path (NUL-terminated) | 0, abstract name (not terminated)
 * </pre>
 */
public final class UnixDatagram implements AutoCloseable {
    private static final int SOCK_DGRAM = 2;
    private static final int MSG_DONTWAIT = 0x40;
    private static final int MSG_NOSIGNAL = 0x4000;
    private static final int SUN_PATH_BYTES = 108;

    private final int fd;
    private final String address;

    private UnixDatagram(int fd, String address) {
        this.fd = fd;
        this.address = address;
    }

    private static int newSocket() {
        try {
            int s = (int) Native.SOCKET.invokeExact(Native.capture(), UnixSocket.AF_UNIX, SOCK_DGRAM | UnixSocket.SOCK_CLOEXEC, 0);
            if (s < 0) throw Native.fail("socket(AF_UNIX, SOCK_DGRAM)");
            return s;
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    /** The sockaddr_un for {@code address}; its significant length is stored in {@code len[0]}. */
    private static MemorySegment sockaddr(Arena a, String address, int[] len) {
        boolean abstractName = address.startsWith("@");
        byte[] name = (abstractName ? address.substring(1) : address).getBytes(StandardCharsets.UTF_8);
        // A path needs its NUL inside sun_path; an abstract name has a leading NUL instead.
        if (address.isEmpty() || name.length + 1 > SUN_PATH_BYTES) {
            throw new IllegalArgumentException("not a usable Unix socket address (empty, or longer than " + (SUN_PATH_BYTES - 1)
                    + " bytes): " + address);
        }
        MemorySegment sa = a.allocate(2 + SUN_PATH_BYTES, 8);
        sa.set(ValueLayout.JAVA_SHORT, 0, (short) UnixSocket.AF_UNIX);
        MemorySegment.copy(name, 0, sa, ValueLayout.JAVA_BYTE, abstractName ? 3 : 2, name.length);
        len[0] = abstractName ? 2 + 1 + name.length : 2 + SUN_PATH_BYTES;
        return sa;
    }

    /**
     * Sends one datagram to {@code address} from a fresh unbound socket (what sd_notify does).
     *
     * @throws NativeException when nobody listens there (ECONNREFUSED, ENOENT) or it cannot be sent
     */
    public static void send(String address, byte[] message) {
        int s = newSocket();
        try (Arena a = Arena.ofConfined()) {
            int[] len = new int[1];
            MemorySegment sa = sockaddr(a, address, len);
            MemorySegment buf = a.allocate(Math.max(1, message.length));
            MemorySegment.copy(message, 0, buf, ValueLayout.JAVA_BYTE, 0, message.length);
            while (true) {
                long n = (long) Native.SENDTO.invokeExact(Native.capture(), s, buf, (long) message.length, MSG_NOSIGNAL, sa, len[0]);
                if (n >= 0) return;
                if (Native.errno() != Errno.EINTR) throw Native.fail("sendto(" + address + ")");
            }
        } catch (Throwable t) {
            throw Native.rethrow(t);
        } finally {
            Fd.closeQuietly(s);
        }
    }

    /** A datagram socket bound to {@code address} (a path, or {@code @name}), to receive on. */
    public static UnixDatagram bind(String address) {
        int s = newSocket();
        try (Arena a = Arena.ofConfined()) {
            int[] len = new int[1];
            MemorySegment sa = sockaddr(a, address, len);
            int r = (int) Native.BIND.invokeExact(Native.capture(), s, sa, len[0]);
            if (r < 0) throw Native.fail("bind(" + address + ")");
            return new UnixDatagram(s, address);
        } catch (Throwable t) {
            Fd.closeQuietly(s);
            throw Native.rethrow(t);
        }
    }

    /** The next datagram if one is waiting (never blocks), else null. */
    public byte[] poll() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment buf = a.allocate(4096);
            while (true) {
                long n = (long) Native.RECV.invokeExact(Native.capture(), fd, buf, 4096L, MSG_DONTWAIT);
                if (n >= 0) return buf.asSlice(0, n).toArray(ValueLayout.JAVA_BYTE);
                int e = Native.errno();
                if (e == Errno.EINTR) continue;
                if (e == Errno.EAGAIN) return null;
                throw new NativeException("recv(" + address + ")", e);
            }
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    /** Closes the socket; a path-bound socket's file is removed. */
    @Override
    public void close() {
        Fd.closeQuietly(fd);
        if (!address.startsWith("@")) UnixSocket.unlinkQuietly(address);
    }
}
