package io.jvhost.scsi;

import io.jvhost.bdev.BlockChannel;
import io.jvhost.bdev.BlockDevice;
import io.jvhost.bdev.MallocBlockDevice;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;
import java.util.UUID;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Drives a target through the public API the way a transport does: one reusable task, buffers in
 * plain memory segments surrounded by guard bytes, completions from polling the channel.
 */
final class Harness implements AutoCloseable {
    static final UUID UUID_1 = UUID.fromString("0123abcd-4567-89ef-fedc-ba9876543210");
    static final int GUARD = 64;
    static final byte GUARD_BYTE = (byte) 0xA5;
    static final byte FILL_BYTE = (byte) 0xCC;

    final Arena arena = Arena.ofShared();
    final MallocBlockDevice malloc;
    final TestBdev bdev;
    final ScsiTarget target;
    final BlockChannel channel;
    final ScsiTask task;
    int completions;
    /** Splits every data buffer into this many scatter-gather entries (uneven sizes). */
    int splits = 1;
    /** LUN the commands are addressed to. */
    int lun = 0;

    Harness(long blocks, int blockSize) {
        this(blocks, blockSize, b -> {});
    }

    Harness(long blocks, int blockSize, java.util.function.Consumer<TestBdev> configure) {
        malloc = new MallocBlockDevice("malloc0", blocks, blockSize, UUID_1);
        bdev = new TestBdev(malloc);
        configure.accept(bdev);
        target = new ScsiTarget(0, "target0", bdev);
        channel = bdev.openChannel();
        task = new ScsiTask(64).completion(t -> completions++);
    }

    ScsiLun lun() {
        return target.lun(0);
    }

    int blockSize() {
        return bdev.blockSize();
    }

    /** The outcome of one command. */
    record Result(int status, byte[] sense, byte[] data, long transferred, long residual, boolean targetUnavailable) {
        int senseKey() {
            return sense.length == 0 ? 0 : sense[2] & 0x0F;
        }

        int asc() {
            return sense.length == 0 ? 0 : (sense[12] & 0xFF) << 8 | (sense[13] & 0xFF);
        }

        /** Data-in bytes actually transferred. */
        byte[] dataIn() {
            return Arrays.copyOf(data, (int) transferred);
        }

        Result assertGood() {
            assertThat(status).as("status, sense %s", hex(sense)).isEqualTo(ScsiStatus.GOOD);
            assertThat(sense).isEmpty();
            return this;
        }

        Result assertCheck(int key, int ascAscq) {
            assertThat(status).as("status").isEqualTo(ScsiStatus.CHECK_CONDITION);
            assertThat(sense).hasSize(18);
            assertThat(sense[0] & 0x7F).isEqualTo(0x70);
            assertThat(sense[7]).isEqualTo((byte) 10);
            assertThat(senseKey()).as("sense key, sense %s", hex(sense)).isEqualTo(key);
            assertThat(asc()).as("asc/ascq").isEqualTo(ascAscq);
            assertThat(transferred).isZero();
            return this;
        }

        /** ILLEGAL REQUEST, INVALID FIELD IN CDB with the field pointer on byte/bit (-1: no bit). */
        Result assertInvalidField(int fieldByte, int fieldBit) {
            assertCheck(ScsiSense.ILLEGAL_REQUEST, ScsiSense.INVALID_FIELD_IN_CDB);
            int sks = 0x80 | 0x40 | (fieldBit >= 0 ? 0x08 | fieldBit : 0);
            assertThat(sense[15] & 0xFF).as("SKSV/C-D/BPV/bit").isEqualTo(sks);
            assertThat((sense[16] & 0xFF) << 8 | (sense[17] & 0xFF)).as("field pointer").isEqualTo(fieldByte);
            return this;
        }

        Result assertInvalidParameter(int fieldByte) {
            assertCheck(ScsiSense.ILLEGAL_REQUEST, ScsiSense.INVALID_FIELD_IN_PARAMETER_LIST);
            assertThat(sense[15] & 0xFF).as("SKSV, C/D=0").isEqualTo(0x80);
            assertThat((sense[16] & 0xFF) << 8 | (sense[17] & 0xFF)).as("field pointer").isEqualTo(fieldByte);
            return this;
        }
    }

    static String hex(byte[] b) {
        StringBuilder sb = new StringBuilder();
        for (byte x : b) sb.append(String.format("%02x ", x));
        return sb.toString().trim();
    }

    Result none(byte[] cdb) {
        return run(cdb, ScsiTask.Direction.NONE, null, 0);
    }

    Result in(int len, byte[] cdb) {
        return run(cdb, ScsiTask.Direction.FROM_DEVICE, null, len);
    }

    Result out(byte[] data, byte[] cdb) {
        return run(cdb, ScsiTask.Direction.TO_DEVICE, data, data.length);
    }

    /**
     * Runs one command with a buffer of {@code len} bytes (filled with {@code data} for data-out,
     * with FILL_BYTE otherwise) between guard bytes, checks the guards and, unless data-in, that
     * the buffer was not written.
     */
    Result run(byte[] cdb, ScsiTask.Direction dir, byte[] data, int len) {
        MemorySegment seg = arena.allocate(len + 2L * GUARD);
        seg.fill(GUARD_BYTE);
        MemorySegment buf = seg.asSlice(GUARD, len);
        if (data != null) MemorySegment.copy(data, 0, buf, ValueLayout.JAVA_BYTE, 0, len);
        else buf.fill(FILL_BYTE);
        byte[] before = buf.toArray(ValueLayout.JAVA_BYTE);

        ScsiTask t = task.reset().cdb(cdb).lun(lun).tag(1).direction(dir);
        if (len > 0) addSplit(t, seg, GUARD, len);
        int before0 = completions;
        target.execute(t, channel);
        pollUntil(t);
        assertThat(completions).as("exactly one completion").isEqualTo(before0 + 1);

        for (long i = 0; i < GUARD; i++) {
            assertThat(seg.get(ValueLayout.JAVA_BYTE, i)).as("front guard %d", i).isEqualTo(GUARD_BYTE);
            assertThat(seg.get(ValueLayout.JAVA_BYTE, GUARD + len + i)).as("back guard %d", i).isEqualTo(GUARD_BYTE);
        }
        byte[] after = buf.toArray(ValueLayout.JAVA_BYTE);
        if (dir != ScsiTask.Direction.FROM_DEVICE) assertThat(after).as("data-out/none buffer untouched").isEqualTo(before);
        else if (t.dataTransferred() < len) {
            // bytes past the transferred length are untouched
            assertThat(Arrays.copyOfRange(after, (int) t.dataTransferred(), len))
                    .isEqualTo(Arrays.copyOfRange(before, (int) t.dataTransferred(), len));
        }
        return new Result(t.status(), Arrays.copyOf(t.senseBuffer(), t.senseLength()), after,
                t.dataTransferred(), t.residual(), t.targetUnavailable());
    }

    /** Adds [off, off+len) as {@link #splits} uneven scatter-gather entries. */
    void addSplit(ScsiTask t, MemorySegment seg, long off, long len) {
        int n = (int) Math.max(1, Math.min(splits, len));
        long pos = off, left = len;
        for (int i = 0; i < n; i++) {
            int rest = n - 1 - i;
            long piece = rest == 0 ? left
                    : Math.max(1, Math.min(left - rest, left / (n - i) + (i % 2 == 0 ? 3 : -3)));
            assertThat(t.addBuffer(seg, pos, piece)).isTrue();
            pos += piece;
            left -= piece;
        }
    }

    void pollUntil(ScsiTask t) {
        for (int i = 0; i < 100_000 && t.busy(); i++) {
            channel.poll();
            target.resubmitWaiting();
        }
        assertThat(t.busy()).as("task completed").isFalse();
    }

    /** Device contents. */
    byte[] blocks(long lba, int count) {
        return malloc.memory().asSlice(lba * blockSize(), (long) count * blockSize()).toArray(ValueLayout.JAVA_BYTE);
    }

    void fillBlocks(long lba, byte[] data) {
        MemorySegment.copy(data, 0, malloc.memory(), ValueLayout.JAVA_BYTE, lba * blockSize(), data.length);
    }

    static byte[] pattern(int len, int seed) {
        byte[] b = new byte[len];
        for (int i = 0; i < len; i++) b[i] = (byte) (i * 31 + seed * 7 + (i >>> 9));
        return b;
    }

    @Override
    public void close() {
        channel.close();
        bdev.close();
        arena.close();
    }

    // ---------------------------------------------------------------- CDB builders

    static byte[] cdb(int... bytes) {
        byte[] b = new byte[bytes.length];
        for (int i = 0; i < bytes.length; i++) b[i] = (byte) bytes[i];
        return b;
    }

    static void be(byte[] b, int off, int width, long v) {
        for (int i = width - 1; i >= 0; i--, v >>>= 8) b[off + i] = (byte) v;
    }

    /** Reads a big-endian unsigned field. */
    static long get(byte[] d, int off, int width) {
        long v = 0;
        for (int i = 0; i < width; i++) v = v << 8 | (d[off + i] & 0xFF);
        return v;
    }

    static byte[] rw6(int op, long lba, int len) {
        byte[] b = new byte[6];
        b[0] = (byte) op;
        be(b, 1, 3, lba);
        b[4] = (byte) len;
        return b;
    }

    static byte[] rw10(int op, long lba, int len, int byte1) {
        byte[] b = new byte[10];
        b[0] = (byte) op;
        b[1] = (byte) byte1;
        be(b, 2, 4, lba);
        be(b, 7, 2, len);
        return b;
    }

    static byte[] rw12(int op, long lba, long len) {
        byte[] b = new byte[12];
        b[0] = (byte) op;
        be(b, 2, 4, lba);
        be(b, 6, 4, len);
        return b;
    }

    static byte[] rw16(int op, long lba, long len, int byte1) {
        byte[] b = new byte[16];
        b[0] = (byte) op;
        b[1] = (byte) byte1;
        be(b, 2, 8, lba);
        be(b, 10, 4, len);
        return b;
    }

    static byte[] inquiry(int evpd, int page, int alloc) {
        byte[] b = cdb(ScsiOpcode.INQUIRY, evpd, page, 0, 0, 0);
        be(b, 3, 2, alloc);
        return b;
    }

    static byte[] modeSense6(int byte1, int pcPage, int subpage, int alloc) {
        return cdb(ScsiOpcode.MODE_SENSE_6, byte1, pcPage, subpage, alloc, 0);
    }

    static byte[] modeSense10(int byte1, int pcPage, int subpage, int alloc) {
        byte[] b = cdb(ScsiOpcode.MODE_SENSE_10, byte1, pcPage, subpage, 0, 0, 0, 0, 0, 0);
        be(b, 7, 2, alloc);
        return b;
    }

    static byte[] reportLuns(int select, long alloc) {
        byte[] b = new byte[12];
        b[0] = (byte) ScsiOpcode.REPORT_LUNS;
        b[2] = (byte) select;
        be(b, 6, 4, alloc);
        return b;
    }

    static byte[] readCapacity16(long alloc) {
        byte[] b = new byte[16];
        b[0] = (byte) ScsiOpcode.SERVICE_ACTION_IN_16;
        b[1] = ScsiOpcode.SAI_READ_CAPACITY_16;
        be(b, 10, 4, alloc);
        return b;
    }

    static byte[] unmap(int plen) {
        byte[] b = new byte[10];
        b[0] = (byte) ScsiOpcode.UNMAP;
        be(b, 7, 2, plen);
        return b;
    }

    /** An UNMAP parameter list with consistent header lengths. */
    static byte[] unmapList(long... lbaCountPairs) {
        int n = lbaCountPairs.length / 2;
        byte[] p = new byte[8 + 16 * n];
        be(p, 0, 2, 6 + 16L * n);
        be(p, 2, 2, 16L * n);
        for (int i = 0; i < n; i++) {
            be(p, 8 + 16 * i, 8, lbaCountPairs[2 * i]);
            be(p, 8 + 16 * i + 8, 4, lbaCountPairs[2 * i + 1]);
        }
        return p;
    }

    static byte[] compareAndWrite(long lba, int blocks, int byte1) {
        byte[] b = new byte[16];
        b[0] = (byte) ScsiOpcode.COMPARE_AND_WRITE;
        b[1] = (byte) byte1;
        be(b, 2, 8, lba);
        b[13] = (byte) blocks;
        return b;
    }
}
