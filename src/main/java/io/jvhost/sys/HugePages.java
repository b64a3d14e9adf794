package io.jvhost.sys;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The kernel's pool of 2 MiB hugepages as sysfs reports it
 * ({@code /sys/kernel/mm/hugepages/hugepages-2048kB}), and the advice to give when it is too
 * small. Pages counted as reserved are promised to existing mappings, so only
 * {@code free - reserved} can back a new one.
 */
public record HugePages(long total, long free, long reserved) {
    /** The hugepage size jvhost uses: 2 MiB, the x86-64 default. */
    public static final long SIZE = 2L << 20;
    private static final Path POOL = Path.of("/sys/kernel/mm/hugepages/hugepages-2048kB");

    /** Reads the pool now; a kernel without 2 MiB hugepages reads as an empty pool. */
    public static HugePages read() {
        return new HugePages(value("nr_hugepages"), value("free_hugepages"), value("resv_hugepages"));
    }

    private static long value(String name) {
        try {
            return Long.parseLong(Files.readString(POOL.resolve(name)).trim());
        } catch (IOException | NumberFormatException e) {
            return 0;
        }
    }

    /** Pages a new mapping can still get. */
    public long available() {
        return Math.max(0, free - reserved);
    }

    /** {@code bytes} rounded up to whole hugepages. */
    public static long roundUp(long bytes) {
        return (bytes + SIZE - 1) & -SIZE;
    }

    /**
     * What to tell a user who needs {@code pages} pages for {@code what}: how many are free and
     * the exact command that reserves enough (the pool grown by the shortfall).
     */
    public String shortfallMessage(String what, long pages) {
        long target = total + Math.max(0, pages - available());
        return what + " needs " + pages + " free 2 MiB hugepages (" + (pages * SIZE >> 20) + " MiB), but only " + available()
                + " of " + total + " are free; reserve them as root with: echo " + target
                + " > /proc/sys/vm/nr_hugepages   (or: sysctl -w vm.nr_hugepages=" + target
                + "; where 2 MiB is not the default hugepage size: echo " + target + " > " + POOL.resolve("nr_hugepages") + ")";
    }
}
