package io.jvhost.scsi;

import io.jvhost.scsi.Harness.Result;
import io.jvhost.sys.Errno;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.Arrays;
import java.util.List;

import static io.jvhost.scsi.Harness.be;
import static io.jvhost.scsi.Harness.cdb;
import static io.jvhost.scsi.Harness.compareAndWrite;
import static io.jvhost.scsi.Harness.pattern;
import static io.jvhost.scsi.Harness.rw10;
import static io.jvhost.scsi.Harness.rw12;
import static io.jvhost.scsi.Harness.rw16;
import static io.jvhost.scsi.Harness.rw6;
import static io.jvhost.scsi.Harness.unmap;
import static io.jvhost.scsi.Harness.unmapList;
import static io.jvhost.scsi.ScsiOpcode.*;
import static org.assertj.core.api.Assertions.assertThat;

/** Block (SBC) commands against a RAM bdev. */
class ScsiSbcTest {
    private Harness h = new Harness(2048, 512);

    @AfterEach
    void close() {
        h.close();
    }

    private void reopen(java.util.function.Consumer<TestBdev> c) {
        h.close();
        h = new Harness(2048, 512, c);
    }

    // ---------------------------------------------------------------- READ / WRITE

    @ParameterizedTest
    @ValueSource(ints = {1, 3, 7})
    void writeThenReadBackAllCdbSizes(int splits) {
        h.splits = splits;
        byte[] a = pattern(8 * 512, 1), b = pattern(3 * 512, 2), c = pattern(256 * 512, 3), d = pattern(5 * 512, 4);
        h.out(a, rw10(WRITE_10, 10, 8, 0)).assertGood();
        h.out(b, rw6(WRITE_6, 100, 3)).assertGood();
        h.out(c, rw12(WRITE_12, 1000, 256)).assertGood();
        h.out(d, rw16(WRITE_16, 2043, 5, 0)).assertGood();
        assertThat(h.blocks(10, 8)).isEqualTo(a);
        assertThat(h.blocks(100, 3)).isEqualTo(b);
        assertThat(h.blocks(1000, 256)).isEqualTo(c);
        assertThat(h.blocks(2043, 5)).isEqualTo(d);

        Result r = h.in(8 * 512, rw16(READ_16, 10, 8, 0)).assertGood();
        assertThat(r.transferred()).isEqualTo(8 * 512);
        assertThat(r.residual()).isZero();
        assertThat(r.dataIn()).isEqualTo(a);
        assertThat(h.in(3 * 512, rw6(READ_6, 100, 3)).assertGood().dataIn()).isEqualTo(b);
        assertThat(h.in(256 * 512, rw10(READ_10, 1000, 256, 0)).assertGood().dataIn()).isEqualTo(c);
        assertThat(h.in(5 * 512, rw12(READ_12, 2043, 5)).assertGood().dataIn()).isEqualTo(d);
        assertThat(h.in(2 * 512, rw10(READ_10, 12, 2, 0)).assertGood().dataIn()).isEqualTo(Arrays.copyOfRange(a, 1024, 2048));
    }

    @Test
    void sixByteLengthZeroMeans256Blocks() {
        byte[] p = pattern(256 * 512, 9);
        h.fillBlocks(0, p);
        Result r = h.in(256 * 512, rw6(READ_6, 0, 0)).assertGood();
        assertThat(r.transferred()).isEqualTo(256 * 512);
        assertThat(r.dataIn()).isEqualTo(p);
        h.in(255 * 512, rw6(READ_6, 0, 0)).assertCheck(ScsiSense.ILLEGAL_REQUEST, ScsiSense.INVALID_FIELD_IN_CDB);
        byte[] q = pattern(256 * 512, 10);
        h.out(q, rw6(WRITE_6, 1792, 0)).assertGood();
        assertThat(h.blocks(1792, 256)).isEqualTo(q);
        h.in(256 * 512, rw6(READ_6, 1793, 0)).assertCheck(ScsiSense.ILLEGAL_REQUEST, ScsiSense.LBA_OUT_OF_RANGE);
        // 21-bit LBA: the top bits of byte 1 are not part of it
        h.in(512, cdb(READ_6, 0xE0, 0, 1, 1, 0)).assertGood();
    }

    @Test
    void transferLengthZeroIsGoodWithoutIo() {
        for (byte[] c : List.of(rw10(READ_10, 5, 0, 0), rw12(READ_12, 5, 0), rw16(READ_16, 5, 0, 0),
                rw10(READ_10, 2048, 0, 0))) {
            Result r = h.in(512, c).assertGood();
            assertThat(r.transferred()).isZero();
            assertThat(r.residual()).isEqualTo(512);
        }
        h.out(new byte[512], rw10(WRITE_10, 5, 0, 0)).assertGood();
        h.none(rw16(WRITE_16, 5, 0, 0)).assertGood();
        assertThat(h.bdev.ops).isEmpty();
    }

    @Test
    void lbaBoundaries() {
        h.in(512, rw10(READ_10, 2047, 1, 0)).assertGood();
        h.in(1024, rw10(READ_10, 2047, 2, 0)).assertCheck(ScsiSense.ILLEGAL_REQUEST, ScsiSense.LBA_OUT_OF_RANGE);
        h.in(512, rw10(READ_10, 2048, 1, 0)).assertCheck(ScsiSense.ILLEGAL_REQUEST, ScsiSense.LBA_OUT_OF_RANGE);
        h.in(512, rw10(READ_10, 2049, 0, 0)).assertCheck(ScsiSense.ILLEGAL_REQUEST, ScsiSense.LBA_OUT_OF_RANGE);
        h.in(512, rw10(READ_10, 0xFFFFFFFFL, 1, 0)).assertCheck(ScsiSense.ILLEGAL_REQUEST, ScsiSense.LBA_OUT_OF_RANGE);
        h.in(512, rw16(READ_16, -1L, 1, 0)).assertCheck(ScsiSense.ILLEGAL_REQUEST, ScsiSense.LBA_OUT_OF_RANGE);
        h.in(512, rw16(READ_16, Long.MAX_VALUE, 2, 0)).assertCheck(ScsiSense.ILLEGAL_REQUEST, ScsiSense.LBA_OUT_OF_RANGE);
        h.in(512, rw16(READ_16, 1, 0xFFFFFFFFL, 0)).assertCheck(ScsiSense.ILLEGAL_REQUEST, ScsiSense.LBA_OUT_OF_RANGE);
        h.out(new byte[1024], rw16(WRITE_16, 2047, 2, 0)).assertCheck(ScsiSense.ILLEGAL_REQUEST, ScsiSense.LBA_OUT_OF_RANGE);
        assertThat(h.bdev.ops).hasSize(1);
    }

    @Test
    void largerBufferLeavesResidualAndUntouchedTail() {
        h.fillBlocks(3, pattern(512, 5));
        Result r = h.in(1500, rw10(READ_10, 3, 1, 0)).assertGood(); // harness checks bytes past 512
        assertThat(r.transferred()).isEqualTo(512);
        assertThat(r.residual()).isEqualTo(988);
        assertThat(r.dataIn()).isEqualTo(pattern(512, 5));
        r = h.out(pattern(1500, 6), rw10(WRITE_10, 4, 2, 0)).assertGood();
        assertThat(r.residual()).isEqualTo(476);
        assertThat(h.blocks(4, 2)).isEqualTo(Arrays.copyOf(pattern(1500, 6), 1024));
    }

    @Test
    void smallerBufferIsRefusedWithoutIo() {
        h.in(1023, rw10(READ_10, 0, 2, 0)).assertCheck(ScsiSense.ILLEGAL_REQUEST, ScsiSense.INVALID_FIELD_IN_CDB);
        h.out(new byte[511], rw10(WRITE_10, 0, 1, 0)).assertCheck(ScsiSense.ILLEGAL_REQUEST, ScsiSense.INVALID_FIELD_IN_CDB);
        h.none(rw10(READ_10, 0, 1, 0)).assertCheck(ScsiSense.ILLEGAL_REQUEST, ScsiSense.INVALID_FIELD_IN_CDB);
        // wrong direction: a WRITE with data-in buffers, a READ with data-out buffers
        h.in(512, rw10(WRITE_10, 0, 1, 0)).assertCheck(ScsiSense.ILLEGAL_REQUEST, ScsiSense.INVALID_FIELD_IN_CDB);
        h.out(new byte[512], rw10(READ_10, 0, 1, 0)).assertCheck(ScsiSense.ILLEGAL_REQUEST, ScsiSense.INVALID_FIELD_IN_CDB);
        assertThat(h.bdev.ops).isEmpty();
        // the transport's expected transfer length caps the buffers
        ScsiTask t = h.task;
        java.lang.foreign.MemorySegment buf = h.arena.allocate(1024);
        t.reset().cdb(rw10(READ_10, 0, 2, 0)).direction(ScsiTask.Direction.FROM_DEVICE).expectedTransferLength(512);
        t.addBuffer(buf, 0, 1024);
        h.target.execute(t, h.channel);
        h.pollUntil(t);
        assertThat(t.status()).isEqualTo(ScsiStatus.CHECK_CONDITION);
    }

    @Test
    void protectionFieldsAreRejected() {
        h.in(512, rw10(READ_10, 0, 1, 0x20)).assertInvalidField(1, 7);
        h.out(new byte[512], rw10(WRITE_10, 0, 1, 0x40)).assertInvalidField(1, 7);
        byte[] c = rw12(READ_12, 0, 1);
        c[1] = (byte) 0x80;
        h.in(512, c).assertInvalidField(1, 7);
        h.in(512, rw16(READ_16, 0, 1, 0xE0)).assertInvalidField(1, 7);
        // DPO, FUA, RARC are accepted
        h.in(512, rw10(READ_10, 0, 1, 0x1C)).assertGood();
    }

    @Test
    void maximumTransferLength() {
        h.close();
        h = new Harness(16384, 512);
        h.in(8192 * 512, rw16(READ_16, 0, 8192, 0)).assertGood();
        h.in(8193 * 512, rw16(READ_16, 0, 8193, 0)).assertInvalidField(10, -1);
        h.in(8193 * 512, rw12(READ_12, 0, 8193)).assertInvalidField(6, -1);
        h.out(new byte[8193 * 512], rw10(WRITE_10, 0, 8193, 0)).assertInvalidField(7, -1);
    }

    @Test
    void readOnlyDeviceRefusesWrites() {
        reopen(b -> b.readOnly = true);
        h.fillBlocks(0, pattern(512, 1));
        h.in(512, rw10(READ_10, 0, 1, 0)).assertGood();
        h.out(new byte[512], rw10(WRITE_10, 0, 1, 0)).assertCheck(ScsiSense.DATA_PROTECT, ScsiSense.WRITE_PROTECTED);
        h.out(new byte[512], rw6(WRITE_6, 0, 1)).assertCheck(ScsiSense.DATA_PROTECT, ScsiSense.WRITE_PROTECTED);
        h.out(new byte[512], rw16(WRITE_16, 0, 1, 0)).assertCheck(ScsiSense.DATA_PROTECT, ScsiSense.WRITE_PROTECTED);
        h.out(unmapList(0, 1), unmap(24)).assertCheck(ScsiSense.DATA_PROTECT, ScsiSense.WRITE_PROTECTED);
        h.out(new byte[512], rw10(WRITE_SAME_10, 0, 1, 0)).assertCheck(ScsiSense.DATA_PROTECT, ScsiSense.WRITE_PROTECTED);
        h.out(new byte[1024], compareAndWrite(0, 1, 0)).assertCheck(ScsiSense.DATA_PROTECT, ScsiSense.WRITE_PROTECTED);
        assertThat(h.bdev.ops).hasSize(1);
        assertThat(h.blocks(0, 1)).isEqualTo(pattern(512, 1));
        // writes of zero blocks transfer nothing and are fine
        h.none(rw10(WRITE_10, 0, 0, 0)).assertGood();
    }

    @Test
    void fuaFlushesOnlyWithVolatileCache() {
        h.out(new byte[512], rw10(WRITE_10, 0, 1, 0x08)).assertGood();
        assertThat(h.bdev.ops).containsExactly("WRITE@0+512");
        reopen(b -> b.volatileCache = true);
        h.out(new byte[512], rw10(WRITE_10, 1, 1, 0x08)).assertGood();
        h.out(new byte[512], rw16(WRITE_16, 2, 1, 0x08)).assertGood();
        h.out(new byte[512], rw10(WRITE_10, 3, 1, 0)).assertGood();
        assertThat(h.bdev.ops).containsExactly("WRITE@512+512", "FLUSH@0+1048576", "WRITE@1024+512",
                "FLUSH@0+1048576", "WRITE@1536+512");
    }

    // ---------------------------------------------------------------- SYNCHRONIZE CACHE, VERIFY

    @Test
    void synchronizeCacheFlushes() {
        h.none(rw10(SYNCHRONIZE_CACHE_10, 0, 0, 0)).assertGood();
        h.none(rw16(SYNCHRONIZE_CACHE_16, 100, 10, 0)).assertGood();
        h.none(rw10(SYNCHRONIZE_CACHE_10, 0, 0, 0x02)).assertGood(); // IMMED
        assertThat(h.bdev.ops).containsExactly("FLUSH@0+1048576", "FLUSH@0+1048576", "FLUSH@0+1048576");
        h.none(rw10(SYNCHRONIZE_CACHE_10, 2048, 1, 0)).assertCheck(ScsiSense.ILLEGAL_REQUEST, ScsiSense.LBA_OUT_OF_RANGE);
        h.none(rw16(SYNCHRONIZE_CACHE_16, 2040, 9, 0)).assertCheck(ScsiSense.ILLEGAL_REQUEST, ScsiSense.LBA_OUT_OF_RANGE);
    }

    @Test
    void verifyWithoutByteCheckOnlyChecksTheRange() {
        h.none(rw10(VERIFY_10, 0, 2048, 0)).assertGood();
        h.none(rw16(VERIFY_16, 2047, 1, 0)).assertGood();
        h.none(rw16(VERIFY_16, 2047, 2, 0)).assertCheck(ScsiSense.ILLEGAL_REQUEST, ScsiSense.LBA_OUT_OF_RANGE);
        h.none(rw10(VERIFY_10, 0, 1, 0x04)).assertInvalidField(1, 2); // BYTCHK 10b reserved
        h.none(rw10(VERIFY_10, 0, 1, 0x20)).assertInvalidField(1, 7); // VRPROTECT
        assertThat(h.bdev.ops).isEmpty();
    }

    @Test
    void verifyByteCheckComparesWithDataOut() {
        byte[] p = pattern(300 * 512, 3); // 300 blocks: 3 bounce-buffer chunks
        h.fillBlocks(100, p);
        h.splits = 5;
        Result r = h.out(p, rw10(VERIFY_10, 100, 300, 0x02)).assertGood();
        assertThat(r.transferred()).isEqualTo(p.length);
        byte[] q = p.clone();
        q[200 * 512 + 77] ^= 1;
        r = h.out(q, rw16(VERIFY_16, 100, 300, 0x02));
        r.assertCheck(ScsiSense.MISCOMPARE, ScsiSense.MISCOMPARE_DURING_VERIFY);
        assertThat(r.sense()[0] & 0xFF).as("VALID").isEqualTo(0xF0);
        assertThat(Harness.get(r.sense(), 3, 4)).as("INFORMATION").isEqualTo(200 * 512 + 77);
        h.out(Arrays.copyOf(p, p.length - 1), rw10(VERIFY_10, 100, 300, 0x02))
                .assertCheck(ScsiSense.ILLEGAL_REQUEST, ScsiSense.INVALID_FIELD_IN_CDB);
    }

    @Test
    void verifyByteCheckOneBlockAgainstEach() {
        byte[] blk = pattern(512, 8);
        for (int i = 0; i < 200; i++) h.fillBlocks(10 + i, blk);
        h.out(blk, rw10(VERIFY_10, 10, 200, 0x06)).assertGood();
        h.malloc.memory().set(java.lang.foreign.ValueLayout.JAVA_BYTE, (10 + 150) * 512L + 5, (byte) ~blk[5]);
        Result r = h.out(blk, rw10(VERIFY_10, 10, 200, 0x06));
        r.assertCheck(ScsiSense.MISCOMPARE, ScsiSense.MISCOMPARE_DURING_VERIFY);
        assertThat(Harness.get(r.sense(), 3, 4)).isEqualTo(150 * 512 + 5);
    }

    // ---------------------------------------------------------------- UNMAP

    @Test
    void unmapDescriptors() {
        h.fillBlocks(0, pattern(2048 * 512, 1));
        byte[] list = unmapList(10, 5, 100, 0, 2040, 8);
        Result r = h.out(list, unmap(list.length)).assertGood();
        assertThat(r.transferred()).isEqualTo(list.length);
        assertThat(h.bdev.ops).containsExactly("UNMAP@5120+2560", "UNMAP@1044480+4096");
        assertThat(h.blocks(10, 5)).containsOnly(0);
        assertThat(h.blocks(2040, 8)).containsOnly(0);
        assertThat(h.blocks(15, 1)).isEqualTo(Arrays.copyOfRange(pattern(2048 * 512, 1), 15 * 512, 16 * 512));
    }

    @Test
    void unmapTolerableLists() {
        h.out(new byte[0], unmap(0)).assertGood();
        h.out(unmapList(), unmap(8)).assertGood();
        byte[] partial = Arrays.copyOf(unmapList(1, 1), 8 + 16 + 8);
        be(partial, 0, 2, 30);
        be(partial, 2, 2, 24); // a trailing partial descriptor is ignored
        h.out(partial, unmap(partial.length)).assertGood();
        assertThat(h.bdev.ops).containsExactly("UNMAP@512+512");
    }

    @Test
    void unmapBadLists() {
        h.out(new byte[4], unmap(4)).assertCheck(ScsiSense.ILLEGAL_REQUEST, ScsiSense.PARAMETER_LIST_LENGTH_ERROR);
        h.out(unmapList(0, 1), unmap(40)).assertCheck(ScsiSense.ILLEGAL_REQUEST, ScsiSense.PARAMETER_LIST_LENGTH_ERROR);
        h.none(unmap(24)).assertCheck(ScsiSense.ILLEGAL_REQUEST, ScsiSense.PARAMETER_LIST_LENGTH_ERROR);
        byte[] p = unmapList(0, 1);
        be(p, 2, 2, 32); // block descriptor data length past the list
        h.out(p, unmap(p.length)).assertInvalidParameter(2);
        p = unmapList(0, 1);
        be(p, 0, 2, 10); // unmap data length too small for the descriptors
        h.out(p, unmap(p.length)).assertInvalidParameter(0);
        p = unmapList(0, 1, 2000, 49);
        h.out(p, unmap(p.length)).assertCheck(ScsiSense.ILLEGAL_REQUEST, ScsiSense.LBA_OUT_OF_RANGE);
        p = unmapList(0, 1, -1L, 1);
        h.out(p, unmap(p.length)).assertCheck(ScsiSense.ILLEGAL_REQUEST, ScsiSense.LBA_OUT_OF_RANGE);
        long[] many = new long[2 * 257];
        for (int i = 0; i < 257; i++) many[2 * i] = i;
        p = unmapList(many);
        h.out(p, unmap(p.length)).assertInvalidParameter(2);
        h.out(unmapList(0, 1), unmap(24).clone()).assertGood();
        byte[] anchor = unmap(24);
        anchor[1] = 1;
        h.out(unmapList(0, 1), anchor).assertInvalidField(1, 0);
        assertThat(h.bdev.ops).as("nothing unmapped by a bad list").containsExactly("UNMAP@0+512");
    }

    @Test
    void unmapLbaCountLimit() {
        h.close();
        h = new Harness(2048, 512);
        long max = h.lun().maxUnmapBlocks();
        assertThat(max).isEqualTo(2097152);
        // a count above MAXIMUM UNMAP LBA COUNT is refused before its range is looked at
        byte[] p = unmapList(0, max + 1);
        h.out(p, unmap(p.length)).assertInvalidParameter(16);
        assertThat(h.bdev.ops).isEmpty();
    }

    @Test
    void unmapUnsupported() {
        reopen(b -> b.unmap = false);
        h.out(unmapList(0, 1), unmap(24)).assertCheck(ScsiSense.ILLEGAL_REQUEST, ScsiSense.INVALID_COMMAND_OPERATION_CODE);
    }

    // ---------------------------------------------------------------- WRITE SAME

    @Test
    void writeSameZeroesAndUnmap() {
        h.fillBlocks(0, pattern(2048 * 512, 2));
        h.out(new byte[512], rw10(WRITE_SAME_10, 10, 20, 0)).assertGood();
        h.out(new byte[512], rw16(WRITE_SAME_16, 100, 30, 0x08)).assertGood();
        h.out(new byte[512], rw10(WRITE_SAME_10, 200, 1, 0x08)).assertGood();
        h.none(rw16(WRITE_SAME_16, 300, 2, 0x01)).assertGood(); // NDOB
        assertThat(h.bdev.ops).containsExactly("WRITE_ZEROES@5120+10240", "UNMAP@51200+15360",
                "UNMAP@102400+512", "WRITE_ZEROES@153600+1024");
        assertThat(h.blocks(10, 20)).containsOnly(0);
        assertThat(h.blocks(100, 30)).containsOnly(0);
        assertThat(h.blocks(300, 2)).containsOnly(0);
        assertThat(h.blocks(30, 1)).isNotEqualTo(new byte[512]);
    }

    @Test
    void writeSamePatternIsWrittenToEveryBlock() {
        byte[] blk = pattern(512, 4);
        h.splits = 3;
        Result r = h.out(blk, rw16(WRITE_SAME_16, 500, 300, 0)).assertGood();
        assertThat(r.transferred()).isEqualTo(512);
        for (int i = 0; i < 300; i++) assertThat(h.blocks(500 + i, 1)).as("block %d", i).isEqualTo(blk);
        assertThat(h.blocks(800, 1)).containsOnly(0);
        assertThat(h.bdev.ops).containsExactly("WRITE@256000+65536", "WRITE@321536+65536", "WRITE@387072+22528");
        // UNMAP bit without unmap support, and zeroes without write-zeroes support: written
        reopen(b -> {
            b.unmap = false;
            b.writeZeroes = false;
        });
        h.fillBlocks(0, pattern(4 * 512, 1));
        h.out(new byte[512], rw10(WRITE_SAME_10, 0, 4, 0x08)).assertGood();
        assertThat(h.blocks(0, 4)).containsOnly(0);
        assertThat(h.bdev.ops).containsExactly("WRITE@0+2048");
    }

    @Test
    void writeSameBadFields() {
        h.out(new byte[512], rw10(WRITE_SAME_10, 0, 0, 0)).assertInvalidField(7, -1);   // WSNZ
        h.out(new byte[512], rw16(WRITE_SAME_16, 0, 0, 0)).assertInvalidField(10, -1);
        h.out(new byte[512], rw10(WRITE_SAME_10, 0, 1, 0x10)).assertInvalidField(1, 4); // ANCHOR
        h.out(new byte[512], rw10(WRITE_SAME_10, 0, 1, 0x04)).assertInvalidField(1, 2); // PBDATA
        h.out(new byte[512], rw10(WRITE_SAME_10, 0, 1, 0x02)).assertInvalidField(1, 1); // LBDATA
        h.out(new byte[512], rw16(WRITE_SAME_16, 0, 1, 0x20)).assertInvalidField(1, 7); // WRPROTECT
        h.out(new byte[512], rw10(WRITE_SAME_10, 2040, 9, 0)).assertCheck(ScsiSense.ILLEGAL_REQUEST, ScsiSense.LBA_OUT_OF_RANGE);
        h.out(new byte[511], rw10(WRITE_SAME_10, 0, 1, 0)).assertCheck(ScsiSense.ILLEGAL_REQUEST, ScsiSense.INVALID_FIELD_IN_CDB);
        h.none(rw10(WRITE_SAME_10, 0, 1, 0x01)).assertCheck(ScsiSense.ILLEGAL_REQUEST, ScsiSense.INVALID_FIELD_IN_CDB);
        assertThat(h.bdev.ops).isEmpty();
    }

    // ---------------------------------------------------------------- COMPARE AND WRITE

    @Test
    void compareAndWriteMatchWrites() {
        byte[] old = pattern(1024, 1), neu = pattern(1024, 2);
        h.fillBlocks(7, old);
        byte[] data = new byte[2048];
        System.arraycopy(old, 0, data, 0, 1024);
        System.arraycopy(neu, 0, data, 1024, 1024);
        h.splits = 3;
        Result r = h.out(data, compareAndWrite(7, 2, 0)).assertGood();
        assertThat(r.transferred()).isEqualTo(2048);
        assertThat(h.blocks(7, 2)).isEqualTo(neu);
        assertThat(h.bdev.ops).containsExactly("READ@3584+1024", "WRITE@3584+1024");
    }

    @Test
    void compareAndWriteMismatchReportsOffsetAndWritesNothing() {
        byte[] old = pattern(512, 1);
        h.fillBlocks(7, old);
        byte[] data = new byte[1024];
        System.arraycopy(old, 0, data, 0, 512);
        data[300] ^= 0x40;
        Arrays.fill(data, 512, 1024, (byte) 0x77);
        Result r = h.out(data, compareAndWrite(7, 1, 0));
        r.assertCheck(ScsiSense.MISCOMPARE, ScsiSense.MISCOMPARE_DURING_VERIFY);
        assertThat(r.sense()[0] & 0xFF).as("VALID").isEqualTo(0xF0);
        assertThat(Arrays.copyOfRange(r.sense(), 3, 7)).as("INFORMATION").isEqualTo(cdb(0, 0, 0x01, 0x2C));
        assertThat(h.blocks(7, 1)).isEqualTo(old);
        assertThat(h.bdev.ops).containsExactly("READ@3584+512");
    }

    @Test
    void compareAndWriteEdges() {
        h.out(new byte[0], compareAndWrite(7, 0, 0)).assertGood();
        h.out(new byte[129 * 1024], compareAndWrite(0, 129, 0)).assertInvalidField(13, -1);
        h.out(new byte[1023], compareAndWrite(0, 1, 0)).assertCheck(ScsiSense.ILLEGAL_REQUEST, ScsiSense.INVALID_FIELD_IN_CDB);
        h.out(new byte[1024], compareAndWrite(2048, 1, 0)).assertCheck(ScsiSense.ILLEGAL_REQUEST, ScsiSense.LBA_OUT_OF_RANGE);
        h.out(new byte[1024], compareAndWrite(0, 1, 0x20)).assertInvalidField(1, 7);
        assertThat(h.bdev.ops).isEmpty();
        h.out(new byte[128 * 1024], compareAndWrite(0, 128, 0)).assertGood();
        reopen(b -> b.volatileCache = true);
        h.out(new byte[1024], compareAndWrite(0, 1, 0x08)).assertGood();
        assertThat(h.bdev.ops).containsExactly("READ@0+512", "WRITE@0+512", "FLUSH@0+1048576");
    }

    // ---------------------------------------------------------------- block layer errors

    @Test
    void blockErrorsMapToSense() {
        h.bdev.completionError = -Errno.EIO;
        h.in(512, rw10(READ_10, 0, 1, 0)).assertCheck(ScsiSense.MEDIUM_ERROR, ScsiSense.UNRECOVERED_READ_ERROR);
        h.out(new byte[512], rw10(WRITE_10, 0, 1, 0)).assertCheck(ScsiSense.MEDIUM_ERROR, ScsiSense.WRITE_ERROR);
        h.bdev.completionError = -Errno.ENOSPC;
        h.out(new byte[512], rw10(WRITE_10, 0, 1, 0)).assertCheck(ScsiSense.DATA_PROTECT, ScsiSense.SPACE_ALLOCATION_FAILED_WRITE_PROTECT);
        h.bdev.completionError = -Errno.EROFS;
        h.out(new byte[512], rw10(WRITE_10, 0, 1, 0)).assertCheck(ScsiSense.DATA_PROTECT, ScsiSense.WRITE_PROTECTED);
        h.bdev.completionError = -Errno.EINVAL;
        h.none(rw10(SYNCHRONIZE_CACHE_10, 0, 0, 0)).assertCheck(ScsiSense.HARDWARE_ERROR, ScsiSense.INTERNAL_TARGET_FAILURE);
        h.bdev.completionError = -Errno.EIO;
        byte[] list = unmapList(0, 1, 5, 1);
        h.out(list, unmap(list.length)).assertCheck(ScsiSense.MEDIUM_ERROR, ScsiSense.WRITE_ERROR);
        h.bdev.completionError = 0;

        h.bdev.submitError = -Errno.EINVAL;
        h.in(512, rw10(READ_10, 0, 1, 0)).assertCheck(ScsiSense.HARDWARE_ERROR, ScsiSense.INTERNAL_TARGET_FAILURE);
        h.bdev.submitError = 0;
        h.in(512, rw10(READ_10, 0, 1, 0)).assertGood();
        assertThat(h.lun().inFlight()).isZero();
        assertThat(h.target.inFlight()).isZero();
    }

    @Test
    void backPressureFromTheBlockLayerIsRetriedNotReportedAsBusy() {
        h.bdev.busySubmitsLeft = 3;
        h.bdev.ops.clear();
        long before = h.lun().busyRetries();
        Result r = h.in(512, rw10(READ_10, 0, 1, 0));
        r.assertGood();
        assertThat(r.transferred()).isEqualTo(512);
        assertThat(h.bdev.ops).as("submitted until the channel took it").hasSize(4);
        assertThat(h.lun().busyRetries() - before).isEqualTo(1);
        assertThat(h.lun().tasksWaitingForRoom()).isFalse();
        assertThat(h.lun().inFlight()).isZero();
    }

    @Test
    void mediaCommandWithoutChannelFailsCleanly() {
        ScsiTask t = h.task;
        java.lang.foreign.MemorySegment buf = h.arena.allocate(512);
        t.reset().cdb(rw10(READ_10, 0, 1, 0)).direction(ScsiTask.Direction.FROM_DEVICE).addBuffer(buf, 0, 512);
        h.target.execute(t, null);
        assertThat(t.busy()).isFalse();
        assertThat(t.status()).isEqualTo(ScsiStatus.CHECK_CONDITION);
        assertThat(t.senseKey()).isEqualTo(ScsiSense.HARDWARE_ERROR);
    }
}
