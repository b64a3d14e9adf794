package io.jvhost.bdev;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** The file bdev and the submit contract (0 = exactly one completion from poll, <0 = none). */
class FileBlockDeviceTest {
    @TempDir
    Path dir;

    record Done(BlockRequest r, int status) {}

    final List<Done> done = new ArrayList<>();

    @Test
    void scatterGatherWriteAndReadHitTheFile() throws Exception {
        Path f = dir.resolve("disk.img");
        Files.write(f, new byte[1 << 20]);
        try (FileBlockDevice dev = new FileBlockDevice("AIO0", f.toString(), 512, false, null); Arena a = Arena.ofConfined()) {
            assertThat(dev.numBlocks()).isEqualTo(2048);
            BlockChannel ch = dev.openChannel();
            MemorySegment buf = a.allocate(8192, 4096);
            for (int i = 0; i < 8192; i++) buf.set(ValueLayout.JAVA_BYTE, i, (byte) (i * 7));
            BlockRequest w = new BlockRequest(4);
            w.completion((r, st) -> done.add(new Done(r, st)));
            w.reset(BlockRequest.Op.WRITE, 4096);
            w.addBuffer(buf, 0, 512);
            w.addBuffer(buf, 4096, 4096);
            w.addBuffer(buf, 512, 3584);
            assertThat(ch.submit(w)).isZero();
            assertThat(done).as("no completion inside submit").isEmpty();
            pollUntil(ch, 1);
            assertThat(done).containsExactly(new Done(w, 0));
            byte[] file = Files.readAllBytes(f);
            for (int i = 0; i < 512; i++) assertThat(file[4096 + i]).isEqualTo((byte) (i * 7));
            for (int i = 0; i < 4096; i++) assertThat(file[4096 + 512 + i]).isEqualTo((byte) ((4096 + i) * 7));
            for (int i = 0; i < 3584; i++) assertThat(file[4096 + 4608 + i]).isEqualTo((byte) ((512 + i) * 7));
            MemorySegment back = a.allocate(8192, 4096);
            w.reset(BlockRequest.Op.READ, 4096);
            w.addBuffer(back, 0, 8192);
            assertThat(ch.submit(w)).isZero();
            pollUntil(ch, 2);
            assertThat(back.get(ValueLayout.JAVA_BYTE, 1)).isEqualTo((byte) 7);
            assertThat(back.get(ValueLayout.JAVA_BYTE, 513)).isEqualTo((byte) (4097 * 7));
            // out of range: refused, no completion
            done.clear();
            w.reset(BlockRequest.Op.READ, (1 << 20) - 512);
            w.addBuffer(back, 0, 1024);
            assertThat(ch.submit(w)).isNegative();
            assertThat(ch.poll()).isZero();
            assertThat(done).isEmpty();
            // write zeroes reads back as zeros, and flush completes
            w.reset(BlockRequest.Op.WRITE_ZEROES, 4096);
            w.length = 1024;
            assertThat(ch.submit(w)).isZero();
            BlockRequest fl = new BlockRequest(1);
            fl.completion((r, st) -> done.add(new Done(r, st)));
            fl.reset(BlockRequest.Op.FLUSH, 0);
            assertThat(ch.submit(fl)).isZero();
            pollUntil(ch, 2);
            assertThat(done).extracting(Done::status).containsExactly(0, 0);
            file = Files.readAllBytes(f);
            for (int i = 0; i < 1024; i++) assertThat(file[4096 + i]).isZero();
            assertThat(file[4096 + 1025]).isEqualTo((byte) ((4096 + 513) * 7));
            ch.close();
        }
    }

    @Test
    void readOnlyRejectsWritesWithEROFS() throws Exception {
        Path f = dir.resolve("ro.img");
        Files.write(f, new byte[4096]);
        try (FileBlockDevice dev = new FileBlockDevice("ro", f.toString(), 512, true, null); Arena a = Arena.ofConfined()) {
            BlockChannel ch = dev.openChannel();
            BlockRequest w = new BlockRequest(1);
            w.completion((r, st) -> done.add(new Done(r, st)));
            w.reset(BlockRequest.Op.WRITE, 0);
            w.addBuffer(a.allocate(512), 0, 512);
            assertThat(ch.submit(w)).isZero();
            pollUntil(ch, 1);
            assertThat(done.get(0).status()).isEqualTo(-io.jvhost.sys.Errno.EROFS);
            ch.close();
        }
    }

    /** Polls on this (the owning) thread until {@code n} completions arrived; never more. */
    private void pollUntil(BlockChannel ch, int n) {
        org.awaitility.Awaitility.await().atMost(java.time.Duration.ofSeconds(20)).pollInSameThread()
                .pollInterval(java.time.Duration.ofMillis(1)).until(() -> {
                    ch.poll();
                    return done.size() >= n;
                });
        assertThat(done).hasSize(n);
        assertThat(ch.inFlight()).isZero();
    }

    @Test
    void missingAndTinyFilesAreClearErrors() throws Exception {
        assertThatThrownBy(() -> new FileBlockDevice("x", dir.resolve("nope").toString(), 512, false, null)).hasMessageContaining("No such file");
        Path tiny = dir.resolve("tiny");
        Files.write(tiny, new byte[100]);
        assertThatThrownBy(() -> new FileBlockDevice("x", tiny.toString(), 512, false, null)).hasMessageContaining("smaller than one");
    }
}
