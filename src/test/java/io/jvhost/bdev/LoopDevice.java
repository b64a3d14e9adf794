package io.jvhost.bdev;

import org.junit.jupiter.api.Assumptions;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * Root-only test fixtures: a loop block device over a file ({@code losetup}), optionally with an
 * ext4 file system mounted on it that can be frozen ({@code fsfreeze}), which makes every write
 * into it block in the kernel until thawed: a real, deterministic slow store. Tests that need
 * one are skipped, with the reason, where losetup is not permitted (not root, no loop driver).
 */
public final class LoopDevice implements AutoCloseable {
    public final String device;
    private Path mountPoint;
    private boolean frozen;

    private LoopDevice(String device) {
        this.device = device;
    }

    /** Attaches {@code backing} (its size is the device's) with the given logical sector size; skips the test when that is not possible. */
    public static LoopDevice attach(Path backing, int sectorSize) throws Exception {
        Assumptions.assumeTrue(isRoot(), "loop device tests need root (losetup); skipped");
        List<String> cmd = new ArrayList<>(List.of("losetup", "--find", "--show"));
        if (sectorSize != 512) cmd.addAll(List.of("--sector-size", Integer.toString(sectorSize)));
        cmd.add(backing.toString());
        Result r = run(cmd);
        Assumptions.assumeTrue(r.code == 0 && r.out.startsWith("/dev/loop"), () -> "losetup not permitted here (" + r.out.strip() + "); skipped");
        return new LoopDevice(r.out.strip());
    }

    /** Makes an ext4 file system on the device and mounts it at {@code dir}; skips the test when that is not possible. */
    public Path mountExt4(Path dir) throws Exception {
        Result mk = run(List.of("mkfs.ext4", "-q", "-F", device));
        Assumptions.assumeTrue(mk.code == 0, () -> "mkfs.ext4 failed: " + mk.out.strip() + "; skipped");
        Files.createDirectories(dir);
        Result m = run(List.of("mount", device, dir.toString()));
        Assumptions.assumeTrue(m.code == 0, () -> "mount not permitted: " + m.out.strip() + "; skipped");
        mountPoint = dir;
        return dir;
    }

    /** Freezes the mounted file system: writes into it block until {@link #thaw()}. */
    public void freeze() throws Exception {
        Result r = run(List.of("fsfreeze", "--freeze", mountPoint.toString()));
        Assumptions.assumeTrue(r.code == 0, () -> "fsfreeze not permitted: " + r.out.strip() + "; skipped");
        frozen = true;
    }

    public void thaw() throws Exception {
        if (!frozen) return;
        run(List.of("fsfreeze", "--unfreeze", mountPoint.toString()));
        frozen = false;
    }

    @Override
    public void close() throws Exception {
        thaw();
        if (mountPoint != null) {
            // A write just released by a thaw may still hold the file system for a moment.
            org.awaitility.Awaitility.await().atMost(java.time.Duration.ofSeconds(30)).pollInterval(java.time.Duration.ofMillis(100))
                    .ignoreExceptions().until(() -> run(List.of("umount", mountPoint.toString())).code == 0);
        }
        run(List.of("losetup", "--detach", device));
    }

    public static boolean isRoot() {
        try {
            return Files.readString(Path.of("/proc/self/status")).lines().filter(l -> l.startsWith("Uid:")).findFirst()
                    .map(l -> l.split("\\s+")[1].equals("0")).orElse(false);
        } catch (IOException e) {
            return false;
        }
    }

    private record Result(int code, String out) {}

    private static Result run(List<String> cmd) throws Exception {
        Process p;
        try {
            p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        } catch (IOException e) {
            return new Result(127, cmd.get(0) + ": " + e.getMessage());
        }
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (!p.waitFor(60, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            return new Result(124, cmd + " timed out");
        }
        return new Result(p.exitValue(), out);
    }
}
