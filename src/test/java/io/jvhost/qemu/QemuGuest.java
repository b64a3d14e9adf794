package io.jvhost.qemu;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.io.Writer;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * A QEMU guest for end-to-end tests: boots the kernel + initramfs built by
 * {@code scripts/qemu/build-initramfs.sh} (once per JVM, into {@code target/qemu-guest/}) with a
 * per-test {@code /guest-test.sh} appended as a second cpio archive, under TCG, with the serial
 * console on QEMU's stdio. All console output goes to {@code target/qemu-guest/runs/<name>/serial.log}
 * and to an in-memory line list.
 *
 * <pre>{@code
 * var b = QemuGuest.builder("blk-basic")
 *         .guestResource("blk-workload.sh", "/qemu/blk-workload.sh")
 *         .guestScript("sh /blk-workload.sh /dev/vda t0")
 *         .qemuArgs("-chardev", "socket,id=c0,path=" + sock,
 *                   "-device", "vhost-user-blk-pci,chardev=c0,num-queues=2");
 * try (QemuGuest g = b.start()) {
 *     g.awaitLine(QemuGuest.BOOTED, Duration.ofSeconds(60));
 *     assertThat(g.awaitExit(Duration.ofSeconds(120))).isZero();
 * }
 * }</pre>
 *
 * The guest's /init prints {@code JVHOST-GUEST-BOOTED} before it runs the script and
 * {@code JVHOST-GUEST-EXIT <code>} after it, then powers off. Console echo is off in the guest, so
 * lines sent with {@link #sendLine} (read by the script with {@code read -r LINE}) do not show up
 * in the output.
 */
public final class QemuGuest implements AutoCloseable {
    public static final Pattern BOOTED = Pattern.compile("JVHOST-GUEST-BOOTED");
    public static final Pattern EXIT = Pattern.compile("JVHOST-GUEST-EXIT (-?\\d+)");
    /** {@code JVHOST-MD5 <device-byte-offset> <length> <md5> [tag]}, printed by blk-workload.sh. */
    public static final Pattern MD5_LINE =
            Pattern.compile("JVHOST-MD5 (\\d+) (\\d+) ([0-9a-f]{32})(?: (\\S+))?");
    /** Lines that QEMU writes to stderr are kept in the log and line list with this prefix. */
    public static final String STDERR_PREFIX = "[qemu stderr] ";

    private static final String QEMU = "qemu-system-x86_64";
    private static final Pattern ANSI_ESCAPE = Pattern.compile("\u001B(?:\\[[0-?]*[ -/]*[@-~]|[@-~])");
    private static final Set<QemuGuest> LIVE = ConcurrentHashMap.newKeySet();
    private static Image image;
    private static RuntimeException imageFailure;

    static {
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            for (QemuGuest g : LIVE) g.process.destroyForcibly();
        }, "qemu-guest-reaper"));
    }

    /** The prebuilt kernel and base initramfs, plus the modules /init loads (in order). */
    public record Image(Path kernel, Path initramfs, List<String> modules) {}

    private final String name;
    private final Path runDir;
    private final Path initrd;
    private final List<String> command;
    private final Process process;
    private final OutputStream stdin;
    private final Writer log;
    private final long startNanos;
    private final Object lock = new Object();
    private final List<String> lines = new ArrayList<>();
    private final Thread stdoutPump;
    private final Thread stderrPump;
    private int cursor;
    private boolean stdoutEnded;
    private long bootNanos = -1;

    private QemuGuest(String name, Path runDir, Path initrd, List<String> command) throws IOException {
        this.name = name;
        this.runDir = runDir;
        this.initrd = initrd;
        this.command = List.copyOf(command);
        this.log = Files.newBufferedWriter(runDir.resolve("serial.log"), StandardCharsets.UTF_8);
        log.write("# " + String.join(" ", command) + "\n");
        log.flush();
        ProcessBuilder pb = new ProcessBuilder(command).directory(runDir.toFile());
        this.startNanos = System.nanoTime();
        this.process = pb.start();
        LIVE.add(this);
        this.stdin = process.getOutputStream();
        this.stdoutPump = Thread.ofPlatform().daemon().name("qemu-" + name + "-stdout")
                .start(() -> pump(process.getInputStream(), ""));
        this.stderrPump = Thread.ofPlatform().daemon().name("qemu-" + name + "-stderr")
                .start(() -> pump(process.getErrorStream(), STDERR_PREFIX));
    }

    // ------------------------------------------------------------------ environment

    /** Whether QEMU, a kernel with modules and busybox are installed, so guest tests can run. */
    public static boolean available() {
        Optional<String> why = unavailableReason();
        if (why.isPresent() && required())
            throw new IllegalStateException("QEMU guest tests are required (jvhost.qemu.required) but "
                    + why.get() + "; run scripts/install-test-deps.sh");
        return why.isEmpty();
    }

    /** Why {@link #available()} is false, for the assumption message. */
    public static Optional<String> unavailableReason() {
        if (findOnPath(QEMU).isEmpty()) return Optional.of(QEMU + " is not installed");
        if (!Files.isExecutable(Path.of("/bin/busybox"))) return Optional.of("/bin/busybox is not installed");
        if (findOnPath("cpio").isEmpty()) return Optional.of("cpio is not installed");
        try (Stream<Path> s = Files.list(Path.of("/boot"))) {
            boolean kernel = s.anyMatch(p -> {
                String f = p.getFileName().toString();
                return f.startsWith("vmlinuz-") && Files.isReadable(p)
                        && Files.isRegularFile(Path.of("/lib/modules", f.substring(8), "modules.dep"));
            });
            if (!kernel) return Optional.of("no readable /boot/vmlinuz-* with modules under /lib/modules");
        } catch (IOException e) {
            return Optional.of("cannot list /boot: " + e);
        }
        return Optional.empty();
    }

    private static boolean required() {
        return Boolean.getBoolean("jvhost.qemu.required") || "1".equals(System.getenv("JVHOST_QEMU_REQUIRED"));
    }

    private static Optional<Path> findOnPath(String exe) {
        String path = System.getenv().getOrDefault("PATH", "/usr/bin:/bin");
        for (String dir : path.split(":")) {
            if (dir.isEmpty()) continue;
            Path p = Path.of(dir, exe);
            if (Files.isExecutable(p)) return Optional.of(p);
        }
        return Optional.empty();
    }

    /** The project root: the nearest directory up from user.dir with scripts/qemu/build-initramfs.sh. */
    public static Path projectDir() {
        for (Path d = Path.of(System.getProperty("user.dir")).toAbsolutePath(); d != null; d = d.getParent()) {
            if (Files.isRegularFile(d.resolve("scripts/qemu/build-initramfs.sh"))) return d;
        }
        throw new IllegalStateException("scripts/qemu/build-initramfs.sh not found above " + System.getProperty("user.dir"));
    }

    /** {@code target/qemu-guest}: the image, and one directory per guest run under {@code runs/}. */
    public static Path workDir() {
        return projectDir().resolve("target/qemu-guest");
    }

    /** Builds (or reuses the cached) kernel + initramfs; runs the build script at most once per JVM. */
    public static synchronized Image image() {
        if (image != null) return image;
        if (imageFailure != null) throw imageFailure;
        try {
            Path out = workDir();
            Files.createDirectories(out);
            Path buildLog = out.resolve("build.log");
            Process p = new ProcessBuilder("bash", projectDir().resolve("scripts/qemu/build-initramfs.sh").toString(),
                    out.toString())
                    .redirectErrorStream(true).redirectOutput(buildLog.toFile()).start();
            if (!p.waitFor(15, TimeUnit.MINUTES)) {
                p.destroyForcibly();
                throw new IllegalStateException("build-initramfs.sh did not finish in 15 minutes");
            }
            if (p.exitValue() != 0) {
                throw new IllegalStateException("build-initramfs.sh failed (exit " + p.exitValue() + "):\n"
                        + Files.readString(buildLog));
            }
            Path kernel = Path.of(Files.readString(out.resolve("kernel-path")).trim());
            image = new Image(kernel, out.resolve("initramfs.cpio"), Files.readAllLines(out.resolve("modules")));
            return image;
        } catch (IOException e) {
            imageFailure = new UncheckedIOException("building the guest image failed", e);
            throw imageFailure;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while building the guest image", e);
        } catch (RuntimeException e) {
            imageFailure = e;
            throw e;
        }
    }

    /** A test resource (e.g. {@code /qemu/blk-workload.sh}) as bytes. */
    public static byte[] resource(String name) {
        try (InputStream in = QemuGuest.class.getResourceAsStream(name)) {
            if (in == null) throw new IllegalArgumentException("no test resource " + name);
            return in.readAllBytes();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    public static Builder builder(String name) {
        return new Builder(name);
    }

    // ------------------------------------------------------------------ builder

    public static final class Builder {
        private final String name;
        private final Path runDir;
        private final Map<String, byte[]> files = new LinkedHashMap<>();
        private final Map<String, Integer> perms = new LinkedHashMap<>();
        private final List<String> qemuArgs = new ArrayList<>();
        private final List<String> kernelArgs = new ArrayList<>();
        private String machine = "pc";
        private int memoryMiB = 512;
        private String memoryHotplug = "";
        private int smp = 2;
        private String accel = System.getProperty("jvhost.qemu.accel", "tcg");

        private Builder(String name) {
            if (!name.matches("[A-Za-z0-9._-]+")) throw new IllegalArgumentException("bad guest name: " + name);
            this.name = name;
            this.runDir = workDir().resolve("runs").resolve(name);
            try {
                deleteRecursively(runDir);
                Files.createDirectories(runDir);
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }

        /** {@code target/qemu-guest/runs/<name>}: emptied when the builder is made; put backing files here. */
        public Path runDir() { return runDir; }

        /** The body of /guest-test.sh (busybox sh); its exit code becomes JVHOST-GUEST-EXIT. */
        public Builder guestScript(String script) {
            return guestFile("guest-test.sh", script.getBytes(StandardCharsets.UTF_8), 0755);
        }

        /** Another file for the guest, e.g. a workload script; {@code path} is absolute in the guest. */
        public Builder guestFile(String path, byte[] data, int perm) {
            String p = path.startsWith("/") ? path.substring(1) : path;
            files.put(p, data.clone());
            perms.put(p, perm);
            return this;
        }

        /** A test resource (e.g. {@code /qemu/blk-workload.sh}) as an executable guest file. */
        public Builder guestResource(String path, String resource) {
            return guestFile(path, resource(resource), 0755);
        }

        /** Extra QEMU arguments (devices, chardevs, a QMP socket, ...). */
        public Builder qemuArgs(String... args) {
            qemuArgs.addAll(List.of(args));
            return this;
        }

        /** Extra kernel command line words after {@code console=ttyS0 quiet panic=-1}. */
        public Builder kernelArgs(String... args) {
            kernelArgs.addAll(List.of(args));
            return this;
        }

        public Builder machine(String machine) { this.machine = machine; return this; }
        public Builder memoryMiB(int mib) { this.memoryMiB = mib; return this; }

        /** Room for memory hotplug: {@code -m <mem>,slots=N,maxmem=<max>M} (pc-dimm devices added over QMP). */
        public Builder memoryHotplug(int slots, int maxMiB) {
            this.memoryHotplug = ",slots=" + slots + ",maxmem=" + maxMiB + "M";
            return this;
        }
        public Builder smp(int cpus) { this.smp = cpus; return this; }
        public Builder accel(String accel) { this.accel = accel; return this; }

        /** The QEMU command line for the given kernel and initrd. */
        public List<String> command(Path kernel, Path initrd) {
            List<String> cmd = new ArrayList<>(List.of(
                    QEMU, "-accel", accel, "-nographic", "-no-reboot", "-nodefaults", "-serial", "stdio",
                    "-m", memoryMiB + "M" + memoryHotplug,
                    // shared guest RAM: vhost-user back ends map it from the memfd
                    "-object", "memory-backend-memfd,id=mem,size=" + memoryMiB + "M,share=on",
                    "-machine", machine + ",memory-backend=mem",
                    "-smp", Integer.toString(smp),
                    "-kernel", kernel.toString(), "-initrd", initrd.toString()));
            List<String> append = new ArrayList<>(List.of("console=ttyS0", "quiet", "panic=-1"));
            append.addAll(kernelArgs);
            cmd.add("-append");
            cmd.add(String.join(" ", append));
            cmd.addAll(qemuArgs);
            return cmd;
        }

        /** Builds the per-test initrd (base archive + one with the guest files) and starts QEMU. */
        public QemuGuest start() throws IOException {
            Image img = image();
            NewcCpio cpio = new NewcCpio();
            files.forEach((p, data) -> cpio.file(p, data, perms.get(p)));
            byte[] extra = cpio.finish();
            Path initrd = runDir.resolve("initrd.cpio");
            Files.copy(img.initramfs(), initrd, StandardCopyOption.REPLACE_EXISTING);
            try (OutputStream out = Files.newOutputStream(initrd, StandardOpenOption.APPEND)) {
                long size = Files.size(initrd);
                for (long i = size; i % 4 != 0; i++) out.write(0); // the next header must be 4-aligned
                out.write(extra);
            }
            return new QemuGuest(name, runDir, initrd, command(img.kernel(), initrd));
        }
    }

    // ------------------------------------------------------------------ running guest

    public String name() { return name; }
    public Path runDir() { return runDir; }
    public Path logFile() { return runDir.resolve("serial.log"); }
    public List<String> command() { return command; }
    public Process process() { return process; }

    /** A snapshot of all output lines so far (ANSI escapes removed, QEMU's stderr prefixed). */
    public List<String> lines() {
        synchronized (lock) {
            return List.copyOf(lines);
        }
    }

    /** Time from starting QEMU to the JVHOST-GUEST-BOOTED line, once it was printed. */
    public Optional<Duration> bootTime() {
        synchronized (lock) {
            return bootNanos < 0 ? Optional.empty() : Optional.of(Duration.ofNanos(bootNanos));
        }
    }

    /**
     * Waits for the next line matching {@code pattern} ({@link Matcher#find()}): lines are consumed
     * in order, each call starts after the line the previous call returned. Throws an
     * AssertionError with the end of the log on timeout or when QEMU's output ends first.
     */
    public String awaitLine(Pattern pattern, Duration timeout) {
        long deadline = System.nanoTime() + timeout.toNanos();
        synchronized (lock) {
            while (true) {
                while (cursor < lines.size()) {
                    String line = lines.get(cursor++);
                    if (pattern.matcher(line).find()) return line;
                }
                if (stdoutEnded) throw failure("QEMU output ended before a line matching /" + pattern + "/");
                long left = deadline - System.nanoTime();
                if (left <= 0) throw failure("no line matching /" + pattern + "/ within " + timeout);
                waitNanos(left);
            }
        }
    }

    public String awaitLine(String regex, Duration timeout) {
        return awaitLine(Pattern.compile(regex), timeout);
    }

    /** Writes a line to the guest console (QEMU's stdin); a guest script reads it with {@code read -r}. */
    public void sendLine(String line) {
        try {
            synchronized (log) {
                log.write("# sent: " + line + "\n");
                log.flush();
            }
            stdin.write((line + "\n").getBytes(StandardCharsets.UTF_8));
            stdin.flush();
        } catch (IOException e) {
            throw failure("cannot write to QEMU's stdin: " + e);
        }
    }

    /**
     * Waits for {@code JVHOST-GUEST-EXIT <code>} (anywhere in the output) and for QEMU to terminate
     * after the guest's poweroff, and returns the guest script's exit code.
     */
    public int awaitExit(Duration timeout) {
        long deadline = System.nanoTime() + timeout.toNanos();
        int code;
        synchronized (lock) {
            int scanned = 0;
            Integer found = null;
            while (found == null) {
                for (; scanned < lines.size() && found == null; scanned++) {
                    Matcher m = EXIT.matcher(lines.get(scanned));
                    if (m.find() && !lines.get(scanned).startsWith(STDERR_PREFIX)) found = Integer.parseInt(m.group(1));
                }
                if (found != null) break;
                if (stdoutEnded) throw failure("QEMU output ended without JVHOST-GUEST-EXIT");
                long left = deadline - System.nanoTime();
                if (left <= 0) throw failure("no JVHOST-GUEST-EXIT within " + timeout);
                waitNanos(left);
            }
            code = found;
        }
        try {
            long left = Math.max(deadline - System.nanoTime(), TimeUnit.SECONDS.toNanos(30));
            if (!process.waitFor(left, TimeUnit.NANOSECONDS))
                throw failure("guest exited with " + code + " but QEMU did not terminate after poweroff");
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw failure("interrupted");
        }
        return code;
    }

    /** The last {@code n} output lines, for failure messages. */
    public String tail(int n) {
        synchronized (lock) {
            return String.join("\n", lines.subList(Math.max(0, lines.size() - n), lines.size()));
        }
    }

    private AssertionError failure(String what) {
        String exit = process.isAlive() ? "running" : "exited " + process.exitValue();
        return new AssertionError("guest " + name + ": " + what + " (QEMU " + exit + ", log " + logFile()
                + "); last lines:\n" + tail(40));
    }

    private void waitNanos(long nanos) {
        try {
            TimeUnit.NANOSECONDS.timedWait(lock, Math.min(nanos, TimeUnit.SECONDS.toNanos(1)));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError("interrupted while waiting for guest " + name, e);
        }
    }

    private void pump(InputStream in, String prefix) {
        ByteArrayOutputStream cur = new ByteArrayOutputStream();
        byte[] buf = new byte[16384];
        try {
            int n;
            while ((n = in.read(buf)) > 0) {
                for (int i = 0; i < n; i++) {
                    byte b = buf[i];
                    if (b == '\n') {
                        addLine(prefix, cur);
                    } else if (b != '\r') {
                        cur.write(b);
                    }
                }
            }
        } catch (IOException ignored) {
            // the process went away
        } finally {
            if (cur.size() > 0) addLine(prefix, cur);
            if (prefix.isEmpty()) {
                synchronized (lock) {
                    stdoutEnded = true;
                    lock.notifyAll();
                }
            }
        }
    }

    private void addLine(String prefix, ByteArrayOutputStream cur) {
        String line = prefix + ANSI_ESCAPE.matcher(cur.toString(StandardCharsets.UTF_8)).replaceAll("");
        cur.reset();
        try {
            synchronized (log) {
                log.write(line);
                log.write('\n');
                log.flush();
            }
        } catch (IOException ignored) {
            // keep the in-memory copy
        }
        synchronized (lock) {
            if (bootNanos < 0 && prefix.isEmpty() && BOOTED.matcher(line).find()) bootNanos = System.nanoTime() - startNanos;
            lines.add(line);
            lock.notifyAll();
        }
    }

    /** Kills QEMU if it still runs and deletes the per-test initrd; the log stays. */
    @Override
    public void close() {
        try {
            if (process.isAlive()) {
                process.destroy();
                if (!process.waitFor(5, TimeUnit.SECONDS)) {
                    process.destroyForcibly();
                    process.waitFor(5, TimeUnit.SECONDS);
                }
            }
            stdoutPump.join(2000);
            stderrPump.join(2000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } finally {
            LIVE.remove(this);
            try {
                stdin.close();
            } catch (IOException ignored) {
                // QEMU is gone
            }
            try {
                synchronized (log) {
                    log.write("# closed after " + Duration.ofNanos(System.nanoTime() - startNanos).toMillis() + " ms"
                            + (process.isAlive() ? "" : ", QEMU exit status " + process.exitValue()) + "\n");
                    log.close();
                }
            } catch (IOException ignored) {
                // best effort
            }
            try {
                Files.deleteIfExists(initrd);
            } catch (IOException ignored) {
                // best effort
            }
        }
    }

    // ------------------------------------------------------------------ host-side checks

    /** {@link #verifyMd5Lines(List, Path, String)} for every JVHOST-MD5 line, whatever its tag. */
    public static int verifyMd5Lines(List<String> lines, Path backing) {
        return verifyMd5Lines(lines, backing, null);
    }

    /**
     * Checks each {@code JVHOST-MD5 <offset> <length> <md5> [tag]} line (only those with {@code tag}
     * when it is not null) against the same byte range of {@code backing}, the file behind the guest
     * device. Returns how many regions matched; throws an AssertionError listing every mismatch, or
     * when there is no such line at all.
     */
    public static int verifyMd5Lines(List<String> lines, Path backing, String tag) {
        List<String> bad = new ArrayList<>();
        int checked = 0;
        try (FileChannel ch = FileChannel.open(backing, StandardOpenOption.READ)) {
            long size = ch.size();
            ByteBuffer buf = ByteBuffer.allocate(1 << 20);
            for (String line : lines) {
                if (line.startsWith(STDERR_PREFIX)) continue;
                Matcher m = MD5_LINE.matcher(line);
                if (!m.find() || (tag != null && !tag.equals(m.group(4)))) continue;
                long off = Long.parseLong(m.group(1));
                long len = Long.parseLong(m.group(2));
                String want = m.group(3);
                checked++;
                if (off + len > size) {
                    bad.add("offset " + off + " length " + len + ": beyond the end of the " + size + "-byte file");
                    continue;
                }
                MessageDigest md5 = MessageDigest.getInstance("MD5");
                for (long pos = off, end = off + len; pos < end; ) {
                    buf.clear().limit((int) Math.min(buf.capacity(), end - pos));
                    int r = ch.read(buf, pos);
                    if (r <= 0) throw new IOException("short read at " + pos);
                    md5.update(buf.flip());
                    pos += r;
                }
                String got = HexFormat.of().formatHex(md5.digest());
                if (!got.equals(want)) {
                    bad.add("offset " + off + " length " + len + ": guest wrote md5 " + want + ", file has " + got);
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException("reading " + backing, e);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
        if (checked == 0) {
            throw new AssertionError("no JVHOST-MD5 lines" + (tag == null ? "" : " with tag " + tag) + " to check");
        }
        if (!bad.isEmpty()) {
            throw new AssertionError(bad.size() + " of " + checked + " regions differ between the guest and "
                    + backing + ":\n  " + String.join("\n  ", bad));
        }
        return checked;
    }

    private static void deleteRecursively(Path dir) throws IOException {
        if (!Files.exists(dir)) return;
        try (Stream<Path> s = Files.walk(dir)) {
            List<Path> all = new ArrayList<>(s.toList());
            all.sort(Comparator.reverseOrder());
            for (Path p : all) Files.delete(p);
        }
    }

    @Override
    public String toString() {
        return "QemuGuest[" + name + "]";
    }
}
