package io.jvhost.vhostuser;

import io.jvhost.sys.ProtocolFdException;
import io.jvhost.sys.UnixSocket;

import java.io.EOFException;
import java.lang.foreign.MemorySegment;

import static io.jvhost.vhostuser.VhostUserProtocol.*;

/**
 * The message codec over one AF_UNIX connection, shared by the back-end (target) and the
 * front-end (initiator). Framing and per-request shape (payload size, fd count) are checked here;
 * what the values mean is the caller's business. One reader thread; sends are serialized.
 */
public final class VhostUserConnection implements AutoCloseable {
    private final UnixSocket socket;
    private final boolean backEnd;

    /** @param backEnd true on the target side (expects requests), false on the initiator side (expects replies) */
    public VhostUserConnection(UnixSocket socket, boolean backEnd) {
        this.socket = socket;
        this.backEnd = backEnd;
    }

    public UnixSocket socket() {
        return socket;
    }

    /**
     * Reads the next message into {@code m} (closing any fds {@code m} still held). Throws
     * {@link EOFException} when the peer closed, {@link VhostUserProtocolException} for a message
     * that breaks the protocol (all its fds are closed by then).
     */
    public void receive(VhostUserMessage m) throws EOFException, VhostUserProtocolException {
        m.closeFds();
        MemorySegment buf = m.buffer;
        UnixSocket.Received r;
        try {
            r = socket.recv(buf, HEADER_SIZE);
        } catch (ProtocolFdException e) {
            throw new VhostUserProtocolException(e.getMessage());
        }
        m.fds(r.fds());
        try {
            if (r.bytes() < HEADER_SIZE) {
                if (r.bytes() == 0) throw new EOFException("peer closed the connection");
                socket.recvFully(buf.asSlice(r.bytes()), HEADER_SIZE - r.bytes());
            }
            m.readHeader();
            if ((m.flags & FLAG_VERSION_MASK) != VERSION) {
                throw new VhostUserProtocolException("bad header: version " + (m.flags & FLAG_VERSION_MASK) + " in flags 0x"
                        + Integer.toHexString(m.flags) + " (expected 1), request code " + Integer.toUnsignedString(m.requestCode));
            }
            if ((m.flags & ~(FLAG_VERSION_MASK | FLAG_REPLY | FLAG_NEED_REPLY)) != 0) {
                throw new VhostUserProtocolException("bad header: unknown flag bits 0x" + Integer.toHexString(m.flags));
            }
            boolean isReply = (m.flags & FLAG_REPLY) != 0;
            if (backEnd == isReply) {
                throw new VhostUserProtocolException(backEnd ? "front-end sent a message with the REPLY flag set" : "back-end sent a request where a reply was expected");
            }
            if (m.size < 0 || m.size > MAX_PAYLOAD) {
                throw new VhostUserProtocolException("payload size " + Integer.toUnsignedString(m.size) + " of " + m.request
                        + " exceeds the " + MAX_PAYLOAD + "-byte limit");
            }
            if (m.size > 0) socket.recvFully(buf.asSlice(HEADER_SIZE), m.size);
            String shape = backEnd ? checkShape(m) : null;
            if (shape != null) throw new VhostUserProtocolException(m.request + ": " + shape);
        } catch (VhostUserProtocolException | EOFException | RuntimeException e) {
            m.closeFds();
            if (e instanceof ProtocolFdException pe) throw new VhostUserProtocolException(pe.getMessage());
            throw e;
        }
    }

    /** Checks payload size and fd count of a request against its definition; null when fine. */
    static String checkShape(VhostUserMessage m) {
        VhostUserRequest q = m.request;
        int size = m.size;
        int nfds = m.fds().length;
        String bad = switch (q.payload) {
            case NONE -> size == 0 ? null : "expected no payload, got " + size + " bytes";
            case U64 -> size == 8 ? null : "expected an 8-byte payload, got " + size;
            case VRING_STATE -> size == VRING_STATE_SIZE ? null : "expected an 8-byte vring state, got " + size;
            case VRING_ADDR -> size == VRING_ADDR_SIZE ? null : "expected a 40-byte vring address, got " + size;
            case MEM_REGION -> size == 8 + MEM_REGION_SIZE ? null : "expected a 40-byte memory region, got " + size;
            case MEM_TABLE -> {
                if (size < MEM_TABLE_HEADER) yield "memory table shorter than its header: " + size;
                int n = m.u32(0);
                if (n < 1 || n > MAX_TABLE_REGIONS) yield "memory table has " + Integer.toUnsignedString(n) + " regions (1.." + MAX_TABLE_REGIONS + " allowed)";
                if (size != MEM_TABLE_HEADER + MEM_REGION_SIZE * n) yield "memory table of " + n + " regions must be " + (MEM_TABLE_HEADER + MEM_REGION_SIZE * n) + " bytes, got " + size;
                yield null;
            }
            case CONFIG -> {
                if (size < CONFIG_HEADER) yield "config message shorter than its header: " + size;
                int len = m.u32(4);
                if (len < 0 || len > MAX_CONFIG_SIZE) yield "config size " + Integer.toUnsignedString(len) + " exceeds " + MAX_CONFIG_SIZE;
                if (size != CONFIG_HEADER + len) yield "config payload is " + size + " bytes but its size field says " + (CONFIG_HEADER + len);
                yield null;
            }
            case ANY -> null;
        };
        if (bad != null) return bad;
        return switch (q.fds) {
            case NONE -> nfds == 0 ? null : "carries " + nfds + " file descriptors, expected none";
            case ONE -> nfds == 1 ? null : "carries " + nfds + " file descriptors, expected 1";
            case ZERO_OR_ONE -> nfds <= 1 ? null : "carries " + nfds + " file descriptors, expected at most 1";
            case PER_REGION -> nfds == m.u32(0) ? null : "carries " + nfds + " file descriptors for " + m.u32(0) + " regions";
            case VRING_FILE -> {
                boolean nofd = (m.u64(0) & VRING_FILE_NOFD) != 0;
                if ((m.u64(0) & ~(VRING_FILE_INDEX_MASK | VRING_FILE_NOFD)) != 0) yield "reserved bits set in vring file 0x" + Long.toHexString(m.u64(0));
                if (nofd) yield nfds == 0 ? null : "invalid-fd flag set but " + nfds + " file descriptors attached";
                yield nfds == 1 ? null : "carries " + nfds + " file descriptors, expected 1";
            }
            case ANY -> null;
        };
    }

    /** Sends {@code m} (header, payload and {@code fds}). */
    public void send(VhostUserMessage m, int... fds) {
        m.writeHeader();
        socket.send(m.buffer, HEADER_SIZE + (long) m.size, fds);
    }

    /** Sends a reply to {@code request} with {@code payloadSize} bytes already in {@code reply}'s payload. */
    public void reply(VhostUserMessage reply, VhostUserRequest request, int payloadSize) {
        reply.requestCode = request.code;
        reply.request = request;
        reply.flags = VERSION | FLAG_REPLY;
        reply.size = payloadSize;
        send(reply);
    }

    /** Sends the REPLY_ACK u64 (0 = success). */
    public void ack(VhostUserMessage reply, VhostUserRequest request, boolean ok) {
        reply.putU64(0, ok ? 0 : 1);
        reply(reply, request, 8);
    }

    public void shutdown() {
        socket.shutdown();
    }

    @Override
    public void close() {
        socket.close();
    }
}
