package io.jvhost.vhostuser;

import io.jvhost.sys.Fd;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import static io.jvhost.vhostuser.VhostUserProtocol.*;

/**
 * One vhost-user message: header fields, a payload buffer and the fds that came with it. A
 * reusable object owned by one connection thread; typed accessors read the payload with bounds
 * already checked by {@link VhostUserConnection#receive}.
 */
public final class VhostUserMessage implements AutoCloseable {
    private static final ValueLayout.OfInt U32 = ValueLayout.JAVA_INT_UNALIGNED;
    private static final ValueLayout.OfLong U64 = ValueLayout.JAVA_LONG_UNALIGNED;

    private final Arena arena = Arena.ofShared();
    /** Header followed by payload, contiguous so a message goes out in one sendmsg. */
    final MemorySegment buffer = arena.allocate(HEADER_SIZE + MAX_PAYLOAD, 8);
    public int requestCode;
    public VhostUserRequest request = VhostUserRequest.UNKNOWN;
    public int flags;
    public int size;
    /**
     * Deviations from vhost-user.rst the codec tolerated in this message (a bit set of the
     * {@code TOLERATED_*} constants): what DPDK's vhost library and libvhost-user accept as well.
     * Zero for a message that follows the spec to the letter.
     */
    public int tolerated;
    private int[] fds = new int[0];

    /** Version bits of the flags other than 1. */
    public static final int TOLERATED_VERSION = 1;
    /** Flag bits the spec does not define. */
    public static final int TOLERATED_UNKNOWN_FLAGS = 1 << 1;
    /** The REPLY flag on a front-end request. */
    public static final int TOLERATED_REPLY_FLAG = 1 << 2;
    /** A payload longer than the request's structure (the extra bytes are ignored). */
    public static final int TOLERATED_TRAILING_BYTES = 1 << 3;
    /** Bits 9-63 of a vring file u64 set (only the index and the no-fd bit are read). */
    public static final int TOLERATED_VRING_FILE_BITS = 1 << 4;
    public static final int TOLERATED_COUNT = 5;

    /** A short name of tolerated deviation {@code bit}, for logs. */
    public static String toleratedName(int bit) {
        return switch (bit) {
            case TOLERATED_VERSION -> "header version other than 1";
            case TOLERATED_UNKNOWN_FLAGS -> "undefined header flag bits";
            case TOLERATED_REPLY_FLAG -> "REPLY flag on a request";
            case TOLERATED_TRAILING_BYTES -> "payload longer than the request's structure";
            case TOLERATED_VRING_FILE_BITS -> "reserved bits in a vring file index";
            default -> "deviation 0x" + Integer.toHexString(bit);
        };
    }

    public MemorySegment payload() {
        return buffer.asSlice(HEADER_SIZE, MAX_PAYLOAD);
    }

    public boolean needReply() {
        return (flags & FLAG_NEED_REPLY) != 0;
    }

    public int[] fds() {
        return fds;
    }

    void fds(int[] f) {
        fds = f;
    }

    /** Takes ownership of fd {@code i} away from the message (it will not be closed by {@link #closeFds}). */
    public int takeFd(int i) {
        int f = fds[i];
        fds[i] = -1;
        return f;
    }

    /** Closes any fds not taken. */
    public void closeFds() {
        for (int i = 0; i < fds.length; i++) {
            Fd.closeQuietly(fds[i]);
            fds[i] = -1;
        }
    }

    public long u64(int off) {
        return buffer.get(U64, HEADER_SIZE + off);
    }

    public int u32(int off) {
        return buffer.get(U32, HEADER_SIZE + off);
    }

    public byte u8(int off) {
        return buffer.get(ValueLayout.JAVA_BYTE, HEADER_SIZE + off);
    }

    public void putU64(int off, long v) {
        buffer.set(U64, HEADER_SIZE + off, v);
    }

    public void putU32(int off, int v) {
        buffer.set(U32, HEADER_SIZE + off, v);
    }

    /** Starts a new message (request or reply) in this buffer. */
    public void begin(VhostUserRequest req, int flags, int size) {
        this.request = req;
        this.requestCode = req.code;
        this.flags = flags;
        this.size = size;
        buffer.asSlice(HEADER_SIZE, size).fill((byte) 0);
    }

    void writeHeader() {
        buffer.set(U32, 0, requestCode);
        buffer.set(U32, 4, flags);
        buffer.set(U32, 8, size);
    }

    void readHeader() {
        requestCode = buffer.get(U32, 0);
        flags = buffer.get(U32, 4);
        size = buffer.get(U32, 8);
        request = VhostUserRequest.of(requestCode);
    }

    @Override
    public void close() {
        closeFds();
        arena.close();
    }

    @Override
    public String toString() {
        return request + "(" + Integer.toUnsignedString(requestCode) + ") flags=0x" + Integer.toHexString(flags) + " size=" + Integer.toUnsignedString(size) + " fds=" + fds.length
                + (tolerated != 0 ? " tolerated=0x" + Integer.toHexString(tolerated) : "") + payloadSummary();
    }

    /** The values a log reader wants to see (features, ring index and number, sizes). */
    private String payloadSummary() {
        return switch (request.payload) {
            case U64 -> size >= 8 ? " u64=0x" + Long.toHexString(u64(0)) : "";
            case VRING_STATE, VRING_ADDR -> size >= 8 ? " index=" + Integer.toUnsignedString(u32(0)) + " num=" + Integer.toUnsignedString(u32(4)) : "";
            case MEM_TABLE -> size >= 4 ? " regions=" + Integer.toUnsignedString(u32(0)) : "";
            case CONFIG -> size >= 8 ? " offset=" + Integer.toUnsignedString(u32(0)) + " len=" + Integer.toUnsignedString(u32(4)) : "";
            case LOG -> size >= 16 ? " mmap_size=0x" + Long.toHexString(u64(0)) + " offset=0x" + Long.toHexString(u64(8)) : "";
            case INFLIGHT -> size >= 20 ? " mmap_size=0x" + Long.toHexString(u64(0)) + " queues=" + (u32(16) & 0xffff) + " queue_size=" + (u32(16) >>> 16) : "";
            case MEM_REGION -> size >= 24 ? " gpa=0x" + Long.toHexString(u64(8)) + " len=0x" + Long.toHexString(u64(16)) : "";
            default -> "";
        };
    }
}
