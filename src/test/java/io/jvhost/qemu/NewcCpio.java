package io.jvhost.qemu;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.HashSet;
import java.util.Set;

/**
 * Writes a small uncompressed "newc" (SVR4, magic 070701) cpio archive, the format the Linux
 * kernel unpacks as initramfs. Used to append a per-test archive with /guest-test.sh (and helper
 * files) to the prebuilt base initramfs: the kernel unpacks concatenated archives in order.
 * Parent directories are added automatically; names are stored without a leading slash.
 */
public final class NewcCpio {
    public static final int S_IFREG = 0100000;
    public static final int S_IFDIR = 0040000;

    private final ByteArrayOutputStream out = new ByteArrayOutputStream();
    private final Set<String> names = new HashSet<>();
    private int nextIno = 1;
    private boolean finished;

    /** Adds a regular file; {@code perm} is the permission bits, e.g. 0755. */
    public NewcCpio file(String path, byte[] data, int perm) {
        String name = normalize(path);
        parents(name);
        entry(name, S_IFREG | (perm & 07777), 1, data);
        return this;
    }

    public NewcCpio file(String path, String text, int perm) {
        return file(path, text.getBytes(StandardCharsets.UTF_8), perm);
    }

    public NewcCpio directory(String path, int perm) {
        String name = normalize(path);
        parents(name);
        if (!names.contains(name)) entry(name, S_IFDIR | (perm & 07777), 2, new byte[0]);
        return this;
    }

    /** Appends the TRAILER!!! entry and returns the archive (its length is a multiple of 4). */
    public byte[] finish() {
        if (!finished) {
            entry("TRAILER!!!", 0, 1, new byte[0]);
            finished = true;
        }
        return out.toByteArray();
    }

    private void parents(String name) {
        int slash = name.lastIndexOf('/');
        if (slash > 0) directory(name.substring(0, slash), 0755);
    }

    private static String normalize(String path) {
        String name = path;
        while (name.startsWith("/")) name = name.substring(1);
        while (name.endsWith("/")) name = name.substring(0, name.length() - 1);
        if (name.isEmpty()) throw new IllegalArgumentException("empty path: '" + path + "'");
        for (String part : name.split("/")) {
            if (part.isEmpty() || part.equals(".") || part.equals(".."))
                throw new IllegalArgumentException("bad path: '" + path + "'");
        }
        return name;
    }

    private void entry(String name, int mode, int nlink, byte[] data) {
        if (finished) throw new IllegalStateException("archive already finished");
        if (!name.equals("TRAILER!!!") && !names.add(name))
            throw new IllegalArgumentException("duplicate entry: " + name);
        byte[] nameBytes = name.getBytes(StandardCharsets.UTF_8);
        StringBuilder h = new StringBuilder(110).append("070701");
        long[] fields = {
            name.equals("TRAILER!!!") ? 0 : nextIno++, // c_ino
            mode,                                      // c_mode
            0, 0,                                      // c_uid, c_gid
            nlink,                                     // c_nlink
            0,                                         // c_mtime (reproducible archives)
            data.length,                               // c_filesize
            0, 0,                                      // c_devmajor, c_devminor
            0, 0,                                      // c_rdevmajor, c_rdevminor
            nameBytes.length + 1,                      // c_namesize, including the NUL
            0,                                         // c_check (unused by newc)
        };
        for (long f : fields) h.append(String.format("%08X", f));
        out.writeBytes(h.toString().getBytes(StandardCharsets.US_ASCII));
        out.writeBytes(nameBytes);
        out.write(0);
        pad();
        out.writeBytes(data);
        pad();
    }

    private void pad() {
        while (out.size() % 4 != 0) out.write(0);
    }
}
