package io.jvhost.rpc;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.jvhost.runtime.IdleStrategy;
import io.jvhost.vhost.VhostTarget;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** SPDK-shaped JSON config: good files build the target, bad ones say where and why. */
class JsonConfigTest {
    @TempDir
    Path dir;
    VhostTarget target;

    Methods methods() {
        target = new VhostTarget(dir, 1, IdleStrategy.BACKOFF);
        return new Methods(target);
    }

    @AfterEach
    void close() {
        if (target != null) target.close();
    }

    Path write(String json) throws Exception {
        Path p = dir.resolve("config.json");
        Files.writeString(p, json);
        return p;
    }

    static JsonNode json(String s) throws Exception {
        return new ObjectMapper().readTree(s);
    }

    @Test
    void loadsSpdksExampleShape() throws Exception {
        Path img = dir.resolve("disk.img");
        Files.write(img, new byte[1 << 20]);
        Path cfg = write("""
                {"subsystems":[
                  {"subsystem":"bdev","config":[
                    {"method":"bdev_malloc_create","params":{"name":"Malloc0","num_blocks":262144,"block_size":512}},
                    {"method":"bdev_null_create","params":{"name":"Null0","num_blocks":1024,"block_size":4096}},
                    {"method":"bdev_aio_create","params":{"name":"AIO0","filename":"%s","block_size":512}}]},
                  {"subsystem":"vhost_blk","config":[
                    {"method":"vhost_create_blk_controller","params":{"ctrlr":"vhost.0","dev_name":"Malloc0"}},
                    {"method":"vhost_create_blk_controller","params":{"ctrlr":"vhost.1","dev_name":"AIO0","readonly":true,"cpumask":"0x1"}}]},
                  {"subsystem":"vhost_scsi","config":null}
                ]}""".formatted(img));
        assertThat(JsonConfig.load(cfg, methods())).isEqualTo(5);
        assertThat(target.bdevs().get("Malloc0").numBlocks()).isEqualTo(262144);
        assertThat(target.bdevs().get("Null0").blockSize()).isEqualTo(4096);
        assertThat(target.controllers()).extracting(c -> c.name()).containsExactly("vhost.0", "vhost.1");
        assertThat(dir.resolve("vhost.0")).exists();
        assertThat(dir.resolve("vhost.1")).exists();
    }

    @Test
    void badFilesNameTheEntryAndTheReason() throws Exception {
        Methods m = methods();
        assertThatThrownBy(() -> JsonConfig.load(write("{\"subsystems\": ["), m)).hasMessageContaining("not valid JSON");
        assertThatThrownBy(() -> JsonConfig.load(write("{}"), m)).hasMessageContaining("\"subsystems\" array");
        assertThatThrownBy(() -> JsonConfig.load(write("""
                {"subsystems":[{"subsystem":"bdev","config":[{"method":"bdev_malloc_create","params":{"name":"M","num_blocks":"8"}}]}]}"""), m))
                .hasMessageContaining("subsystem bdev, config[0] (bdev_malloc_create)").hasMessageContaining("'num_blocks' must be an integer");
        assertThatThrownBy(() -> JsonConfig.load(write("""
                {"subsystems":[{"subsystem":"bdev","config":[{"method":"bdev_malloc_create","params":{"name":"M","num_blocks":8,"blok_size":512}}]}]}"""), m))
                .hasMessageContaining("unknown parameter 'blok_size'");
        assertThatThrownBy(() -> JsonConfig.load(write("""
                {"subsystems":[{"subsystem":"bdev","config":[{"method":"bdev_frobnicate","params":{}}]}]}"""), m))
                .hasMessageContaining("Method not found: bdev_frobnicate");
        assertThatThrownBy(() -> JsonConfig.load(write("""
                {"subsystems":[{"subsystem":"vhost_blk","config":[{"method":"vhost_create_blk_controller","params":{"ctrlr":"v","dev_name":"Nope"}}]}]}"""), m))
                .hasMessageContaining("bdev 'Nope' does not exist");
        assertThatThrownBy(() -> JsonConfig.load(write("""
                {"subsystems":[{"subsystem":"bdev","config":[{"method":"bdev_malloc_create","params":{"name":"M","num_blocks":8,"block_size":1000}}]}]}"""), m))
                .hasMessageContaining("block_size");
        assertThatThrownBy(() -> JsonConfig.load(dir.resolve("missing.json"), m)).hasMessageContaining("cannot read");
    }

    @Test
    void aBdevCannotBackTwoControllersAndNamesAreUnique() throws Exception {
        Methods m = methods();
        m.call("bdev_malloc_create", json("{\"name\":\"M\",\"num_blocks\":64}"));
        assertThatThrownBy(() -> m.call("bdev_malloc_create", json("{\"name\":\"M\",\"num_blocks\":64}")))
                .isInstanceOf(RpcException.class).hasMessageContaining("already exists");
        m.call("vhost_create_blk_controller", json("{\"ctrlr\":\"a\",\"dev_name\":\"M\"}"));
        RpcException e = org.junit.jupiter.api.Assertions.assertThrows(RpcException.class, () ->
                m.call("vhost_create_blk_controller", json("{\"ctrlr\":\"b\",\"dev_name\":\"M\"}")));
        assertThat(e.code()).isEqualTo(RpcException.EBUSY);
        assertThatThrownBy(() -> m.call("vhost_create_blk_controller", json("{\"ctrlr\":\"../x\",\"dev_name\":\"M\"}")))
                .hasMessageContaining("plain file name");
        assertThatThrownBy(() -> m.call("bdev_malloc_delete", json("{\"name\":\"M\"}"))).hasMessageContaining("in use");
        m.call("vhost_delete_controller", json("{\"ctrlr\":\"a\"}"));
        assertThat(dir.resolve("a")).doesNotExist();
        m.call("bdev_malloc_delete", json("{\"name\":\"M\"}"));
        assertThat(target.bdevs().find("M")).isEmpty();
    }
}
