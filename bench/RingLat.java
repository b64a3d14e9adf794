import io.jvhost.sys.*;
import java.lang.foreign.*;
import java.util.*;

/**
 * io_uring round-trip latency of one 4 KiB O_DIRECT random read at a time through jvhost's own
 * sys.IoUring, without vhost-user in the way (BENCHMARKS.md "io_uring: where QD1 and 128 KiB lose"):
 *   java --enable-native-access=ALL-UNNAMED -cp target/jvhost.jar bench/RingLat.java FILE MODE WAIT CPU SECONDS
 * MODE: ipi (no task-run flags: the kernel IPIs the task per completion), coop (COOP_TASKRUN +
 * TASKRUN_FLAG, jvhost's default), defer (SINGLE_ISSUER + DEFER_TASKRUN). WAIT: spin (poll the CQ
 * in user space, entering the kernel only when the SQ flags say completions wait, as the reactor
 * does) or enter (io_uring_enter(GETEVENTS, min_complete=1): sleep in the kernel, as fio does).
 * CPU: pin to this CPU (-1: not pinned).
 */
public class RingLat {
    public static void main(String[] a) throws Exception {
        String file = a[0]; String mode = a[1]; String wait = a[2]; int cpu = Integer.parseInt(a[3]); double secs = Double.parseDouble(a[4]);
        if (cpu >= 0) Affinity.pinCurrentThread(cpu);
        int flags = switch (mode) { case "ipi" -> 0; case "defer" -> IoUring.IORING_SETUP_SINGLE_ISSUER | IoUring.IORING_SETUP_DEFER_TASKRUN | IoUring.IORING_SETUP_TASKRUN_FLAG;
            default -> IoUring.IORING_SETUP_COOP_TASKRUN | IoUring.IORING_SETUP_TASKRUN_FLAG; };
        int fd = Fd.open(file, Fd.O_RDONLY | Fd.O_DIRECT | Fd.O_CLOEXEC, 0);
        long size = Fd.size(fd);
        Arena arena = Arena.ofShared();
        MemorySegment buf = arena.allocate(4096, 4096);
        IoUring ring = IoUring.create(8, 16, flags);
        ring.registerFiles(fd);
        long[] lat = new long[2_000_000]; int n = 0;
        Random rnd = new Random(1);
        final int[] done = {0};
        IoUring.CompletionHandler h = (u, r) -> { if (r != 4096) throw new RuntimeException("res " + r); done[0]++; };
        long end = System.nanoTime() + (long) (secs * 1e9);
        long enters = 0;
        while (System.nanoTime() < end && n < lat.length) {
            long off = (rnd.nextLong(size / 4096)) * 4096;
            long t0 = System.nanoTime();
            ring.prepare(IoUring.OP_READ, IoUring.IOSQE_FIXED_FILE, 0, off, buf.address(), 4096, 0, 1);
            if (wait.equals("enter")) { ring.submitAndWait(1); }
            else ring.submit();
            while (ring.reap(h, 8) == 0) {
                if (ring.taskRunPending()) { ring.submitAndFlush(); enters++; }
                else Thread.onSpinWait();
            }
            lat[n++] = System.nanoTime() - t0;
        }
        Arrays.sort(lat, 0, n);
        System.out.printf("%s %s cpu%d: %d ios %.0f iops p50 %.1f us p90 %.1f us enters/io %.2f flags %x%n", mode, wait, cpu, n, n / secs,
                lat[n / 2] / 1e3, lat[n * 9 / 10] / 1e3, (double) enters / n, ring.setupFlags());
        ring.close();
    }
}
