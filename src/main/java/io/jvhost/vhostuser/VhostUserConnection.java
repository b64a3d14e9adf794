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
            m.tolerated = 0;
            if (backEnd) {
                // DPDK's vhost library and libvhost-user read neither the version bits nor the
                // other flag bits of a request: tolerate them, and let the session log and count.
                if ((m.flags & FLAG_VERSION_MASK) != VERSION) m.tolerated |= VhostUserMessage.TOLERATED_VERSION;
                if ((m.flags & ~(FLAG_VERSION_MASK | FLAG_REPLY | FLAG_NEED_REPLY)) != 0) m.tolerated |= VhostUserMessage.TOLERATED_UNKNOWN_FLAGS;
                if ((m.flags & FLAG_REPLY) != 0) m.tolerated |= VhostUserMessage.TOLERATED_REPLY_FLAG;
            } else {
                // As a front-end we are as strict as QEMU and SPDK's virtio-user: a reply carries
                // exactly version 1 and the REPLY flag.
                if ((m.flags & FLAG_VERSION_MASK) != VERSION) {
                    throw new VhostUserProtocolException("bad header: version " + (m.flags & FLAG_VERSION_MASK) + " in flags 0x"
                            + Integer.toHexString(m.flags) + " (expected 1), request code " + Integer.toUnsignedString(m.requestCode));
                }
                if ((m.flags & ~(FLAG_VERSION_MASK | FLAG_REPLY | FLAG_NEED_REPLY)) != 0) {
                    throw new VhostUserProtocolException("bad header: unknown flag bits 0x" + Integer.toHexString(m.flags));
                }
                if ((m.flags & FLAG_REPLY) == 0) throw new VhostUserProtocolException("back-end sent a request where a reply was expected");
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

    /**
     * Checks payload size and fd count of a request against its definition; null when fine.
     * A payload longer than the structure is tolerated (marked in {@link VhostUserMessage#tolerated}),
     * as DPDK's vhost library and libvhost-user do; a shorter one is refused, because the fields
     * it lacks would be read from whatever the buffer held before. The fd count is always exact:
     * DPDK refuses any other count too, and an fd we do not expect is one we would leak.
     */
    static String checkShape(VhostUserMessage m) {
        VhostUserRequest q = m.request;
        int size = m.size;
        int nfds = m.fds().length;
        int needed = switch (q.payload) {
            case NONE, ANY -> 0;
            case U64, VRING_STATE -> 8;
            case VRING_ADDR -> VRING_ADDR_SIZE;
            case MEM_REGION -> 8 + MEM_REGION_SIZE;
            case LOG -> LOG_SIZE;
            case INFLIGHT -> INFLIGHT_SIZE;
            case MEM_TABLE, CONFIG -> 0; // checked below, once their header is known
        };
        String bad = null;
        if (size < needed) {
            bad = switch (q.payload) {
                case U64 -> "expected an 8-byte payload, got " + size;
                case VRING_STATE -> "expected an 8-byte vring state, got " + size;
                case VRING_ADDR -> "expected a 40-byte vring address, got " + size;
                case MEM_REGION -> "expected a 40-byte memory region, got " + size;
                case LOG -> "expected a 16-byte log description, got " + size;
                case INFLIGHT -> "expected a 24-byte inflight description, got " + size;
                default -> "payload of " + size + " bytes is too short";
            };
        } else if (q.payload == VhostUserRequest.Payload.MEM_TABLE) {
            if (size < MEM_TABLE_HEADER) {
                bad = "memory table shorter than its header: " + size;
            } else {
                int n = m.u32(0);
                // 0 regions is accepted (DPDK and libvhost-user do): the session then has no memory.
                if (n < 0 || n > MAX_TABLE_REGIONS) bad = "memory table has " + Integer.toUnsignedString(n) + " regions (0.." + MAX_TABLE_REGIONS + " allowed)";
                else if (size < MEM_TABLE_HEADER + MEM_REGION_SIZE * n) bad = "memory table of " + n + " regions needs " + (MEM_TABLE_HEADER + MEM_REGION_SIZE * n) + " bytes, got " + size;
                else needed = MEM_TABLE_HEADER + MEM_REGION_SIZE * n;
            }
        } else if (q.payload == VhostUserRequest.Payload.CONFIG) {
            if (size < CONFIG_HEADER) {
                bad = "config message shorter than its header: " + size;
            } else {
                int len = m.u32(4);
                if (len < 0 || len > MAX_CONFIG_SIZE) bad = "config size " + Integer.toUnsignedString(len) + " exceeds " + MAX_CONFIG_SIZE;
                // GET_CONFIG's region is output only: front-ends send it at full length, but it is never read.
                else if (q == VhostUserRequest.SET_CONFIG && size < CONFIG_HEADER + len) bad = "config payload is " + size + " bytes but its size field says " + (CONFIG_HEADER + len);
                else needed = q == VhostUserRequest.SET_CONFIG ? CONFIG_HEADER + len : Math.min(size, CONFIG_HEADER + len);
            }
        }
        if (bad != null) return bad;
        if (q.payload != VhostUserRequest.Payload.ANY && size > needed) m.tolerated |= VhostUserMessage.TOLERATED_TRAILING_BYTES;
        return switch (q.fds) {
            case NONE -> nfds == 0 ? null : "carries " + nfds + " file descriptors, expected none";
            case ONE -> nfds == 1 ? null : "carries " + nfds + " file descriptors, expected 1";
            case ZERO_OR_ONE -> nfds <= 1 ? null : "carries " + nfds + " file descriptors, expected at most 1";
            case PER_REGION -> nfds == m.u32(0) ? null : "carries " + nfds + " file descriptors for " + m.u32(0) + " regions";
            case VRING_FILE -> {
                boolean nofd = (m.u64(0) & VRING_FILE_NOFD) != 0;
                // Only the index and the no-fd bit mean anything; DPDK and libvhost-user mask the rest.
                if ((m.u64(0) & ~(VRING_FILE_INDEX_MASK | VRING_FILE_NOFD)) != 0) m.tolerated |= VhostUserMessage.TOLERATED_VRING_FILE_BITS;
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
