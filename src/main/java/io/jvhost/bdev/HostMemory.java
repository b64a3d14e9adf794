package io.jvhost.bdev;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * How much RAM this host (or this process's memory cgroup) can still back, for admitting RAM
 * disks. A RAM disk is mapped lazily ({@link io.jvhost.sys.Mmap#anonymous}), so creating one
 * costs nothing at once, but every page the guest writes must come from somewhere: promising
 * more than is available ends with the kernel's OOM killer taking this process, or a guest.
 *
 * <p>A new RAM disk is admitted when {@code size + promised <= available - headroom}, where
 * {@code promised} is the total size of the RAM disks that exist already (counted in full,
 * whether or not they have been written: they may be at any time), {@code available} is
 * {@code MemAvailable} from {@code /proc/meminfo} (capped by the cgroup's limit minus its usage
 * when one is set) and {@code headroom} is 1/16 of the host's RAM, at least 256 MiB and at most
 * 4 GiB, left for the JVM, QEMU and the page cache. This is conservative on purpose: pages a
 * disk has already written are counted both as used and as promised.
 *
 * @param totalBytes     the host's RAM ({@code MemTotal})
 * @param availableBytes what can be allocated without swapping ({@code MemAvailable}, cgroup-capped)
 */
public record HostMemory(long totalBytes, long availableBytes) {
    private static final long MIB = 1L << 20;

    /** Reads {@code /proc/meminfo} (and the memory cgroup); null when that is not possible (not Linux). */
    public static HostMemory read() {
        long total = -1, avail = -1;
        try {
            for (String line : Files.readAllLines(Path.of("/proc/meminfo"))) {
                if (line.startsWith("MemTotal:")) total = kib(line);
                else if (line.startsWith("MemAvailable:")) avail = kib(line);
            }
        } catch (IOException | RuntimeException e) {
            return null;
        }
        if (total <= 0 || avail < 0) return null;
        long cgroup = cgroupAvailable();
        return new HostMemory(total, cgroup >= 0 ? Math.min(avail, cgroup) : avail);
    }

    public long headroomBytes() {
        return Math.min(4096 * MIB, Math.max(256 * MIB, totalBytes / 16));
    }

    /**
     * Null when {@code bytes} more can be promised on top of {@code promisedBytes}; otherwise
     * why not, in one sentence with the numbers.
     */
    public String refusal(long bytes, long promisedBytes) {
        long usable = availableBytes - headroomBytes() - promisedBytes;
        if (bytes <= usable) return null;
        return "a RAM disk of " + human(bytes) + " is more than this host can back: " + human(availableBytes) + " available"
                + (promisedBytes > 0 ? ", " + human(promisedBytes) + " promised to existing RAM disks" : "")
                + ", " + human(headroomBytes()) + " kept free; at most " + human(Math.max(0, usable)) + " can be created now";
    }

    static String human(long bytes) {
        String[] units = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
        double v = bytes;
        int u = 0;
        while (v >= 1024 && u < units.length - 1) {
            v /= 1024;
            u++;
        }
        return u == 0 ? bytes + " B" : String.format(java.util.Locale.ROOT, "%.1f %s", v, units[u]);
    }

    private static long kib(String line) {
        String[] f = line.trim().split("\\s+");
        return Long.parseLong(f[1]) * 1024;
    }

    /** limit - usage + reclaimable page cache of this process's memory cgroup (v2, then v1); -1 when unlimited or unknown. */
    private static long cgroupAvailable() {
        try {
            List<String> cg = Files.readAllLines(Path.of("/proc/self/cgroup"));
            for (String line : cg) {
                String[] f = line.split(":", 3);
                if (f.length < 3) continue;
                if (f[0].equals("0") && f[1].isEmpty()) {
                    Path d = Path.of("/sys/fs/cgroup" + f[2]);
                    long v = cgroupFigure(d.resolve("memory.max"), d.resolve("memory.current"), d.resolve("memory.stat"), "inactive_file");
                    if (v >= 0) return v;
                } else if (List.of(f[1].split(",")).contains("memory")) {
                    Path d = Path.of("/sys/fs/cgroup/memory" + f[2]);
                    if (!Files.isDirectory(d)) d = Path.of("/sys/fs/cgroup/memory");
                    long v = cgroupFigure(d.resolve("memory.limit_in_bytes"), d.resolve("memory.usage_in_bytes"), d.resolve("memory.stat"), "total_inactive_file");
                    if (v >= 0) return v;
                }
            }
        } catch (IOException | RuntimeException e) {
            // no cgroup information: the host figure stands
        }
        return -1;
    }

    private static long cgroupFigure(Path limitFile, Path usageFile, Path statFile, String reclaimableKey) throws IOException {
        if (!Files.isReadable(limitFile) || !Files.isReadable(usageFile)) return -1;
        String limitText = Files.readString(limitFile).trim();
        if (limitText.equals("max")) return -1;
        long limit = Long.parseLong(limitText);
        if (limit >= (1L << 60)) return -1; // v1 "unlimited" is a huge page-rounded number
        long usage = Long.parseLong(Files.readString(usageFile).trim());
        long reclaimable = 0;
        if (Files.isReadable(statFile)) {
            for (String l : Files.readAllLines(statFile)) {
                if (l.startsWith(reclaimableKey + " ")) reclaimable = Long.parseLong(l.substring(reclaimableKey.length() + 1).trim());
            }
        }
        return Math.max(0, limit - usage + reclaimable);
    }
}
