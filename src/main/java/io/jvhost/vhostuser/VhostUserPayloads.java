package io.jvhost.vhostuser;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;

import static io.jvhost.vhostuser.VhostUserProtocol.*;

/**
 * The typed payloads of vhost-user messages, decoded and encoded in one place (layouts in
 * {@link VhostUserProtocol}; vhost-user.rst "Message types"). Shared by the back-end's dispatcher
 * and the front-end.
 *
 * <p>Each decoder checks the payload is long enough for its structure and throws
 * {@link VhostUserProtocolException} when it is not: {@link VhostUserConnection#receive} has
 * normally refused such a message already (its shape check), so this is the second line for
 * messages built elsewhere (tests, a future in-process transport). Values are not interpreted
 * here: a ring index out of range or a bad ring size is the handler's business.
 *
 * <p>Control path only: the records are allocated per message.
 */
public final class VhostUserPayloads {
    private VhostUserPayloads() {}

    private static void need(VhostUserMessage m, int bytes, String what) throws VhostUserProtocolException {
        if (Integer.compareUnsigned(m.size, bytes) < 0) {
            throw new VhostUserProtocolException(m.request + ": expected " + bytes + " bytes of " + what + ", got " + Integer.toUnsignedString(m.size));
        }
    }

    // ---- decoders (requests the back-end receives) ----

    public static long u64(VhostUserMessage m) throws VhostUserProtocolException {
        need(m, 8, "u64");
        return m.u64(0);
    }

    public static VringState vringState(VhostUserMessage m) throws VhostUserProtocolException {
        need(m, VRING_STATE_SIZE, "vring state");
        return new VringState(m.u32(0), m.u32(4));
    }

    public static VringAddr vringAddr(VhostUserMessage m) throws VhostUserProtocolException {
        need(m, VRING_ADDR_SIZE, "vring address");
        return new VringAddr(m.u32(0), m.u32(4), m.u64(8), m.u64(16), m.u64(24), m.u64(32));
    }

    /**
     * The vring file of SET_VRING_KICK/CALL/ERR. The fd is taken from the message: the caller
     * owns it from here on. Bits 9-63 are ignored (the connection marks them tolerated).
     */
    public static VringFile vringFile(VhostUserMessage m) throws VhostUserProtocolException {
        need(m, 8, "vring file");
        long v = m.u64(0);
        boolean nofd = (v & VRING_FILE_NOFD) != 0;
        if (!nofd && m.fds().length != 1) throw new VhostUserProtocolException(m.request + ": vring file without its fd");
        if (nofd && m.fds().length != 0) throw new VhostUserProtocolException(m.request + ": invalid-fd flag set but an fd attached");
        return new VringFile((int) (v & VRING_FILE_INDEX_MASK), nofd, nofd ? -1 : m.takeFd(0));
    }

    public static MemTable memTable(VhostUserMessage m) throws VhostUserProtocolException {
        need(m, MEM_TABLE_HEADER, "memory table header");
        int n = m.u32(0);
        if (n < 0 || n > MAX_TABLE_REGIONS) throw new VhostUserProtocolException(m.request + ": " + Integer.toUnsignedString(n) + " regions");
        need(m, MEM_TABLE_HEADER + n * MEM_REGION_SIZE, "memory table of " + n + " regions");
        if (m.fds().length != n) throw new VhostUserProtocolException(m.request + ": " + m.fds().length + " fds for " + n + " regions");
        List<MemRegion> regions = new ArrayList<>(n);
        for (int i = 0; i < n; i++) regions.add(region(m, MEM_TABLE_HEADER + i * MEM_REGION_SIZE, m.fds()[i]));
        return new MemTable(regions);
    }

    /** ADD_MEM_REG / REM_MEM_REG: 8 bytes of padding, then one region; its fd (if any) stays with the message. */
    public static MemRegion memRegion(VhostUserMessage m) throws VhostUserProtocolException {
        need(m, 8 + MEM_REGION_SIZE, "single memory region");
        return region(m, 8, m.fds().length > 0 ? m.fds()[0] : -1);
    }

    private static MemRegion region(VhostUserMessage m, int off, int fd) {
        return new MemRegion(m.u64(off), m.u64(off + 8), m.u64(off + 16), m.u64(off + 24), fd);
    }

    /**
     * GET_CONFIG / SET_CONFIG. The size field is checked against {@link VhostUserProtocol#MAX_CONFIG_SIZE};
     * SET_CONFIG must carry that many bytes, GET_CONFIG's bytes are output space and not read.
     */
    public static ConfigPayload config(VhostUserMessage m) throws VhostUserProtocolException {
        need(m, CONFIG_HEADER, "config header");
        int size = m.u32(4);
        if (size < 0 || size > MAX_CONFIG_SIZE) throw new VhostUserProtocolException(m.request + ": config size " + Integer.toUnsignedString(size) + " exceeds " + MAX_CONFIG_SIZE);
        MemorySegment data = MemorySegment.NULL;
        if (m.request == VhostUserRequest.SET_CONFIG) {
            need(m, CONFIG_HEADER + size, "config payload");
            data = m.payload().asSlice(CONFIG_HEADER, size);
        }
        return new ConfigPayload(m.u32(0), size, m.u32(8), data);
    }

    /** SET_LOG_BASE; the fd (if any) stays with the message. */
    public static LogPayload log(VhostUserMessage m) throws VhostUserProtocolException {
        need(m, LOG_SIZE, "log description");
        return new LogPayload(m.u64(0), m.u64(8), m.fds().length > 0 ? m.fds()[0] : -1);
    }

    /** GET_INFLIGHT_FD / SET_INFLIGHT_FD; SET's fd stays with the message. */
    public static InflightPayload inflight(VhostUserMessage m) throws VhostUserProtocolException {
        need(m, INFLIGHT_SIZE, "inflight description");
        int q = m.u32(16);
        return new InflightPayload(m.u64(0), m.u64(8), q & 0xffff, q >>> 16, m.fds().length > 0 ? m.fds()[0] : -1);
    }

    // ---- encoders (into a message begun with the right size) ----

    public static void put(VhostUserMessage m, VringState s) {
        m.putU32(0, s.index());
        m.putU32(4, s.num());
    }

    public static void put(VhostUserMessage m, VringAddr a) {
        m.putU32(0, a.index());
        m.putU32(4, a.flags());
        m.putU64(8, a.descUva());
        m.putU64(16, a.usedUva());
        m.putU64(24, a.availUva());
        m.putU64(32, a.logGuestAddr());
    }

    /** The u64 of a vring file (index and no-fd bit); the fd travels beside the message. */
    public static long vringFileU64(int index, boolean nofd) {
        return (index & VRING_FILE_INDEX_MASK) | (nofd ? VRING_FILE_NOFD : 0);
    }

    /** A region at payload offset {@code off} (8 for ADD/REM_MEM_REG, 8 + 32·i in a table). */
    public static void put(VhostUserMessage m, int off, MemRegion r) {
        m.putU64(off, r.guestAddr());
        m.putU64(off + 8, r.size());
        m.putU64(off + 16, r.userAddr());
        m.putU64(off + 24, r.mmapOffset());
    }

    /** The config header; the caller writes {@code c.size()} bytes after it. */
    public static void putConfigHeader(VhostUserMessage m, int offset, int size, int flags) {
        m.putU32(0, offset);
        m.putU32(4, size);
        m.putU32(8, flags);
    }

    public static void put(VhostUserMessage m, LogPayload l) {
        m.putU64(0, l.mmapSize());
        m.putU64(8, l.mmapOffset());
    }

    public static void put(VhostUserMessage m, InflightPayload p) {
        m.putU64(0, p.mmapSize());
        m.putU64(8, p.mmapOffset());
        m.putU32(16, (p.numQueues() & 0xffff) | (p.queueSize() << 16));
        m.putU32(20, 0);
    }
}
