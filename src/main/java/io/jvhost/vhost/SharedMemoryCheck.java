package io.jvhost.vhost;

import io.jvhost.memory.MemoryRegion;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * Tells whether the front-end maps guest memory shared, the one thing vhost-user cannot work
 * without: a QEMU whose memory backend lacks {@code share=on} still sends the backing fd, we map
 * it shared and see the file, but the guest's writes land in QEMU's private copy-on-write pages,
 * so requests never reach us and the guest hangs at its first I/O. The front-end's own mapping
 * of each region (its user address, from SET_MEM_TABLE) is looked up in
 * {@code /proc/PID/maps} of the peer (SO_PEERCRED); a {@code p} (private) there is the mistake.
 * Off the data path: once per memory table. Unknown (no pid, maps not readable, address not
 * found) is never reported as a problem.
 */
final class SharedMemoryCheck {
    private SharedMemoryCheck() {}

    /** The fix, as {@code serve} prints QEMU's options. */
    static final String FIX = "start QEMU with shared guest RAM: -object memory-backend-memfd,id=mem,size=<RAM>,share=on -machine memory-backend=mem"
            + " (or share=on on its memory-backend-file)";

    /**
     * The first region the front-end {@code pid} maps privately, described, or null when every
     * region is shared or nothing can be told.
     */
    static String privateRegion(long pid, List<MemoryRegion> regions) {
        if (pid <= 0 || regions.isEmpty()) return null;
        List<String> maps;
        try {
            maps = Files.readAllLines(Path.of("/proc", Long.toString(pid), "maps"));
        } catch (IOException | RuntimeException e) {
            return null; // another user's process without the right to read it, or gone
        }
        for (MemoryRegion r : regions) {
            String line = mappingAt(maps, r.userAddr());
            if (line == null) continue;
            String[] f = line.split("\\s+", 6);
            if (f.length >= 2 && f[1].length() == 4 && f[1].charAt(3) == 'p') {
                return "the front-end (pid " + pid + ") maps guest memory at 0x" + Long.toHexString(r.userAddr()) + " privately ("
                        + f[1] + (f.length == 6 ? " " + f[5].strip() : "") + "), so the guest's writes never reach jvhost";
            }
        }
        return null;
    }

    /** The /proc/PID/maps line whose range holds {@code addr}, or null. */
    static String mappingAt(List<String> maps, long addr) {
        for (String l : maps) {
            int dash = l.indexOf('-'), space = l.indexOf(' ');
            if (dash <= 0 || space <= dash) continue;
            try {
                long start = Long.parseUnsignedLong(l, 0, dash, 16), end = Long.parseUnsignedLong(l, dash + 1, space, 16);
                if (Long.compareUnsigned(addr, start) >= 0 && Long.compareUnsigned(addr, end) < 0) return l;
            } catch (NumberFormatException e) {
                // not a mapping line
            }
        }
        return null;
    }
}
