package io.jvhost.rpc;

import io.jvhost.bdev.HostMemory;
import io.jvhost.runtime.IdleStrategy;
import io.jvhost.sys.SocketAccess;
import io.jvhost.vhost.VhostTarget;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.ServerSocketChannel;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;

import static io.jvhost.rpc.RpcFixture.json;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

/**
 * Issue 15 items 2, 3, 6 and 7 as an operator would make them: impossible RAM disks, a file
 * where a socket should go, world-connectable sockets, strange names, hostile config files.
 * Each test reproduces the mistake first.
 */
@org.junit.jupiter.api.Timeout(120)
class OperatorMistakesTest {
    @TempDir
    Path dir;
    VhostTarget target;
    Methods methods;

    @BeforeEach
    void start() {
        target = new VhostTarget(dir, 1, IdleStrategy.BACKOFF);
        methods = new Methods(target);
    }

    @AfterEach
    void stop() {
        target.close();
    }

    RpcException fails(String method, String params) {
        RpcException e = catchThrowableOfType(RpcException.class, () -> methods.call(method, json(params)));
        assertThat(e).as("%s %s should fail", method, params).isNotNull();
        return e;
    }

    // ---- item 2 / issue 8: RAM disks the host cannot back ----

    @Test
    void aRamDiskTheHostCannotBackIsRefusedWithEnomemAtOnce() throws Exception {
        // 1 PiB: was an OutOfMemoryError in the RPC thread and no answer at all.
        RpcException e = fails("bdev_malloc_create", "{\"name\":\"Huge\",\"num_blocks\":" + (1L << 50) / 512 + ",\"block_size\":512}");
        assertThat(e.code()).isEqualTo(-12);
        assertThat(e.getMessage()).contains("Cannot allocate memory").contains("1.0 PiB").contains("available");
        // More than available (the 16 GiB on a 24 GiB host case, scaled to this host).
        HostMemory host = HostMemory.read();
        long tooMuch = host.availableBytes() + (1L << 30);
        assertThat(fails("bdev_malloc_create", "{\"name\":\"Big\",\"num_blocks\":" + tooMuch / 4096 + ",\"block_size\":4096}").code()).isEqualTo(-12);
        assertThat(target.bdevs().list()).isEmpty();
        // Nothing was left behind and small disks still work.
        assertThat(methods.call("bdev_malloc_create", json("{\"name\":\"Small\",\"num_blocks\":64}")).asText()).isEqualTo("Small");
    }

    @Test
    void existingRamDisksCountAgainstTheHost() {
        HostMemory host = HostMemory.read();
        long usable = host.availableBytes() - host.headroomBytes();
        // Two disks of 60% of what may be promised each: both fit on their own, not together.
        long each = (usable * 6 / 10) & -4096L;
        methods.call("bdev_malloc_create", json("{\"name\":\"A\",\"num_blocks\":" + each / 4096 + ",\"block_size\":4096}"));
        RpcException e = fails("bdev_malloc_create", "{\"name\":\"B\",\"num_blocks\":" + each / 4096 + ",\"block_size\":4096}");
        assertThat(e.code()).isEqualTo(-12);
        assertThat(e.getMessage()).contains("promised to existing RAM disks");
        // Deleting the first frees its promise.
        methods.call("bdev_malloc_delete", json("{\"name\":\"A\"}"));
        methods.call("bdev_malloc_create", json("{\"name\":\"B\",\"num_blocks\":" + each / 4096 + ",\"block_size\":4096}"));
    }

    @Test
    void theJsonConfigPathGetsTheSameCheck() throws Exception {
        Path cfg = Files.writeString(dir.resolve("huge.json"), "{\"subsystems\":[{\"subsystem\":\"bdev\",\"config\":[{\"method\":\"bdev_malloc_create\","
                + "\"params\":{\"name\":\"M\",\"num_blocks\":" + (1L << 41) + ",\"block_size\":512}}]}]}");
        JsonConfig.ConfigException e = catchThrowableOfType(JsonConfig.ConfigException.class, () -> JsonConfig.load(cfg, methods));
        assertThat(e).isNotNull();
        assertThat(e.getMessage()).contains("bdev_malloc_create").contains("Cannot allocate memory").doesNotContain("\n");
    }

    @Test
    void theRpcServerAnswersOtherClientsAndTheSameClientAfterARefusedRamDisk() throws Exception {
        try (JsonRpcServer server = JsonRpcServer.start(dir.resolve("rpc.sock"), methods);
             RpcClient a = RpcClient.connect(server.path(), java.time.Duration.ofSeconds(30));
             RpcClient b = RpcClient.connect(server.path(), java.time.Duration.ofSeconds(30))) {
            RpcException e = catchThrowableOfType(RpcException.class, () -> a.call("bdev_malloc_create", json("{\"num_blocks\":" + (1L << 41) + "}")));
            assertThat(e.code()).isEqualTo(-12);
            assertThat(a.call("spdk_get_version", null).get("version").asText()).startsWith("jvhost");
            assertThat(b.call("spdk_get_version", null).get("version").asText()).startsWith("jvhost");
        }
    }

    // ---- item 3: only a stale socket is replaced ----

    @Test
    void aRegularFileAtTheControllerPathIsNeverDeleted() throws Exception {
        methods.call("bdev_malloc_create", json("{\"name\":\"M\",\"num_blocks\":64}"));
        Path precious = Files.writeString(dir.resolve("vhost.0"), "precious\n");
        RpcException e = fails("vhost_create_blk_controller", "{\"ctrlr\":\"vhost.0\",\"dev_name\":\"M\"}");
        assertThat(e.code()).isEqualTo(-17);
        assertThat(e.getMessage()).contains(precious.toString()).contains("a regular file").contains("not a socket");
        assertThat(Files.readString(precious)).isEqualTo("precious\n");
        // The bdev was not left claimed.
        assertThat(target.bdevs().claimedBy("M")).isEmpty();

        Files.createDirectory(dir.resolve("d"));
        assertThat(fails("vhost_create_blk_controller", "{\"ctrlr\":\"d\",\"dev_name\":\"M\"}").getMessage()).contains("a directory");
        assertThat(dir.resolve("d")).isDirectory();
        Files.createSymbolicLink(dir.resolve("l"), precious);
        assertThat(fails("vhost_create_blk_controller", "{\"ctrlr\":\"l\",\"dev_name\":\"M\"}").getMessage()).contains("a symbolic link");
        assertThat(dir.resolve("l")).isSymbolicLink();
        assertThat(Files.readString(precious)).isEqualTo("precious\n");
    }

    @Test
    void aStaleSocketIsReplacedAndALiveOneRefused() throws Exception {
        methods.call("bdev_malloc_create", json("{\"name\":\"M\",\"num_blocks\":64}"));
        Path stale = dir.resolve("stale");
        try (ServerSocketChannel s = ServerSocketChannel.open(StandardProtocolFamily.UNIX)) {
            s.bind(UnixDomainSocketAddress.of(stale));
        }
        assertThat(stale).exists();
        methods.call("vhost_create_blk_controller", json("{\"ctrlr\":\"stale\",\"dev_name\":\"M\"}"));

        methods.call("bdev_malloc_create", json("{\"name\":\"M2\",\"num_blocks\":64}"));
        try (ServerSocketChannel live = ServerSocketChannel.open(StandardProtocolFamily.UNIX)) {
            live.bind(UnixDomainSocketAddress.of(dir.resolve("live")));
            RpcException e = fails("vhost_create_blk_controller", "{\"ctrlr\":\"live\",\"dev_name\":\"M2\"}");
            assertThat(e.code()).isEqualTo(-98);
            assertThat(e.getMessage()).contains("another process is serving").doesNotContain("internal error");
            assertThat(dir.resolve("live")).exists();
        }
    }

    // ---- item 6: socket permissions ----

    @Test
    void controllerSocketsAreOwnerOnlyByDefaultAndTakeTheConfiguredModeAndGroup() throws Exception {
        methods.call("bdev_malloc_create", json("{\"name\":\"M\",\"num_blocks\":64}"));
        methods.call("bdev_malloc_create", json("{\"name\":\"M2\",\"num_blocks\":64}"));
        methods.call("vhost_create_blk_controller", json("{\"ctrlr\":\"a\",\"dev_name\":\"M\"}"));
        // With the usual umask 022 this was srwxr-xr-x (and srwxrwxrwx with umask 000).
        assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(dir.resolve("a"), LinkOption.NOFOLLOW_LINKS))).isEqualTo("rw-------");

        SocketAccess access = SocketAccess.parse("0660", "1"); // gid 1 (daemon on Debian)
        target.socketAccess(access);
        methods.call("vhost_create_blk_controller", json("{\"ctrlr\":\"b\",\"dev_name\":\"M2\"}"));
        Path b = dir.resolve("b");
        assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(b, LinkOption.NOFOLLOW_LINKS))).isEqualTo("rw-rw----");
        assertThat((Integer) Files.getAttribute(b, "unix:gid", LinkOption.NOFOLLOW_LINKS)).isEqualTo(1);
    }

    @Test
    void socketAccessOptionsAreCheckedAtStartUp() {
        assertThat(SocketAccess.parse(null, null)).isEqualTo(SocketAccess.DEFAULT);
        assertThat(SocketAccess.parse("660", "").mode()).isEqualTo(0660);
        assertThat(catchThrowableOfType(IllegalArgumentException.class, () -> SocketAccess.parse("rw", null))).hasMessageContaining("octal");
        assertThat(catchThrowableOfType(IllegalArgumentException.class, () -> SocketAccess.parse("0066", null))).hasMessageContaining("owner");
        assertThat(catchThrowableOfType(IllegalArgumentException.class, () -> SocketAccess.parse("04777", null))).hasMessageContaining("octal");
        assertThat(catchThrowableOfType(IllegalArgumentException.class, () -> SocketAccess.parse("0660", "no-such-group-here"))).hasMessageContaining("no-such-group-here");
    }

    // ---- item 7c: names ----

    @Test
    void controllerNamesAreLimitedToSafeCharacters() {
        methods.call("bdev_null_create", json("{\"name\":\"N\",\"num_blocks\":8}"));
        for (String bad : new String[] {"a\nb", "*", "-rf", "a/b", "..", ".", ".hidden", "a b", " a", "", "x".repeat(256), "a\u0000b", "é"}) {
            RpcException e = fails("vhost_create_blk_controller", Json.obj().put("ctrlr", bad).put("dev_name", "N").toString());
            assertThat(e.code()).as(bad).isEqualTo(RpcException.INVALID_PARAMS);
            assertThat(e.getMessage()).as(bad).doesNotContain("\n");
        }
        try (var files = Files.list(dir)) {
            assertThat(files).isEmpty();
        } catch (java.io.IOException x) {
            throw new AssertionError(x);
        }
        assertThat(target.bdevs().claimedBy("N")).isEmpty();
        for (String good : new String[] {"vhost.0", "naa.Malloc0.0", "spdk:blk_1", "VhostBlk0", "_x-y"}) {
            methods.call("bdev_null_create", json("{\"name\":\"B" + good.hashCode() + "\",\"num_blocks\":8}"));
            methods.call("vhost_create_blk_controller", Json.obj().put("ctrlr", good).put("dev_name", "B" + good.hashCode()));
            assertThat(dir.resolve(good)).exists();
        }
    }

    @Test
    void bdevNamesRefuseControlCharactersAndSurroundingSpace() {
        for (String bad : new String[] {"a\nb", "tab\there", " lead", "trail ", "", "x".repeat(256)}) {
            RpcException e = fails("bdev_malloc_create", Json.obj().put("name", bad).put("num_blocks", 8).toString());
            assertThat(e.code()).as(bad).isEqualTo(RpcException.INVALID_PARAMS);
            assertThat(e.getMessage()).as(bad).doesNotContain("\n");
        }
        assertThat(target.bdevs().list()).isEmpty();
        // SPDK-style names with '/' (lvol aliases) and spaces inside stay allowed: bdevs are not files.
        methods.call("bdev_null_create", json("{\"name\":\"lvs/lvol 1\",\"num_blocks\":8}"));
    }

    // ---- item 7a, 7b: config files ----

    @Test
    void aDeeplyNestedConfigIsOneClearLine() throws Exception {
        Path cfg = Files.writeString(dir.resolve("nested.json"), "[".repeat(100_000) + "]".repeat(100_000));
        JsonConfig.ConfigException e = catchThrowableOfType(JsonConfig.ConfigException.class, () -> JsonConfig.load(cfg, methods));
        assertThat(e).as("was a NullPointerException").isNotNull();
        assertThat(e.getMessage()).contains(cfg.toString()).containsIgnoringCase("nesting").doesNotContain("\n");
        // Valid JSON of the wrong shape, and broken JSON, are one line with a position.
        Path broken = Files.writeString(dir.resolve("broken.json"), "{\n\"subsystems\": [\n}");
        assertThat(catchThrowableOfType(JsonConfig.ConfigException.class, () -> JsonConfig.load(broken, methods)).getMessage())
                .contains("line 3").doesNotContain("\n");
        Path empty = Files.writeString(dir.resolve("empty.json"), "");
        assertThat(catchThrowableOfType(JsonConfig.ConfigException.class, () -> JsonConfig.load(empty, methods)).getMessage()).contains("empty");
    }

    @Test
    void anEndlessConfigFileIsCutOffAtTheSizeLimit() throws Exception {
        // /dev/zero was read forever.
        JsonConfig.ConfigException e = catchThrowableOfType(JsonConfig.ConfigException.class, () -> JsonConfig.load(Path.of("/dev/zero"), methods));
        assertThat(e).isNotNull();
        assertThat(e.getMessage()).contains("/dev/zero").contains("larger than 16 MiB");
    }

}
