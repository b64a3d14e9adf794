package io.jvhost.cli;

import io.jvhost.sys.UnixDatagram;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;

/**
 * What {@code serve} tells a service manager: the sd_notify(3) protocol (one datagram of
 * {@code KEY=VALUE} lines to the socket named by {@code $NOTIFY_SOCKET}: a path, or an abstract
 * name written {@code @name}) and the {@code --pid-file}. Without {@code NOTIFY_SOCKET} the
 * notifications are no-ops, so the same code runs under systemd, another supervisor or a shell.
 * Failures to notify are reported once on stderr and never stop the target.
 */
final class ServiceNotifier {
    private final String notifySocket;
    private final Path pidFile;
    private boolean warned;

    ServiceNotifier(String notifySocket, Path pidFile) {
        this.notifySocket = notifySocket == null || notifySocket.isEmpty() ? null : notifySocket;
        this.pidFile = pidFile;
    }

    static ServiceNotifier fromEnvironment(Path pidFile) {
        return new ServiceNotifier(System.getenv("NOTIFY_SOCKET"), pidFile);
    }

    /**
     * A start-up check, before anything is created: the pid file's directory must exist, or the
     * one line that says so.
     */
    String pidFileProblem() {
        if (pidFile == null) return null;
        Path dir = pidFile.toAbsolutePath().getParent();
        if (dir != null && !Files.isDirectory(dir)) {
            return "the directory of --pid-file " + pidFile + " does not exist (create it, e.g. with RuntimeDirectory= in the unit, or choose another path)";
        }
        return null;
    }

    /** Every controller listens and the RPC server is up: write the pid file, then READY=1. */
    void ready(String status) throws IOException {
        if (pidFile != null) {
            // Whole or absent: a reader never sees a half-written pid.
            Path tmp = pidFile.resolveSibling(pidFile.getFileName() + ".tmp");
            Files.writeString(tmp, ProcessHandle.current().pid() + "\n");
            Files.move(tmp, pidFile, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        }
        notify("READY=1\nSTATUS=" + status + "\nMAINPID=" + ProcessHandle.current().pid() + "\n");
    }

    /** Shutting down (first thing in the shutdown hook). */
    void stopping() {
        notify("STOPPING=1\nSTATUS=shutting down\n");
    }

    /** The last thing before exit: the pid file goes. */
    void exited() {
        if (pidFile == null) return;
        try {
            Files.deleteIfExists(pidFile);
        } catch (IOException e) {
            System.err.println("jvhost: could not remove the pid file " + pidFile + ": " + e.getMessage());
        }
    }

    void notify(String state) {
        if (notifySocket == null) return;
        try {
            UnixDatagram.send(notifySocket, state.getBytes(StandardCharsets.UTF_8));
        } catch (RuntimeException e) {
            if (!warned) {
                warned = true;
                System.err.println("jvhost: cannot notify the service manager at NOTIFY_SOCKET=" + notifySocket + ": " + e.getMessage()
                        + " (serving anyway; unset NOTIFY_SOCKET if no service manager waits)");
            }
        }
    }
}
