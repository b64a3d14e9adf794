package io.jvhost.initiator;

import io.jvhost.sys.UnixSocket;
import io.jvhost.vhostuser.VhostUserConnection;
import io.jvhost.vhostuser.VhostUserMessage;
import io.jvhost.vhostuser.VhostUserProtocolException;
import io.jvhost.vhostuser.VhostUserRequest;
import io.jvhost.vhostuser.VhostUserPayloads;
import io.jvhost.vhostuser.VringAddr;
import io.jvhost.vhostuser.LogPayload;
import io.jvhost.vhostuser.InflightPayload;

import java.io.EOFException;
import java.io.IOException;
import java.lang.foreign.MemorySegment;

import static io.jvhost.vhostuser.VhostUserProtocol.*;

/**
 * The front-end half of vhost-user (what QEMU does): a blocking request/reply client over the
 * shared codec. When REPLY_ACK is negotiated every request without its own reply asks for an
 * ack, and a NACK becomes an {@link IOException}. One thread at a time.
 */
public final class VhostUserFrontend implements AutoCloseable {
    private final VhostUserConnection conn;
    private final VhostUserMessage out = new VhostUserMessage();
    private final VhostUserMessage in = new VhostUserMessage();
    private boolean replyAck;
    private boolean needReplyOnAll;
    private final java.util.List<VhostUserRequest> sent = new java.util.ArrayList<>();
    private final java.util.List<VhostUserRequest> sentWithNeedReply = new java.util.ArrayList<>();
    /** With REPLY_ACK on: the requests that ask for an ack (null: all without a reply of their own). */
    private java.util.Set<VhostUserRequest> ackOnly;

    public VhostUserFrontend(UnixSocket socket) {
        this.conn = new VhostUserConnection(socket, false);
    }

    public static VhostUserFrontend connect(String path) {
        return new VhostUserFrontend(UnixSocket.connect(path));
    }

    public VhostUserConnection connection() {
        return conn;
    }

    /** From now on, ask for acks (call after SET_PROTOCOL_FEATURES with REPLY_ACK). */
    public void useReplyAck(boolean on) {
        replyAck = on;
    }

    /**
     * From now on, set NEED_REPLY on every message, those with a reply of their own included
     * (rust-vmm's vhost crate does this once REPLY_ACK is negotiated: it sets the flag in its
     * header template). Implies {@link #useReplyAck}.
     */
    public void needReplyOnEveryMessage(boolean on) {
        needReplyOnAll = on;
        replyAck = on || replyAck;
    }

    /**
     * With REPLY_ACK on, ask for an ack only on {@code requests} (QEMU 7.2 does so for the
     * memory table messages and SET_CONFIG, nothing else); null: on every request without a
     * reply of its own.
     */
    public void ackOnly(java.util.Set<VhostUserRequest> requests) {
        ackOnly = requests;
    }

    /** The requests sent so far that carried NEED_REPLY, in order. */
    public java.util.List<VhostUserRequest> sentWithNeedReply() {
        return java.util.List.copyOf(sentWithNeedReply);
    }

    /** Every request sent so far, in order (for tests that compare a profile's sequence). */
    public java.util.List<VhostUserRequest> sent() {
        return java.util.List.copyOf(sent);
    }

    private int getFlags() {
        return VERSION | (needReplyOnAll ? FLAG_NEED_REPLY : 0);
    }

    private void sendGet(int... fds) {
        out.flags = getFlags();
        sent.add(out.request);
        if (needReplyOnAll) sentWithNeedReply.add(out.request);
        conn.send(out, fds);
    }

    private void request(VhostUserRequest req, int size, int... fds) throws IOException {
        out.requestCode = req.code;
        out.request = req;
        boolean ack = replyAck && (needReplyOnAll || ackOnly == null || ackOnly.contains(req));
        out.flags = VERSION | (ack ? FLAG_NEED_REPLY : 0);
        out.size = size;
        sent.add(req);
        if (ack) sentWithNeedReply.add(req);
        conn.send(out, fds);
        if (ack) {
            receiveReply(req);
            if (in.u64(0) != 0) throw new IOException(req + " was rejected by the back-end (ack " + in.u64(0) + ")");
        }
    }

    private void receiveReply(VhostUserRequest req) throws IOException {
        try {
            conn.receive(in);
        } catch (VhostUserProtocolException e) {
            throw new IOException(e.getMessage(), e);
        } catch (EOFException e) {
            throw new IOException("back-end closed the connection while we waited for the reply to " + req, e);
        }
        in.closeFds();
        if (in.requestCode != req.code) throw new IOException("reply to " + in.request + " where " + req + " was expected");
    }

    private long getU64(VhostUserRequest req) throws IOException {
        out.begin(req, VERSION, 0);
        sendGet();
        receiveReply(req);
        if (in.size != 8) throw new IOException(req + " reply has " + in.size + " bytes, expected 8");
        return in.u64(0);
    }

    private void setU64(VhostUserRequest req, long v, int... fds) throws IOException {
        out.begin(req, VERSION, 8);
        out.putU64(0, v);
        request(req, 8, fds);
    }

    public long getFeatures() throws IOException { return getU64(VhostUserRequest.GET_FEATURES); }
    public void setFeatures(long f) throws IOException { setU64(VhostUserRequest.SET_FEATURES, f); }
    public long getProtocolFeatures() throws IOException { return getU64(VhostUserRequest.GET_PROTOCOL_FEATURES); }
    public void setProtocolFeatures(long f) throws IOException { setU64(VhostUserRequest.SET_PROTOCOL_FEATURES, f); }
    public long getQueueNum() throws IOException { return getU64(VhostUserRequest.GET_QUEUE_NUM); }
    public long getMaxMemSlots() throws IOException { return getU64(VhostUserRequest.GET_MAX_MEM_SLOTS); }

    public void setOwner() throws IOException {
        out.begin(VhostUserRequest.SET_OWNER, VERSION, 0);
        request(VhostUserRequest.SET_OWNER, 0);
    }

    public void resetDevice() throws IOException {
        out.begin(VhostUserRequest.RESET_DEVICE, VERSION, 0);
        request(VhostUserRequest.RESET_DEVICE, 0);
    }

    /**
     * SET_MEM_TABLE of {@code regions} of one shared memory: each region's mmap offset is its
     * offset in the memfd, its user address our mapping's address there.
     */
    public void setMemTable(SharedMemory mem, java.util.List<VhostUserDriver.Region> regions) throws IOException {
        int size = MEM_TABLE_HEADER + MEM_REGION_SIZE * regions.size();
        out.begin(VhostUserRequest.SET_MEM_TABLE, VERSION, size);
        out.putU32(0, regions.size());
        int[] fds = new int[regions.size()];
        for (int i = 0; i < regions.size(); i++) {
            VhostUserDriver.Region r = regions.get(i);
            int off = MEM_TABLE_HEADER + i * MEM_REGION_SIZE;
            out.putU64(off, r.gpa());
            out.putU64(off + 8, r.size());
            out.putU64(off + 16, mem.uva(r.offset()));
            out.putU64(off + 24, r.offset());
            fds[i] = mem.fd();
        }
        request(VhostUserRequest.SET_MEM_TABLE, size, fds);
    }

    /** SET_MEM_TABLE with one region per shared memory. */
    public void setMemTable(SharedMemory... mems) throws IOException {
        int size = MEM_TABLE_HEADER + MEM_REGION_SIZE * mems.length;
        out.begin(VhostUserRequest.SET_MEM_TABLE, VERSION, size);
        out.putU32(0, mems.length);
        int[] fds = new int[mems.length];
        for (int i = 0; i < mems.length; i++) {
            int off = MEM_TABLE_HEADER + i * MEM_REGION_SIZE;
            out.putU64(off, mems[i].gpaBase());
            out.putU64(off + 8, mems[i].size());
            out.putU64(off + 16, mems[i].userAddr());
            out.putU64(off + 24, 0);
            fds[i] = mems[i].fd();
        }
        request(VhostUserRequest.SET_MEM_TABLE, size, fds);
    }

    /** ADD_MEM_REG of a region: {@code size} bytes at file offset {@code mmapOffset} of {@code mem}. */
    public void addMemRegion(SharedMemory mem, long gpa, long mmapOffset, long size) throws IOException {
        memRegion(VhostUserRequest.ADD_MEM_REG, mem, gpa, mmapOffset, size, true);
    }

    public void removeMemRegion(SharedMemory mem, long gpa, long mmapOffset, long size) throws IOException {
        memRegion(VhostUserRequest.REM_MEM_REG, mem, gpa, mmapOffset, size, false);
    }

    private void memRegion(VhostUserRequest req, SharedMemory mem, long gpa, long mmapOffset, long size, boolean withFd) throws IOException {
        out.begin(req, VERSION, 8 + MEM_REGION_SIZE);
        VhostUserPayloads.put(out, 8, new io.jvhost.vhostuser.MemRegion(gpa, size, mem.userAddr() + mmapOffset, mmapOffset, -1));
        if (withFd) request(req, 8 + MEM_REGION_SIZE, mem.fd());
        else request(req, 8 + MEM_REGION_SIZE);
    }

    private void vringState(VhostUserRequest req, int index, int num) throws IOException {
        out.begin(req, VERSION, VRING_STATE_SIZE);
        VhostUserPayloads.put(out, new io.jvhost.vhostuser.VringState(index, num));
        request(req, VRING_STATE_SIZE);
    }

    public void setVringNum(int index, int num) throws IOException { vringState(VhostUserRequest.SET_VRING_NUM, index, num); }
    public void setVringBase(int index, int base) throws IOException { vringState(VhostUserRequest.SET_VRING_BASE, index, base); }
    public void setVringEnable(int index, boolean on) throws IOException { vringState(VhostUserRequest.SET_VRING_ENABLE, index, on ? 1 : 0); }
    /** SET_VRING_ENABLE with a raw {@code num} (SPDK's virtio-user sends the ring size). */
    public void setVringEnable(int index, int num) throws IOException { vringState(VhostUserRequest.SET_VRING_ENABLE, index, num); }

    public void setVringAddr(int index, long descUva, long usedUva, long availUva) throws IOException {
        setVringAddr(new VringAddr(index, 0, descUva, usedUva, availUva, 0));
    }

    /** SET_VRING_ADDR with its flags (VHOST_VRING_F_LOG) and log address as given. */
    public void setVringAddr(VringAddr a) throws IOException {
        out.begin(VhostUserRequest.SET_VRING_ADDR, VERSION, VRING_ADDR_SIZE);
        VhostUserPayloads.put(out, a);
        request(VhostUserRequest.SET_VRING_ADDR, VRING_ADDR_SIZE);
    }

    /**
     * SET_LOG_BASE with {@code fd} (or none if -1). Without PROTOCOL_F_LOG_SHMFD no reply comes
     * unless REPLY_ACK asks for one; with it, the back-end's u64 reply is read and returned.
     */
    public long setLogBase(LogPayload l, int fd, boolean logShmfd) throws IOException {
        out.begin(VhostUserRequest.SET_LOG_BASE, VERSION, LOG_SIZE);
        VhostUserPayloads.put(out, l);
        if (!logShmfd) {
            if (fd >= 0) request(VhostUserRequest.SET_LOG_BASE, LOG_SIZE, fd);
            else request(VhostUserRequest.SET_LOG_BASE, LOG_SIZE);
            return 0;
        }
        if (fd >= 0) sendGet(fd);
        else sendGet();
        receiveReply(VhostUserRequest.SET_LOG_BASE);
        return in.u64(0);
    }

    /** GET_INFLIGHT_FD: the back-end's inflight description (its fd, if one came, is closed here). */
    public InflightPayload getInflightFd(int numQueues, int queueSize) throws IOException {
        out.begin(VhostUserRequest.GET_INFLIGHT_FD, VERSION, INFLIGHT_SIZE);
        VhostUserPayloads.put(out, new InflightPayload(0, 0, numQueues, queueSize, -1));
        sendGet();
        receiveReply(VhostUserRequest.GET_INFLIGHT_FD);
        if (in.size != INFLIGHT_SIZE) throw new IOException("GET_INFLIGHT_FD reply has " + in.size + " bytes, expected " + INFLIGHT_SIZE);
        try {
            return VhostUserPayloads.inflight(in);
        } catch (io.jvhost.vhostuser.VhostUserProtocolException e) {
            throw new IOException(e.getMessage(), e);
        }
    }

    /** fd -1 sends the "no fd" flag (polling). */
    public void setVringKick(int index, int fd) throws IOException { vringFile(VhostUserRequest.SET_VRING_KICK, index, fd); }
    public void setVringCall(int index, int fd) throws IOException { vringFile(VhostUserRequest.SET_VRING_CALL, index, fd); }
    public void setVringErr(int index, int fd) throws IOException { vringFile(VhostUserRequest.SET_VRING_ERR, index, fd); }

    private void vringFile(VhostUserRequest req, int index, int fd) throws IOException {
        if (fd < 0) {
            setU64(req, VhostUserPayloads.vringFileU64(index, true));
        } else {
            setU64(req, VhostUserPayloads.vringFileU64(index, false), fd);
        }
    }

    /** GET_VRING_BASE: stops the ring and returns its next available index. */
    public int getVringBase(int index) throws IOException {
        out.begin(VhostUserRequest.GET_VRING_BASE, VERSION, VRING_STATE_SIZE);
        out.putU32(0, index);
        sendGet();
        receiveReply(VhostUserRequest.GET_VRING_BASE);
        if (in.size != VRING_STATE_SIZE) throw new IOException("GET_VRING_BASE reply has " + in.size + " bytes, expected " + VRING_STATE_SIZE);
        return in.u32(4);
    }

    /** GET_CONFIG of {@code size} bytes from offset 0; returns the bytes. */
    public byte[] getConfig(int size) throws IOException {
        return getConfig(0, size);
    }

    /**
     * GET_CONFIG of {@code size} bytes at {@code offset}, sent with the full-length region as
     * QEMU and SPDK's virtio-user send it. Like them, we take only a reply of exactly
     * 12 + {@code size} bytes.
     */
    public byte[] getConfig(int offset, int size) throws IOException {
        out.begin(VhostUserRequest.GET_CONFIG, VERSION, CONFIG_HEADER + size);
        out.putU32(0, offset);
        out.putU32(4, size);
        sendGet();
        receiveReply(VhostUserRequest.GET_CONFIG);
        if (in.size != CONFIG_HEADER + size) throw new IOException("GET_CONFIG reply has " + in.size + " bytes, expected " + (CONFIG_HEADER + size));
        int got = in.u32(4);
        if (got != size) throw new IOException("GET_CONFIG reply's size field says " + got + ", expected " + size);
        byte[] b = new byte[got];
        MemorySegment.copy(in.payload(), java.lang.foreign.ValueLayout.JAVA_BYTE, CONFIG_HEADER, b, 0, got);
        return b;
    }

    public void setConfig(int offset, byte[] data) throws IOException {
        out.begin(VhostUserRequest.SET_CONFIG, VERSION, CONFIG_HEADER + data.length);
        out.putU32(0, offset);
        out.putU32(4, data.length);
        MemorySegment.copy(data, 0, out.payload(), java.lang.foreign.ValueLayout.JAVA_BYTE, CONFIG_HEADER, data.length);
        request(VhostUserRequest.SET_CONFIG, CONFIG_HEADER + data.length);
    }

    @Override
    public void close() {
        conn.close();
        in.close();
        out.close();
    }
}
