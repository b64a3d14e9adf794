package io.jvhost.bdev;

import io.jvhost.sys.Native;
import io.jvhost.sys.Rbd;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicIntegerArray;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReferenceArray;

/**
 * A Ceph RBD image through librbd (SPDK: rbd bdev). One {@code rbd_image_t} per bdev, shared by
 * the channels of all reactors (librbd's aio calls are thread-safe; one image per channel would
 * bounce the exclusive lock between them).
 *
 * <p><b>Data path.</b> A channel submits {@code rbd_aio_readv/writev} with the request's
 * scatter-gather list as iovecs pointing straight at guest memory (no copy on jvhost's side),
 * {@code rbd_aio_flush}, {@code rbd_aio_discard}, {@code rbd_aio_write_zeroes}. librbd calls a
 * completion callback on one of its own threads ({@code io_context_pool}); the callback only
 * reads the result, releases the completion and hands the request to the owning reactor through
 * the channel's lock-free queue and eventfd ({@link AsyncBlockChannel}). Per channel a fixed
 * table of slots (request, iovec array, eventfd scratch) is allocated up front: nothing is
 * allocated per request on the Java side (librbd allocates its own completion object).
 * Callbacks rather than {@code rbd_set_image_notification} + {@code rbd_poll_io_events}
 * (both are bound in {@link Rbd}): one image serves the channels of several reactors, and an
 * image has one notification eventfd, so the eventfd route would need one reactor to reap every
 * channel's completions and pass them on, the hop the callback already makes. Measured on one
 * thread (RbdCompletionModeBench, BENCHMARKS.md "Ceph RBD"), the two are within noise of each
 * other (median ratios 0.90-1.01 at QD1 and QD16): a round trip to the OSD dwarfs the upcall.
 *
 * <p><b>Outages.</b> While the cluster is unreachable requests wait inside librbd (Ceph's
 * {@code rados_osd_op_timeout} is 0 by default) and complete when it is back; a watchdog logs
 * once when requests have waited more than {@link #STALL_WARN_SECONDS}, and again when they
 * move. Failed requests (a configured op timeout, a missing image) complete with their
 * {@code -errno} and a rate-limited log line. Closing the image ({@code rbd_close} flushes and
 * releases the exclusive lock, which needs the OSDs) runs on the cluster's control thread with
 * a bounded wait, so deleting a bdev during an outage does not hang the caller.
 */
public final class RbdBlockDevice extends AbstractBlockDevice {
    private static final Logger log = LoggerFactory.getLogger(RbdBlockDevice.class);

    /** Requests in flight per channel (the slot table size). */
    static final int MAX_IN_FLIGHT = 256;
    /** iovecs per slot before a slot's array grows (once). */
    static final int INITIAL_IOVS = 32;
    public static final long STALL_WARN_SECONDS = Long.getLong("jvhost.rbd.stallWarnSeconds", 5);

    private final RbdCluster cluster;
    private final boolean privateCluster;
    private final String poolName;
    private final String rbdName;
    private final String userId;
    private final Map<String, String> config;
    private final long ioctx;
    private final long image;
    private final long objectSize;
    private final CopyOnWriteArrayList<Channel> channels = new CopyOnWriteArrayList<>();
    private final AtomicLong lastErrorLog = new AtomicLong(System.nanoTime() - TimeUnit.SECONDS.toNanos(60));
    private final AtomicLong suppressedErrors = new AtomicLong();
    private volatile boolean stalled;
    private volatile boolean closed;

    private RbdBlockDevice(String name, int blockSize, UUID uuid, RbdCluster cluster, boolean privateCluster, String poolName, String rbdName,
                           String userId, Map<String, String> config, long[] opened) {
        super(name, opened[2] / blockSize, blockSize, uuid);
        this.cluster = cluster;
        this.privateCluster = privateCluster;
        this.poolName = poolName;
        this.rbdName = rbdName;
        this.userId = userId;
        this.config = config;
        this.ioctx = opened[0];
        this.image = opened[1];
        this.objectSize = opened[3];
    }

    /**
     * Opens {@code pool/image} on a shared cluster connection ({@code cluster} non-null, SPDK's
     * {@code cluster_name}) or on a private one made from {@code userId} and {@code config}
     * (SPDK: the config map replaces the config file when given).
     */
    public static RbdBlockDevice open(String name, String poolName, String rbdName, int blockSize, UUID uuid,
                                      RbdCluster cluster, String userId, Map<String, String> config) {
        if (blockSize < 512 || Integer.bitCount(blockSize) != 1 || blockSize > 65536) {
            throw new IllegalArgumentException("block_size must be a power of two in 512..65536, got " + blockSize);
        }
        boolean priv = cluster == null;
        RbdCluster c = priv ? RbdCluster.connect(null, userId, config, null, null) : cluster;
        c.retain();
        try {
            String what = "open RBD image " + poolName + "/" + rbdName;
            long[] opened = c.call(what, () -> openImage(c.handle(), poolName, rbdName), RbdBlockDevice::closeImage);
            if (opened[2] < blockSize) {
                closeImage(opened);
                throw new IllegalArgumentException("RBD image " + poolName + "/" + rbdName + " is " + opened[2] + " bytes, smaller than one " + blockSize + "-byte block");
            }
            RbdBlockDevice d = new RbdBlockDevice(name, blockSize, uuid, c, priv, poolName, rbdName, userId, config, opened);
            Watchdog.add(d);
            log.info("bdev {}: RBD image {}/{} ({} bytes, {} KiB objects) on {}", name, poolName, rbdName, opened[2], opened[3] >> 10,
                    priv ? "a private cluster connection" : "cluster " + c.name());
            return d;
        } catch (RuntimeException e) {
            c.release();
            if (priv) shutdownQuietly(c);
            throw e;
        }
    }

    /** {ioctx, image, size, object size}; runs on the control thread. */
    private static long[] openImage(long cluster, String pool, String image) {
        long io = Rbd.ioctxCreate(cluster, pool);
        try {
            long img = Rbd.open(io, image);
            try {
                long[] st = Rbd.stat(img);
                return new long[] {io, img, st[0], st[1]};
            } catch (RuntimeException e) {
                Rbd.close(img);
                throw e;
            }
        } catch (RuntimeException e) {
            Rbd.ioctxDestroy(io);
            throw e;
        }
    }

    private static void closeImage(long[] opened) {
        Rbd.close(opened[1]);
        Rbd.ioctxDestroy(opened[0]);
    }

    private static void shutdownQuietly(RbdCluster c) {
        try {
            c.shutdown();
        } catch (RuntimeException e) {
            log.warn("closing a private Ceph connection: {}", e.getMessage());
        }
    }

    public RbdCluster cluster() { return cluster; }
    /** True when the bdev made its own connection (no {@code cluster_name}). */
    public boolean privateCluster() { return privateCluster; }
    public String poolName() { return poolName; }
    public String rbdName() { return rbdName; }
    /** {@code user_id} given at creation (private connection only), or null. */
    public String userId() { return userId; }
    /** {@code config} given at creation (private connection only), or null. */
    public Map<String, String> config() { return config; }

    @Override public String productName() { return "Ceph Rbd Disk"; }
    @Override public boolean readOnly() { return false; }
    @Override public boolean supportsUnmap() { return true; }
    @Override public boolean supportsWriteZeroes() { return true; }
    /** librbd's cache ({@code rbd_cache}, on by default) holds writes until a flush. */
    @Override public boolean volatileWriteCache() { return true; }

    /** The image's size now (bytes), asked of librbd on the control thread. */
    public long imageSize() {
        return cluster.call("size of RBD image " + poolName + "/" + rbdName, () -> Rbd.getSize(image), null);
    }

    /** Grows (or shrinks) the image itself; the caller then adopts the new size (control path). */
    public void resizeImage(long bytes) {
        cluster.call("resize RBD image " + poolName + "/" + rbdName, () -> {
            Rbd.resize(image, bytes);
            return null;
        }, null);
    }

    @Override
    public BlockChannel openChannel() {
        if (closed) throw new IllegalStateException("bdev " + name() + " is closed");
        Channel ch = new Channel(sizeBytes());
        channels.add(ch);
        return ioStats.wrap(ch);
    }

    /**
     * Closes the image with a bounded wait: if {@code rbd_close} does not return within
     * {@link RbdCluster#CONTROL_WAIT_SECONDS} (cluster unreachable), the close goes on in the
     * background, the connection stays referenced until it ends, and this returns.
     */
    @Override
    public void close() {
        if (closed) return;
        closed = true;
        Watchdog.remove(this);
        try {
            cluster.call("close RBD image " + poolName + "/" + rbdName + " (bdev " + name() + ")", () -> {
                int rc = Rbd.close(image);
                Rbd.ioctxDestroy(ioctx);
                if (rc < 0) log.warn("bdev {}: rbd_close: {}", name(), Native.strerror(-rc));
                return null;
            }, null);
        } catch (RuntimeException e) {
            log.warn("bdev {}: {}", name(), e.getMessage());
            if (privateCluster) {
                cluster.release();
                return; // the private connection stays until the close ends (the process keeps it)
            }
        }
        cluster.release();
        if (privateCluster) shutdownQuietly(cluster);
    }

    // ---------------------------------------------------------------- completions

    /**
     * Channels by id, for the process-wide completion callback: the callback's {@code arg} is
     * {@code id << 16 | slot}. An id is reused only after its channel was closed and every
     * request it sent has called back.
     */
    private static final AtomicReferenceArray<Channel> CHANNELS = new AtomicReferenceArray<>(1 << 15);
    private static final AtomicInteger NEXT_ID = new AtomicInteger();

    private static int allocateId(Channel ch) {
        for (int k = 0; k < CHANNELS.length(); k++) {
            int id = Math.floorMod(NEXT_ID.getAndIncrement(), CHANNELS.length());
            if (CHANNELS.compareAndSet(id, null, ch)) return id;
        }
        throw new IllegalStateException("too many RBD channels");
    }

    private static final class Callback {
        static final long ADDRESS = Rbd.completionCallback(RbdBlockDevice::completed);
    }

    /** On a librbd thread: never blocks, never throws, allocates nothing on success. */
    private static void completed(long completion, long arg) {
        long rv = Rbd.aioGetReturnValue(completion);
        Rbd.aioRelease(completion);
        Channel ch = CHANNELS.get((int) (arg >>> 16));
        if (ch == null) return; // cannot happen: ids outlive their requests
        ch.finish((int) (arg & 0xffff), rv < 0 ? (int) rv : 0);
    }

    /** One reactor's channel: a slot per request in flight. */
    final class Channel extends AsyncBlockChannel {
        private final int id;
        private final Arena arena = Arena.ofShared();
        private final AtomicReferenceArray<BlockRequest> reqs = new AtomicReferenceArray<>(MAX_IN_FLIGHT);
        /** 1 while a slot's request is inside librbd (set by the owner, cleared by the callback). */
        private final AtomicIntegerArray busy = new AtomicIntegerArray(MAX_IN_FLIGHT);
        /** Submit time per slot, read by the watchdog (racy reads are fine: it only warns). */
        final long[] started = new long[MAX_IN_FLIGHT];
        private final MemorySegment[] iovs = new MemorySegment[MAX_IN_FLIGHT];
        private final int[] iovCapacity = new int[MAX_IN_FLIGHT];
        private final MemorySegment[] scratch = new MemorySegment[MAX_IN_FLIGHT];
        private final MemorySegment completionOut;
        private final AtomicInteger busyCount = new AtomicInteger();
        private final AtomicBoolean released = new AtomicBoolean();
        private volatile boolean channelClosed;
        private int cursor;

        Channel(long sizeBytes) {
            super(sizeBytes, MAX_IN_FLIGHT);
            this.id = allocateId(this);
            MemorySegment scratchAll = arena.allocate(8L * MAX_IN_FLIGHT, 8);
            MemorySegment iovAll = arena.allocate(Rbd.IOVEC_SIZE * INITIAL_IOVS * MAX_IN_FLIGHT, 8);
            for (int i = 0; i < MAX_IN_FLIGHT; i++) {
                scratch[i] = scratchAll.asSlice(8L * i, 8);
                iovs[i] = iovAll.asSlice(Rbd.IOVEC_SIZE * INITIAL_IOVS * i, Rbd.IOVEC_SIZE * INITIAL_IOVS);
                iovCapacity[i] = INITIAL_IOVS;
            }
            completionOut = arena.allocate(8, 8);
        }

        @Override
        protected boolean start(BlockRequest r) {
            int slot = freeSlot();
            if (slot < 0) return false;
            reqs.set(slot, r);
            started[slot] = System.nanoTime();
            busyCount.incrementAndGet();
            busy.set(slot, 1);
            int rc = Rbd.aioCreateCompletion(((long) id << 16) | slot, Callback.ADDRESS, completionOut);
            if (rc < 0) {
                abandon(slot);
                return false;
            }
            long c = completionOut.get(ValueLayout.JAVA_LONG, 0);
            rc = switch (r.op) {
                case READ, WRITE -> vectored(r, slot, c);
                case FLUSH -> Rbd.aioFlush(image, c);
                case UNMAP -> Rbd.aioDiscard(image, r.offset, r.length, c);
                case WRITE_ZEROES -> Rbd.aioWriteZeroes(image, r.offset, r.length, c);
            };
            if (rc < 0) {
                // Not accepted by librbd: no callback will come. Complete it with the error
                // through the queue (never inside submit).
                Rbd.aioRelease(c);
                reqs.set(slot, null);
                busy.set(slot, 0);
                busyCount.decrementAndGet();
                failed(r, rc);
                AsyncBlockChannel.deliver(r, rc, scratch[slot]);
            }
            return true;
        }

        private void abandon(int slot) {
            reqs.set(slot, null);
            busy.set(slot, 0);
            busyCount.decrementAndGet();
        }

        private int vectored(BlockRequest r, int slot, long c) {
            int n = r.bufferCount();
            if (n > iovCapacity[slot]) growIovs(slot, n);
            MemorySegment iov = iovs[slot];
            for (int k = 0; k < n; k++) {
                Rbd.setIovec(iov, k, r.bufferSegment(k).address() + r.bufferOffset(k), r.bufferLength(k));
            }
            return r.op == BlockRequest.Op.READ
                    ? Rbd.aioReadv(image, iov.address(), n, r.offset, c)
                    : Rbd.aioWritev(image, iov.address(), n, r.offset, c);
        }

        /** Once per slot and size (a request with more buffers than seen before). */
        private void growIovs(int slot, int n) {
            int cap = Math.max(n, iovCapacity[slot] * 2);
            iovs[slot] = arena.allocate(Rbd.IOVEC_SIZE * cap, 8);
            iovCapacity[slot] = cap;
        }

        /** A free slot (the owner's only): busy slots never exceed the requests in flight, and start is called below the limit. */
        private int freeSlot() {
            for (int k = 0; k < MAX_IN_FLIGHT; k++) {
                int s = cursor;
                cursor = (cursor + 1) & (MAX_IN_FLIGHT - 1);
                if (busy.get(s) == 0) return s;
            }
            return -1; // callbacks that delivered but have not yet freed their slot: retry later
        }

        /** On a librbd thread. */
        void finish(int slot, int status) {
            BlockRequest r = reqs.getAndSet(slot, null);
            if (r == null) return;
            if (status < 0) failed(r, status);
            AsyncBlockChannel.deliver(r, status, scratch[slot]);
            busy.set(slot, 0);
            if (busyCount.decrementAndGet() == 0 && channelClosed) releaseId();
        }

        /** The oldest request still inside librbd (its submit time), or 0. */
        long oldestStart() {
            long oldest = 0;
            for (int s = 0; s < MAX_IN_FLIGHT; s++) {
                if (busy.get(s) != 0) {
                    long t = started[s];
                    if (oldest == 0 || t - oldest < 0) oldest = t;
                }
            }
            return oldest;
        }

        int busy() {
            return busyCount.get();
        }

        @Override
        public void close() {
            super.close();
            channelClosed = true;
            channels.remove(this);
            if (busyCount.get() == 0) releaseId();
            else log.warn("bdev {}: channel closed with {} request(s) still inside librbd; their completions will be dropped", name(), busyCount.get());
        }

        private void releaseId() {
            if (!released.compareAndSet(false, true)) return;
            CHANNELS.set(id, null);
            arena.close();
        }
    }

    /** Cold: a failed request, logged at most once per 5 s per bdev (with the count of the others). */
    private void failed(BlockRequest r, int status) {
        long now = System.nanoTime();
        long last = lastErrorLog.get();
        if (now - last < TimeUnit.SECONDS.toNanos(5) || !lastErrorLog.compareAndSet(last, now)) {
            suppressedErrors.incrementAndGet();
            return;
        }
        long more = suppressedErrors.getAndSet(0);
        log.warn("bdev {} (RBD {}/{}): {} of {} bytes at offset {} failed: {} ({}){}", name(), poolName, rbdName, r.op, r.length, r.offset,
                Native.strerror(-status), status, more > 0 ? "; " + more + " other request(s) failed since the last message" : "");
    }

    /** Checks every second for requests stuck inside librbd and says so, once per stall. */
    private static final class Watchdog {
        private static final CopyOnWriteArrayList<RbdBlockDevice> DEVICES = new CopyOnWriteArrayList<>();
        private static ScheduledExecutorService timer;

        static synchronized void add(RbdBlockDevice d) {
            DEVICES.add(d);
            if (timer == null) {
                timer = Executors.newSingleThreadScheduledExecutor(r -> {
                    Thread t = new Thread(r, "rbd-watchdog");
                    t.setDaemon(true);
                    return t;
                });
                timer.scheduleWithFixedDelay(Watchdog::check, 1, 1, TimeUnit.SECONDS);
            }
        }

        static synchronized void remove(RbdBlockDevice d) {
            DEVICES.remove(d);
        }

        private static void check() {
            long now = System.nanoTime();
            for (RbdBlockDevice d : DEVICES) {
                long oldest = 0;
                int waiting = 0;
                for (Channel ch : d.channels) {
                    long o = ch.oldestStart();
                    if (o != 0 && (oldest == 0 || o - oldest < 0)) oldest = o;
                    waiting += ch.busy();
                }
                boolean stuck = oldest != 0 && now - oldest > TimeUnit.SECONDS.toNanos(STALL_WARN_SECONDS);
                if (stuck && !d.stalled) {
                    d.stalled = true;
                    log.warn("bdev {} (RBD {}/{}): {} request(s) waiting in librbd, the oldest for {} s: Ceph cluster unreachable? "
                                    + "I/O stalls until it is back (rados_osd_op_timeout {})", d.name(), d.poolName, d.rbdName, waiting,
                            TimeUnit.NANOSECONDS.toSeconds(now - oldest), "0 = wait forever unless set in config_param");
                } else if (!stuck && d.stalled) {
                    d.stalled = false;
                    log.info("bdev {} (RBD {}/{}): requests are completing again ({} in flight)", d.name(), d.poolName, d.rbdName, waiting);
                }
            }
        }
    }

    /** For tests: whether the watchdog currently considers this bdev stalled. */
    public boolean stalled() {
        return stalled;
    }
}
