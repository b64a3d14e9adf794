package io.jvhost.sys;

import java.io.IOException;
import java.nio.file.FileSystems;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.GroupPrincipal;
import java.nio.file.attribute.PosixFilePermission;
import java.util.EnumSet;
import java.util.Set;

/**
 * Who may connect to a listening Unix socket: the file mode and group given to the socket file
 * (Linux checks write permission on the socket file at {@code connect(2)}). The default is
 * {@code 0600}, owner only, whatever the umask; operators whose QEMU runs as another user give
 * a group ({@code --socket-group kvm}) and a mode such as {@code 0660}.
 *
 * <p>Applied by the binder before any connection can be accepted: {@link UnixSocket.Listener}
 * sets it between {@code bind(2)} and {@code listen(2)} (a bound socket that does not listen
 * refuses connections), the RPC server on a socket bound inside a private directory before it
 * is linked into place.
 *
 * @param mode  permission bits (0..0777)
 * @param group the socket's group, or null to keep the creating process's group
 */
public record SocketAccess(int mode, GroupPrincipal group) {
    public static final int DEFAULT_MODE = 0600;
    public static final SocketAccess DEFAULT = new SocketAccess(DEFAULT_MODE, null);

    public SocketAccess {
        if (mode < 0 || mode > 0777) throw new IllegalArgumentException("socket mode must be an octal number from 0 to 0777, got 0" + Integer.toOctalString(mode));
        if ((mode & 0200) == 0) throw new IllegalArgumentException("socket mode 0" + Integer.toOctalString(mode) + " does not let the owner connect (needs u+w, e.g. 0600 or 0660)");
    }

    /**
     * Parses the CLI/config forms: {@code mode} octal ("0660", "660", null = 0600), {@code group}
     * a group name or numeric gid (null or empty = none). Unknown groups fail here, at startup.
     */
    public static SocketAccess parse(String mode, String group) {
        int m = DEFAULT_MODE;
        if (mode != null && !mode.isBlank()) {
            String s = mode.strip();
            if (s.startsWith("0o")) s = s.substring(2);
            if (!s.matches("[0-7]{1,4}")) throw new IllegalArgumentException("socket mode must be octal like 0600 or 0660, got '" + mode + "'");
            m = Integer.parseInt(s, 8);
        }
        GroupPrincipal g = null;
        if (group != null && !group.isBlank()) {
            try {
                // Accepts a name or a numeric gid (the JDK falls back to the number when no group has that name).
                g = FileSystems.getDefault().getUserPrincipalLookupService().lookupPrincipalByGroupName(group.strip());
            } catch (IOException | UnsupportedOperationException e) {
                throw new IllegalArgumentException("unknown socket group '" + group + "' (give a group name or a numeric gid)");
            }
        }
        return new SocketAccess(m, g);
    }

    /** Sets the mode (and group) of the socket file at {@code p}, not following symbolic links for the group. */
    public void apply(Path p) {
        try {
            if (group != null) Files.getFileAttributeView(p, java.nio.file.attribute.PosixFileAttributeView.class, LinkOption.NOFOLLOW_LINKS).setGroup(group);
            Files.setPosixFilePermissions(p, permissions(mode));
        } catch (IOException | RuntimeException e) {
            throw new SocketPathException(Errno.EPERM, "cannot set mode 0" + Integer.toOctalString(mode)
                    + (group != null ? " and group " + group.getName() : "") + " on socket " + p + ": " + e.getMessage()
                    + (group != null ? " (changing the group needs root or membership in it)" : ""));
        }
    }

    static Set<PosixFilePermission> permissions(int mode) {
        Set<PosixFilePermission> s = EnumSet.noneOf(PosixFilePermission.class);
        PosixFilePermission[] order = {
                PosixFilePermission.OTHERS_EXECUTE, PosixFilePermission.OTHERS_WRITE, PosixFilePermission.OTHERS_READ,
                PosixFilePermission.GROUP_EXECUTE, PosixFilePermission.GROUP_WRITE, PosixFilePermission.GROUP_READ,
                PosixFilePermission.OWNER_EXECUTE, PosixFilePermission.OWNER_WRITE, PosixFilePermission.OWNER_READ};
        for (int i = 0; i < 9; i++) if ((mode & (1 << i)) != 0) s.add(order[i]);
        return s;
    }

    /** "0600" or "0660 group kvm", for logs. */
    @Override
    public String toString() {
        return "0" + Integer.toOctalString(mode) + (group != null ? " group " + group.getName() : "");
    }
}
