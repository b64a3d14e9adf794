package io.jvhost.sys;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * Downcalls into Ceph's C client libraries, {@code librados.so.2} and {@code librbd.so.1}
 * (Debian: librados2, librbd1), the way {@link Native} does libc: {@code static final} handles
 * called with {@code invokeExact}. The libraries are looked up when this class is first used,
 * so jvhost runs without them; {@link #available()} says whether they are there.
 *
 * <p>Handles ({@code rados_t}, {@code rados_ioctx_t}, {@code rbd_image_t},
 * {@code rbd_completion_t}) are opaque C pointers and are passed as {@code long}s (the same
 * register as a pointer on x86_64 and aarch64), so the data path builds no
 * {@code MemorySegment} per call. Every call returns 0 or {@code -errno} (librados/librbd
 * convention); the control-path wrappers turn failures into {@link NativeException}.
 *
 * <p>Completions: {@link #aioCreateCompletion} takes either an upcall stub (the callback runs
 * on librbd's own threads, see {@link #completionCallback}) or 0 with
 * {@link #setImageNotification}/{@link #pollIoEvents} (librbd writes an eventfd; no upcall).
 */
public final class Rbd {
    private Rbd() {}

    /** {@code EVENT_TYPE_EVENTFD} of librbd.h's {@code rbd_image_notification}. */
    public static final int EVENT_TYPE_EVENTFD = 2;
    /** {@code sizeof(rbd_image_info_t)}: size, obj_size, num_objs (u64), order (int), block_name_prefix[24], parent_pool (i64), parent_name[96]. */
    public static final long IMAGE_INFO_SIZE = 160;
    public static final long INFO_SIZE = 0, INFO_OBJ_SIZE = 8, INFO_NUM_OBJS = 16, INFO_ORDER = 24;

    private static final Linker LINKER = Linker.nativeLinker();
    private static final Throwable LOAD_FAILURE;
    private static final SymbolLookup LIBS;

    static {
        SymbolLookup libs = null;
        Throwable failure = null;
        try {
            libs = SymbolLookup.libraryLookup("librados.so.2", Arena.global())
                    .or(SymbolLookup.libraryLookup("librbd.so.1", Arena.global()));
        } catch (Throwable t) {
            failure = t;
        }
        LIBS = libs;
        LOAD_FAILURE = failure;
    }

    /** True when librados.so.2 and librbd.so.1 could be loaded. */
    public static boolean available() {
        return LOAD_FAILURE == null;
    }

    /** Why the libraries could not be loaded (null when they could). */
    public static String unavailableReason() {
        return LOAD_FAILURE == null ? null
                : "librbd.so.1/librados.so.2 not found (" + LOAD_FAILURE.getMessage() + "); install Debian's librbd1";
    }

    private static MethodHandle h(String name, FunctionDescriptor fd) {
        if (LIBS == null) return null;
        return LIBS.find(name).map(s -> LINKER.downcallHandle(s, fd)).orElse(null);
    }

    private static final FunctionDescriptor I_L = FunctionDescriptor.of(JAVA_INT, JAVA_LONG);

    // librados (control path)
    private static final MethodHandle RADOS_CREATE2 = h("rados_create2", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS, JAVA_LONG));
    private static final MethodHandle RADOS_CONF_READ_FILE = h("rados_conf_read_file", FunctionDescriptor.of(JAVA_INT, JAVA_LONG, ADDRESS));
    private static final MethodHandle RADOS_CONF_SET = h("rados_conf_set", FunctionDescriptor.of(JAVA_INT, JAVA_LONG, ADDRESS, ADDRESS));
    private static final MethodHandle RADOS_CONF_GET = h("rados_conf_get", FunctionDescriptor.of(JAVA_INT, JAVA_LONG, ADDRESS, ADDRESS, JAVA_LONG));
    private static final MethodHandle RADOS_CONNECT = h("rados_connect", I_L);
    private static final MethodHandle RADOS_SHUTDOWN = h("rados_shutdown", FunctionDescriptor.ofVoid(JAVA_LONG));
    private static final MethodHandle RADOS_IOCTX_CREATE = h("rados_ioctx_create", FunctionDescriptor.of(JAVA_INT, JAVA_LONG, ADDRESS, ADDRESS));
    private static final MethodHandle RADOS_IOCTX_DESTROY = h("rados_ioctx_destroy", FunctionDescriptor.ofVoid(JAVA_LONG));
    // librbd (control path)
    private static final MethodHandle RBD_OPEN = h("rbd_open", FunctionDescriptor.of(JAVA_INT, JAVA_LONG, ADDRESS, ADDRESS, JAVA_LONG));
    private static final MethodHandle RBD_CLOSE = h("rbd_close", I_L);
    private static final MethodHandle RBD_GET_SIZE = h("rbd_get_size", FunctionDescriptor.of(JAVA_INT, JAVA_LONG, ADDRESS));
    private static final MethodHandle RBD_STAT = h("rbd_stat", FunctionDescriptor.of(JAVA_INT, JAVA_LONG, ADDRESS, JAVA_LONG));
    private static final MethodHandle RBD_RESIZE = h("rbd_resize", FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_LONG));
    private static final MethodHandle RBD_SET_IMAGE_NOTIFICATION = h("rbd_set_image_notification", FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_INT, JAVA_INT));
    // librbd (data path: longs only, no errno capture, no allocation)
    private static final MethodHandle RBD_AIO_CREATE_COMPLETION = h("rbd_aio_create_completion", FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_LONG, JAVA_LONG));
    private static final MethodHandle RBD_AIO_READV = h("rbd_aio_readv", FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_LONG, JAVA_INT, JAVA_LONG, JAVA_LONG));
    private static final MethodHandle RBD_AIO_WRITEV = h("rbd_aio_writev", FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_LONG, JAVA_INT, JAVA_LONG, JAVA_LONG));
    private static final MethodHandle RBD_AIO_FLUSH = h("rbd_aio_flush", FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_LONG));
    private static final MethodHandle RBD_AIO_DISCARD = h("rbd_aio_discard", FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG));
    private static final MethodHandle RBD_AIO_WRITE_ZEROES = h("rbd_aio_write_zeroes", FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_INT, JAVA_INT));
    private static final MethodHandle RBD_AIO_GET_RETURN_VALUE = h("rbd_aio_get_return_value", FunctionDescriptor.of(JAVA_LONG, JAVA_LONG));
    private static final MethodHandle RBD_AIO_GET_ARG = h("rbd_aio_get_arg", FunctionDescriptor.of(JAVA_LONG, JAVA_LONG));
    private static final MethodHandle RBD_AIO_RELEASE = h("rbd_aio_release", FunctionDescriptor.ofVoid(JAVA_LONG));
    private static final MethodHandle RBD_POLL_IO_EVENTS = h("rbd_poll_io_events", FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_LONG, JAVA_INT));

    private static void check() {
        if (LOAD_FAILURE != null) throw new NativeException(unavailableReason(), Errno.ENOENT);
    }

    private static NativeException fail(String what, int rc) {
        return new NativeException(what, -rc);
    }

    // ---------------------------------------------------------------- control path (any thread)

    /** {@code rados_create2(&cluster, "ceph", name, 0)}: {@code name} like "client.admin". */
    public static long radosCreate(String name) {
        check();
        try (Arena a = Arena.ofConfined()) {
            MemorySegment out = a.allocate(JAVA_LONG);
            int rc = (int) RADOS_CREATE2.invokeExact(out, a.allocateFrom("ceph"), a.allocateFrom(name), 0L);
            if (rc < 0) throw fail("rados_create2(" + name + ")", rc);
            return out.get(JAVA_LONG, 0);
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    /** Reads a ceph.conf; {@code path} null means the default search ($CEPH_CONF, /etc/ceph/ceph.conf, ...). Returns 0 or -errno. */
    public static int confReadFile(long cluster, String path) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment p = path == null ? MemorySegment.NULL : a.allocateFrom(path);
            return (int) RADOS_CONF_READ_FILE.invokeExact(cluster, p);
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    public static void confSet(long cluster, String key, String value) {
        try (Arena a = Arena.ofConfined()) {
            int rc = (int) RADOS_CONF_SET.invokeExact(cluster, a.allocateFrom(key), a.allocateFrom(value));
            if (rc < 0) throw fail("rados_conf_set(" + key + " = " + value + ")", rc);
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    /** The current value of a config option, or null when there is no such option. */
    public static String confGet(long cluster, String key) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment buf = a.allocate(4096);
            int rc = (int) RADOS_CONF_GET.invokeExact(cluster, a.allocateFrom(key), buf, 4096L);
            return rc < 0 ? null : buf.getString(0);
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    /** Connects to the monitors (blocks up to client_mount_timeout). Returns 0 or -errno. */
    public static int connect(long cluster) {
        try {
            return (int) RADOS_CONNECT.invokeExact(cluster);
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    public static void shutdown(long cluster) {
        try {
            RADOS_SHUTDOWN.invokeExact(cluster);
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    public static long ioctxCreate(long cluster, String pool) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment out = a.allocate(JAVA_LONG);
            int rc = (int) RADOS_IOCTX_CREATE.invokeExact(cluster, a.allocateFrom(pool), out);
            if (rc < 0) throw fail("rados_ioctx_create(pool " + pool + ")", rc);
            return out.get(JAVA_LONG, 0);
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    public static void ioctxDestroy(long ioctx) {
        try {
            RADOS_IOCTX_DESTROY.invokeExact(ioctx);
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    /** Opens image {@code name} read-write (no snapshot). */
    public static long open(long ioctx, String name) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment out = a.allocate(JAVA_LONG);
            int rc = (int) RBD_OPEN.invokeExact(ioctx, a.allocateFrom(name), out, 0L);
            if (rc < 0) throw fail("rbd_open(" + name + ")", rc);
            return out.get(JAVA_LONG, 0);
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    /** Closes an image (flushes its cache and releases the exclusive lock: may block while the cluster is away). Returns 0 or -errno. */
    public static int close(long image) {
        try {
            return (int) RBD_CLOSE.invokeExact(image);
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    public static long getSize(long image) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment out = a.allocate(JAVA_LONG);
            int rc = (int) RBD_GET_SIZE.invokeExact(image, out);
            if (rc < 0) throw fail("rbd_get_size", rc);
            return out.get(JAVA_LONG, 0);
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    /** {@code rbd_stat}: {size, obj_size, num_objs, order}. */
    public static long[] stat(long image) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment info = a.allocate(IMAGE_INFO_SIZE, 8);
            int rc = (int) RBD_STAT.invokeExact(image, info, IMAGE_INFO_SIZE);
            if (rc < 0) throw fail("rbd_stat", rc);
            return new long[] {info.get(JAVA_LONG, INFO_SIZE), info.get(JAVA_LONG, INFO_OBJ_SIZE),
                    info.get(JAVA_LONG, INFO_NUM_OBJS), info.get(JAVA_INT, INFO_ORDER)};
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    public static void resize(long image, long bytes) {
        try {
            int rc = (int) RBD_RESIZE.invokeExact(image, bytes);
            if (rc < 0) throw fail("rbd_resize(" + bytes + ")", rc);
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    /** librbd writes {@code eventFd} whenever a completion created without a callback finishes. */
    public static void setImageNotification(long image, int eventFd) {
        try {
            int rc = (int) RBD_SET_IMAGE_NOTIFICATION.invokeExact(image, eventFd, EVENT_TYPE_EVENTFD);
            if (rc < 0) throw fail("rbd_set_image_notification", rc);
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    // ---------------------------------------------------------------- data path (no allocation)

    /**
     * Creates a completion carrying {@code arg}; {@code callback} is an upcall stub's address
     * ({@link #completionCallback}) or 0 (then it is reported by {@link #pollIoEvents}). The
     * handle is written to {@code out} (8 bytes). Returns 0 or -errno.
     */
    public static int aioCreateCompletion(long arg, long callback, MemorySegment out) {
        try {
            return (int) RBD_AIO_CREATE_COMPLETION.invokeExact(arg, callback, out.address());
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    /** {@code iov}: address of {@code iovcnt} struct iovec (16 bytes each: base, len). */
    public static int aioReadv(long image, long iov, int iovcnt, long offset, long completion) {
        try {
            return (int) RBD_AIO_READV.invokeExact(image, iov, iovcnt, offset, completion);
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    public static int aioWritev(long image, long iov, int iovcnt, long offset, long completion) {
        try {
            return (int) RBD_AIO_WRITEV.invokeExact(image, iov, iovcnt, offset, completion);
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    public static int aioFlush(long image, long completion) {
        try {
            return (int) RBD_AIO_FLUSH.invokeExact(image, completion);
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    public static int aioDiscard(long image, long offset, long length, long completion) {
        try {
            return (int) RBD_AIO_DISCARD.invokeExact(image, offset, length, completion);
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    public static int aioWriteZeroes(long image, long offset, long length, long completion) {
        try {
            return (int) RBD_AIO_WRITE_ZEROES.invokeExact(image, offset, length, completion, 0, 0);
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    /** Bytes for a read, 0 for other operations, or -errno. */
    public static long aioGetReturnValue(long completion) {
        try {
            return (long) RBD_AIO_GET_RETURN_VALUE.invokeExact(completion);
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    public static long aioGetArg(long completion) {
        try {
            return (long) RBD_AIO_GET_ARG.invokeExact(completion);
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    public static void aioRelease(long completion) {
        try {
            RBD_AIO_RELEASE.invokeExact(completion);
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    /** Writes up to {@code max} finished completions' handles to {@code comps} (an address); returns how many or -errno. */
    public static int pollIoEvents(long image, long comps, int max) {
        try {
            return (int) RBD_POLL_IO_EVENTS.invokeExact(image, comps, max);
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    // ---------------------------------------------------------------- callbacks

    /** Receives a completion on one of librbd's threads (never a reactor). Must be quick, must not block or throw. */
    @FunctionalInterface
    public interface CompletionHandler {
        void completed(long completion, long arg);
    }

    private static volatile CompletionHandler handler;
    private static MemorySegment stub;

    /**
     * The address of an upcall stub for {@code rbd_callback_t} that passes every completion to
     * {@code h}. One process-wide stub (the handler finds its context from {@code arg}); set once.
     */
    public static synchronized long completionCallback(CompletionHandler h) {
        check();
        if (stub == null) {
            handler = h;
            try {
                MethodHandle target = MethodHandles.lookup().findStatic(Rbd.class, "upcall", MethodType.methodType(void.class, long.class, long.class));
                stub = LINKER.upcallStub(target, FunctionDescriptor.ofVoid(JAVA_LONG, JAVA_LONG), Arena.global());
            } catch (ReflectiveOperationException e) {
                throw new IllegalStateException(e);
            }
        } else if (handler != h) {
            throw new IllegalStateException("the librbd completion handler is already set");
        }
        return stub.address();
    }

    @SuppressWarnings("unused") // called from native code
    private static void upcall(long completion, long arg) {
        try {
            handler.completed(completion, arg);
        } catch (Throwable t) {
            // An exception escaping an upcall kills the JVM: never let one through.
            try {
                System.err.println("jvhost: librbd completion handler failed: " + t);
            } catch (Throwable ignored) {
                // nothing left to do
            }
        }
    }

    /** {@code struct iovec} layout: {@code void *iov_base; size_t iov_len;}. */
    public static final long IOVEC_SIZE = 16;

    public static void setIovec(MemorySegment iovs, int i, long base, long len) {
        iovs.set(ValueLayout.JAVA_LONG, IOVEC_SIZE * i, base);
        iovs.set(ValueLayout.JAVA_LONG, IOVEC_SIZE * i + 8, len);
    }
}
