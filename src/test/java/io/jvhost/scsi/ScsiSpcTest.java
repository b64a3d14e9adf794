package io.jvhost.scsi;

import io.jvhost.bdev.NullBlockDevice;
import io.jvhost.scsi.Harness.Result;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;

import static io.jvhost.scsi.Harness.cdb;
import static io.jvhost.scsi.Harness.hex;
import static io.jvhost.scsi.Harness.inquiry;
import static io.jvhost.scsi.Harness.modeSense10;
import static io.jvhost.scsi.Harness.modeSense6;
import static io.jvhost.scsi.Harness.readCapacity16;
import static io.jvhost.scsi.Harness.reportLuns;
import static org.assertj.core.api.Assertions.assertThat;

/** Primary (SPC) commands and the generic CDB checks, byte by byte. */
class ScsiSpcTest {
    private Harness h = new Harness(2048, 512);

    @AfterEach
    void close() {
        h.close();
    }

    private static byte[] bytes(int... v) {
        return cdb(v);
    }

    private static byte[] ascii(String s) {
        return s.getBytes(StandardCharsets.US_ASCII);
    }

    @Test
    void testUnitReadyAndStartStopAreGood() {
        h.none(cdb(0, 0, 0, 0, 0, 0)).assertGood();
        h.none(cdb(ScsiOpcode.START_STOP_UNIT, 0, 0, 0, 1, 0)).assertGood();
        h.none(cdb(ScsiOpcode.START_STOP_UNIT, 1, 0, 0, 0, 0)).assertGood();
    }

    @Test
    void unknownAndUnsupportedOpcodes() {
        for (int op : new int[] {0xFF, 0x7F, 0x5E, 0x5F, 0x4D, 0xA3, 0x85, 0xA1, 0x16, 0x17, 0x04}) {
            byte[] c = new byte[16];
            c[0] = (byte) op;
            h.in(64, c).assertCheck(ScsiSense.ILLEGAL_REQUEST, ScsiSense.INVALID_COMMAND_OPERATION_CODE);
        }
    }

    @Test
    void shortCdbIsRejected() {
        h.in(512, cdb(ScsiOpcode.READ_10, 0, 0, 0)).assertCheck(ScsiSense.ILLEGAL_REQUEST, ScsiSense.INVALID_FIELD_IN_CDB);
        h.none(new byte[0]).assertCheck(ScsiSense.ILLEGAL_REQUEST, ScsiSense.INVALID_FIELD_IN_CDB);
    }

    @Test
    void nacaAndLinkBitsInControlByteAreRejected() {
        h.none(cdb(0, 0, 0, 0, 0, 0x04)).assertInvalidField(5, 2);
        h.none(cdb(0, 0, 0, 0, 0, 0x01)).assertInvalidField(5, 0);
        h.in(512, Harness.rw10(ScsiOpcode.READ_10, 0, 1, 0) .clone()).assertGood();
        byte[] r10 = Harness.rw10(ScsiOpcode.READ_10, 0, 1, 0);
        r10[9] = 0x04;
        h.in(512, r10).assertInvalidField(9, 2);
        byte[] r16 = Harness.rw16(ScsiOpcode.READ_16, 0, 1, 0);
        r16[15] = 0x04;
        h.in(512, r16).assertInvalidField(15, 2);
    }

    @Test
    void standardInquiryByteByByte() {
        Result r = h.in(96, inquiry(0, 0, 96)).assertGood();
        assertThat(r.transferred()).isEqualTo(96);
        assertThat(r.residual()).isZero();
        byte[] d = r.dataIn();
        assertThat(d[0]).as("PQ 0, type 0 disk").isEqualTo((byte) 0);
        assertThat(d[1]).as("RMB").isEqualTo((byte) 0);
        assertThat(d[2]).as("VERSION SPC-4").isEqualTo((byte) 0x06);
        assertThat(d[3]).as("HISUP, RDF 2").isEqualTo((byte) 0x12);
        assertThat(d[4] & 0xFF).as("ADDITIONAL LENGTH").isEqualTo(91);
        assertThat(d[5]).isEqualTo((byte) 0);
        assertThat(d[6]).isEqualTo((byte) 0);
        assertThat(d[7]).as("CMDQUE").isEqualTo((byte) 0x02);
        assertThat(Arrays.copyOfRange(d, 8, 16)).isEqualTo(ascii("JVHOST  "));
        assertThat(Arrays.copyOfRange(d, 16, 32)).isEqualTo(ascii("Malloc disk     "));
        assertThat(Arrays.copyOfRange(d, 32, 36)).isEqualTo(ascii("0001"));
        assertThat(Arrays.copyOfRange(d, 36, 58)).containsOnly(0);
        assertThat(Arrays.copyOfRange(d, 58, 64)).isEqualTo(bytes(0x00, 0xA0, 0x04, 0x60, 0x04, 0xC0));
        assertThat(Arrays.copyOfRange(d, 64, 96)).containsOnly(0);
    }

    @Test
    void inquiryProductNameIsPaddedTruncatedAndSanitized() {
        h.close();
        h = new Harness(64, 512, b -> b.product = "A very long product name\u00e9");
        byte[] d = h.in(36, inquiry(0, 0, 36)).assertGood().dataIn();
        assertThat(Arrays.copyOfRange(d, 16, 32)).isEqualTo(ascii("A very long prod"));
        h.close();
        h = new Harness(64, 512, b -> b.product = "x\u00e9\n");
        d = h.in(36, inquiry(0, 0, 36)).assertGood().dataIn();
        assertThat(Arrays.copyOfRange(d, 16, 32)).isEqualTo(ascii("x__             "));
    }

    @Test
    void inquiryAllocationLengthAndBufferTruncation() {
        Result r = h.in(96, inquiry(0, 0, 36)).assertGood();
        assertThat(r.transferred()).isEqualTo(36);
        assertThat(r.residual()).isEqualTo(60);
        assertThat(r.dataIn()[4] & 0xFF).as("ADDITIONAL LENGTH is not truncated").isEqualTo(91);

        r = h.in(50, inquiry(0, 0, 255)).assertGood();
        assertThat(r.transferred()).isEqualTo(50);
        assertThat(r.residual()).isZero();

        r = h.in(300, inquiry(0, 0, 255)).assertGood();
        assertThat(r.transferred()).isEqualTo(96);
        assertThat(r.residual()).isEqualTo(204);

        r = h.in(96, inquiry(0, 0, 0)).assertGood();
        assertThat(r.transferred()).isZero();
        assertThat(r.residual()).isEqualTo(96);

        r = h.in(5, inquiry(0, 0, 0xFFFF)).assertGood();
        assertThat(r.transferred()).isEqualTo(5);

        r = h.none(inquiry(0, 0, 96)).assertGood();
        assertThat(r.transferred()).isZero();
    }

    @Test
    void inquiryBadFields() {
        h.in(96, inquiry(0x02, 0, 96)).assertInvalidField(1, 1);      // CmdDt
        h.in(96, inquiry(0x03, 0x80, 96)).assertInvalidField(1, 1);
        h.in(96, inquiry(0, 0x80, 96)).assertInvalidField(2, -1);     // page without EVPD
        for (int page : new int[] {0x01, 0x81, 0x86, 0x89, 0xB3, 0xC0, 0xFF}) {
            h.in(96, inquiry(1, page, 96)).assertInvalidField(2, -1);
        }
    }

    @Test
    void vpdSupportedPages() {
        Result r = h.in(255, inquiry(1, 0x00, 255)).assertGood();
        assertThat(r.dataIn()).isEqualTo(bytes(0, 0, 0, 6, 0x00, 0x80, 0x83, 0xB0, 0xB1, 0xB2));
    }

    @Test
    void vpdUnitSerialNumber() {
        byte[] d = h.in(255, inquiry(1, 0x80, 255)).assertGood().dataIn();
        assertThat(Arrays.copyOfRange(d, 0, 4)).isEqualTo(bytes(0, 0x80, 0, 32));
        assertThat(new String(d, 4, d.length - 4, StandardCharsets.US_ASCII)).isEqualTo("0123abcd456789effedcba9876543210");
        assertThat(h.lun().serial()).isEqualTo("0123abcd456789effedcba9876543210");
    }

    @Test
    void vpdDeviceIdentification() {
        byte[] d = h.in(255, inquiry(1, 0x83, 255)).assertGood().dataIn();
        assertThat(d).hasSize(76);
        assertThat(Arrays.copyOfRange(d, 0, 4)).isEqualTo(bytes(0, 0x83, 0, 72));
        // NAA 6 (IEEE Registered Extended): 6 | company id 024A56h | 36 + 64 bits from the UUID
        assertThat(Arrays.copyOfRange(d, 4, 24)).as(hex(d)).isEqualTo(bytes(
                0x01, 0x03, 0x00, 0x10,
                0x60, 0x24, 0xA5, 0x60, 0x12, 0x3A, 0xBC, 0xD4,
                0xFE, 0xDC, 0xBA, 0x98, 0x76, 0x54, 0x32, 0x10));
        // T10 vendor identification
        assertThat(Arrays.copyOfRange(d, 24, 28)).isEqualTo(bytes(0x02, 0x01, 0x00, 40));
        assertThat(new String(d, 28, 40, StandardCharsets.US_ASCII)).isEqualTo("JVHOST  0123abcd456789effedcba9876543210");
        // relative target port 1
        assertThat(Arrays.copyOfRange(d, 68, 76)).isEqualTo(bytes(0x01, 0x14, 0x00, 0x04, 0, 0, 0, 1));
    }

    @Test
    void vpdDeviceIdentificationIsStableAndPerUuid() {
        byte[] a = h.in(255, inquiry(1, 0x83, 255)).dataIn();
        h.close();
        h = new Harness(2048, 512);
        assertThat(h.in(255, inquiry(1, 0x83, 255)).dataIn()).isEqualTo(a);
        ScsiTarget other = new ScsiTarget(1, "t1", new NullBlockDevice("n", 8, 512, java.util.UUID.randomUUID()));
        ScsiTask t = new ScsiTask(4).completion(x -> {});
        java.lang.foreign.MemorySegment buf = h.arena.allocate(255);
        t.reset().cdb(inquiry(1, 0x83, 255)).direction(ScsiTask.Direction.FROM_DEVICE).addBuffer(buf, 0, 255);
        other.execute(t, null);
        assertThat(t.status()).isEqualTo(ScsiStatus.GOOD);
        assertThat(buf.asSlice(8, 16).toArray(java.lang.foreign.ValueLayout.JAVA_BYTE))
                .isNotEqualTo(Arrays.copyOfRange(a, 8, 24));
    }

    @Test
    void vpdBlockLimits() {
        byte[] d = h.in(255, inquiry(1, 0xB0, 255)).assertGood().dataIn();
        assertThat(d).hasSize(64);
        assertThat(Arrays.copyOfRange(d, 0, 4)).isEqualTo(bytes(0, 0xB0, 0, 0x3C));
        assertThat(d[4]).as("WSNZ").isEqualTo((byte) 1);
        assertThat(d[5] & 0xFF).as("MAXIMUM COMPARE AND WRITE LENGTH").isEqualTo(128);
        assertThat(be(d, 6, 2)).as("OPTIMAL TRANSFER LENGTH GRANULARITY").isEqualTo(8);
        assertThat(be(d, 8, 4)).as("MAXIMUM TRANSFER LENGTH").isEqualTo(8192);
        assertThat(be(d, 12, 4)).as("OPTIMAL TRANSFER LENGTH").isEqualTo(8192);
        assertThat(be(d, 16, 4)).isZero();
        assertThat(be(d, 20, 4)).as("MAXIMUM UNMAP LBA COUNT").isEqualTo(2097152);
        assertThat(be(d, 24, 4)).as("MAXIMUM UNMAP BLOCK DESCRIPTOR COUNT").isEqualTo(256);
        assertThat(be(d, 28, 4)).as("OPTIMAL UNMAP GRANULARITY").isEqualTo(8);
        assertThat(be(d, 32, 4)).as("UGAVALID, alignment 0").isEqualTo(0x80000000L);
        assertThat(be(d, 36, 8)).as("MAXIMUM WRITE SAME LENGTH").isEqualTo(2097152);
        assertThat(Arrays.copyOfRange(d, 44, 64)).containsOnly(0);
        assertThat(h.lun().maxTransferBlocks()).isEqualTo(8192);
    }

    @Test
    void vpdBlockLimitsWithoutUnmapAnd4kBlocks() {
        h.close();
        h = new Harness(256, 4096, b -> b.unmap = false);
        byte[] d = h.in(255, inquiry(1, 0xB0, 255)).assertGood().dataIn();
        assertThat(d[5] & 0xFF).isEqualTo(16);
        assertThat(be(d, 6, 2)).isEqualTo(1);
        assertThat(be(d, 8, 4)).isEqualTo(1024);
        assertThat(Arrays.copyOfRange(d, 20, 36)).containsOnly(0);
        assertThat(be(d, 36, 8)).isEqualTo(262144);
    }

    @Test
    void vpdBlockDeviceCharacteristics() {
        byte[] d = h.in(255, inquiry(1, 0xB1, 255)).assertGood().dataIn();
        assertThat(d).hasSize(64);
        assertThat(Arrays.copyOfRange(d, 0, 8)).isEqualTo(bytes(0, 0xB1, 0, 0x3C, 0, 1, 0, 0));
        assertThat(Arrays.copyOfRange(d, 8, 64)).containsOnly(0);
    }

    @Test
    void vpdLogicalBlockProvisioning() {
        assertThat(h.in(255, inquiry(1, 0xB2, 255)).assertGood().dataIn())
                .isEqualTo(bytes(0, 0xB2, 0, 4, 0, 0xE0, 0x02, 0));
        h.close();
        h = new Harness(64, 512, b -> b.unmap = false);
        assertThat(h.in(255, inquiry(1, 0xB2, 255)).assertGood().dataIn())
                .isEqualTo(bytes(0, 0xB2, 0, 4, 0, 0, 0, 0));
    }

    @Test
    void vpdTruncatedToAllocationLength() {
        Result r = h.in(255, inquiry(1, 0x83, 10)).assertGood();
        assertThat(r.transferred()).isEqualTo(10);
        assertThat(r.residual()).isEqualTo(245);
        assertThat(Arrays.copyOfRange(r.dataIn(), 0, 4)).isEqualTo(bytes(0, 0x83, 0, 72));
    }

    @Test
    void reportLunsListsLun0() {
        Result r = h.in(64, reportLuns(0, 64)).assertGood();
        assertThat(r.dataIn()).isEqualTo(bytes(0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0));
        assertThat(r.residual()).isEqualTo(48);
        assertThat(h.in(64, reportLuns(2, 64)).assertGood().dataIn()).hasSize(16);
        assertThat(h.in(64, reportLuns(1, 64)).assertGood().dataIn()).isEqualTo(new byte[8]);
        assertThat(h.in(64, reportLuns(0, 4)).assertGood().dataIn()).isEqualTo(bytes(0, 0, 0, 8));
        h.in(64, reportLuns(3, 64)).assertInvalidField(2, -1);
        h.in(64, reportLuns(0x10, 64)).assertInvalidField(2, -1);
    }

    @Test
    void requestSense() {
        Result r = h.in(252, cdb(ScsiOpcode.REQUEST_SENSE, 0, 0, 0, 252, 0)).assertGood();
        assertThat(r.dataIn()).isEqualTo(bytes(0x70, 0, 0, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0));
        r = h.in(252, cdb(ScsiOpcode.REQUEST_SENSE, 1, 0, 0, 252, 0)).assertGood();
        assertThat(r.dataIn()).as("descriptor format").isEqualTo(bytes(0x72, 0, 0, 0, 0, 0, 0, 0));
        r = h.in(252, cdb(ScsiOpcode.REQUEST_SENSE, 0, 0, 0, 8, 0)).assertGood();
        assertThat(r.transferred()).isEqualTo(8);
    }

    @Test
    void readCapacity10Data() {
        Result r = h.in(8, cdb(ScsiOpcode.READ_CAPACITY_10, 0, 0, 0, 0, 0, 0, 0, 0, 0)).assertGood();
        assertThat(r.dataIn()).isEqualTo(bytes(0, 0, 0x07, 0xFF, 0, 0, 0x02, 0));
        h.in(8, cdb(ScsiOpcode.READ_CAPACITY_10, 0, 0, 0, 0, 1, 0, 0, 0, 0)).assertInvalidField(2, -1);
        h.in(8, cdb(ScsiOpcode.READ_CAPACITY_10, 0, 0, 0, 0, 1, 0, 0, 1, 0)).assertGood(); // PMI
        assertThat(h.in(4, cdb(ScsiOpcode.READ_CAPACITY_10, 0, 0, 0, 0, 0, 0, 0, 0, 0)).assertGood().dataIn())
                .isEqualTo(bytes(0, 0, 0x07, 0xFF));
    }

    @Test
    void readCapacity16Data() {
        Result r = h.in(32, readCapacity16(32)).assertGood();
        byte[] exp = new byte[32];
        exp[6] = 0x07;
        exp[7] = (byte) 0xFF;
        exp[10] = 0x02;
        exp[14] = (byte) 0x80; // LBPME
        assertThat(r.dataIn()).isEqualTo(exp);
        assertThat(h.in(64, readCapacity16(12)).assertGood().transferred()).isEqualTo(12);
        assertThat(h.in(64, readCapacity16(0)).assertGood().transferred()).isZero();
        byte[] bad = readCapacity16(32);
        bad[1] = 0x11;
        h.in(32, bad).assertInvalidField(1, 4);
        byte[] lba = readCapacity16(32);
        lba[9] = 1;
        h.in(32, lba).assertInvalidField(2, -1);
    }

    @Test
    void readCapacityOfHugeDevice() {
        NullBlockDevice nul = new NullBlockDevice("huge", (1L << 33) + 5, 4096, Harness.UUID_1);
        ScsiTarget t = new ScsiTarget(3, "huge", nul);
        ScsiTask task = new ScsiTask(2).completion(x -> {});
        java.lang.foreign.MemorySegment buf = h.arena.allocate(32);
        task.reset().cdb(cdb(ScsiOpcode.READ_CAPACITY_10, 0, 0, 0, 0, 0, 0, 0, 0, 0))
                .direction(ScsiTask.Direction.FROM_DEVICE).addBuffer(buf, 0, 32);
        t.execute(task, null);
        assertThat(buf.asSlice(0, 8).toArray(java.lang.foreign.ValueLayout.JAVA_BYTE))
                .isEqualTo(bytes(0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0x10, 0));
        task.reset().cdb(readCapacity16(32)).direction(ScsiTask.Direction.FROM_DEVICE).addBuffer(buf, 0, 32);
        t.execute(task, null);
        assertThat(buf.asSlice(0, 16).toArray(java.lang.foreign.ValueLayout.JAVA_BYTE))
                .isEqualTo(bytes(0, 0, 0, 0x02, 0, 0, 0, 0x04, 0, 0, 0x10, 0, 0, 0, 0x80, 0));
    }

    // ---------------------------------------------------------------- MODE SENSE / SELECT

    @Test
    void modeSense6CachingWithBlockDescriptor() {
        Result r = h.in(255, modeSense6(0, 0x08, 0, 255)).assertGood();
        byte[] d = r.dataIn();
        assertThat(d).hasSize(4 + 8 + 20);
        assertThat(Arrays.copyOfRange(d, 0, 4)).isEqualTo(bytes(31, 0, 0x10, 8));
        assertThat(Arrays.copyOfRange(d, 4, 12)).isEqualTo(bytes(0, 0, 0x08, 0x00, 0, 0, 0x02, 0x00));
        byte[] page = new byte[20];
        page[0] = 0x08;
        page[1] = 0x12;
        assertThat(Arrays.copyOfRange(d, 12, 32)).as("caching page, WCE=0").isEqualTo(page);
    }

    @Test
    void modeSenseCachingReflectsVolatileCacheAndReadOnly() {
        h.close();
        h = new Harness(64, 512, b -> {
            b.volatileCache = true;
            b.readOnly = true;
        });
        byte[] d = h.in(255, modeSense6(0x08, 0x08, 0, 255)).assertGood().dataIn();
        assertThat(d).hasSize(24);
        assertThat(Arrays.copyOfRange(d, 0, 4)).as("WP, DPOFUA, no block descriptor").isEqualTo(bytes(23, 0, 0x90, 0));
        assertThat(d[4]).isEqualTo((byte) 0x08);
        assertThat(d[6]).as("WCE").isEqualTo((byte) 0x04);
        // changeable values: nothing
        d = h.in(255, modeSense6(0x08, 0x48, 0, 255)).assertGood().dataIn();
        assertThat(Arrays.copyOfRange(d, 4, 6)).isEqualTo(bytes(0x08, 0x12));
        assertThat(Arrays.copyOfRange(d, 6, 24)).containsOnly(0);
        // default values = current values
        assertThat(h.in(255, modeSense6(0x08, 0x88, 0, 255)).assertGood().dataIn()[6]).isEqualTo((byte) 0x04);
    }

    @Test
    void modeSenseAllPages() {
        byte[] d = h.in(255, modeSense6(0, 0x3F, 0, 255)).assertGood().dataIn();
        assertThat(d).hasSize(4 + 8 + 20 + 12);
        assertThat(d[0] & 0xFF).isEqualTo(43);
        assertThat(d[12]).isEqualTo((byte) 0x08);
        assertThat(Arrays.copyOfRange(d, 32, 44)).as("control page")
                .isEqualTo(bytes(0x0A, 0x0A, 0x02, 0x10, 0, 0x40, 0, 0, 0xFF, 0xFF, 0, 0));
        assertThat(h.in(255, modeSense6(0, 0x3F, 0xFF, 255)).assertGood().dataIn()).isEqualTo(d);
    }

    @Test
    void modeSense10ControlWithLongBlockDescriptor() {
        byte[] d = h.in(255, modeSense10(0x10, 0x0A, 0, 255)).assertGood().dataIn();
        assertThat(d).hasSize(8 + 16 + 12);
        assertThat(Arrays.copyOfRange(d, 0, 8)).isEqualTo(bytes(0, 34, 0, 0x10, 0x01, 0, 0, 16));
        assertThat(Arrays.copyOfRange(d, 8, 24)).isEqualTo(bytes(0, 0, 0, 0, 0, 0, 0x08, 0, 0, 0, 0, 0, 0, 0, 0x02, 0));
        assertThat(d[24]).isEqualTo((byte) 0x0A);
        d = h.in(255, modeSense10(0x00, 0x08, 0, 255)).assertGood().dataIn();
        assertThat(Arrays.copyOfRange(d, 0, 8)).as("short descriptor").isEqualTo(bytes(0, 34, 0, 0x10, 0, 0, 0, 8));
        d = h.in(255, modeSense10(0x18, 0x08, 0, 255)).assertGood().dataIn();
        assertThat(Arrays.copyOfRange(d, 0, 8)).as("DBD wins over LLBAA").isEqualTo(bytes(0, 26, 0, 0x10, 0, 0, 0, 0));
    }

    @Test
    void modeSenseTruncation() {
        Result r = h.in(255, modeSense6(0, 0x3F, 0, 4)).assertGood();
        assertThat(r.dataIn()).isEqualTo(bytes(43, 0, 0x10, 8));
        assertThat(r.residual()).isEqualTo(251);
        r = h.in(10, modeSense10(0, 0x3F, 0, 255)).assertGood();
        assertThat(r.transferred()).isEqualTo(10);
        assertThat(Arrays.copyOfRange(r.dataIn(), 0, 2)).isEqualTo(bytes(0, 46));
        r = h.in(255, modeSense6(0, 0x3F, 0, 0)).assertGood();
        assertThat(r.transferred()).isZero();
    }

    @Test
    void modeSenseBadFields() {
        h.in(255, modeSense6(0, 0xC8, 0, 255)).assertCheck(ScsiSense.ILLEGAL_REQUEST, ScsiSense.SAVING_PARAMETERS_NOT_SUPPORTED);
        for (int page : new int[] {0x00, 0x01, 0x02, 0x1A, 0x1C, 0x3E}) {
            h.in(255, modeSense6(0, page, 0, 255)).assertInvalidField(2, 5);
        }
        h.in(255, modeSense6(0, 0x08, 0x01, 255)).assertInvalidField(3, -1);
        h.in(255, modeSense10(0, 0x0A, 0x01, 255)).assertInvalidField(3, -1);
    }

    private static byte[] caching6(int wce) {
        byte[] p = new byte[4 + 8 + 20];
        p[3] = 8;
        p[6] = 0x08; // 2048 blocks
        p[10] = 0x02; // 512 bytes
        p[12] = 0x08;
        p[13] = 0x12;
        p[14] = (byte) wce;
        return p;
    }

    private static byte[] select6(int byte1, int plen) {
        return cdb(ScsiOpcode.MODE_SELECT_6, byte1, 0, 0, plen, 0);
    }

    @Test
    void modeSelectAcceptsCurrentValues() {
        h.out(new byte[0], select6(0x10, 0)).assertGood();
        byte[] p = caching6(0);
        Result r = h.out(p, select6(0x10, p.length)).assertGood();
        assertThat(r.transferred()).isEqualTo(p.length);
        byte[] noBd = {0, 0, 0, 0, 0x0A, 0x0A, 0x02, 0x10, 0, 0x40, 0, 0, (byte) 0xFF, (byte) 0xFF, 0, 0};
        h.out(noBd, select6(0x10, noBd.length)).assertGood();
        byte[] ten = new byte[8 + 20];
        ten[8] = 0x08;
        ten[9] = 0x12;
        h.out(ten, cdb(ScsiOpcode.MODE_SELECT_10, 0x10, 0, 0, 0, 0, 0, 0, ten.length, 0)).assertGood();
        byte[] longBd = new byte[8 + 16];
        longBd[4] = 1;
        longBd[7] = 16;
        longBd[8 + 14] = 0x02;
        h.out(longBd, cdb(ScsiOpcode.MODE_SELECT_10, 0x10, 0, 0, 0, 0, 0, 0, longBd.length, 0)).assertGood();
    }

    @Test
    void modeSelectRejectsChangesAndBadLists() {
        byte[] p = caching6(0x04);
        h.out(p, select6(0x10, p.length)).assertInvalidParameter(14);  // WCE not changeable
        h.out(caching6(0), select6(0x11, 32)).assertInvalidField(1, 0); // SP
        h.out(new byte[2], select6(0x10, 2)).assertCheck(ScsiSense.ILLEGAL_REQUEST, ScsiSense.PARAMETER_LIST_LENGTH_ERROR);
        p = caching6(0);
        h.out(Arrays.copyOf(p, 12), select6(0x10, 32)).assertCheck(ScsiSense.ILLEGAL_REQUEST, ScsiSense.PARAMETER_LIST_LENGTH_ERROR);
        h.out(Arrays.copyOf(p, 20), select6(0x10, 20)).assertCheck(ScsiSense.ILLEGAL_REQUEST, ScsiSense.PARAMETER_LIST_LENGTH_ERROR);
        p = caching6(0);
        p[3] = 5;
        h.out(p, select6(0x10, p.length)).assertInvalidParameter(3);
        p = caching6(0);
        p[10] = 0x10; // block length 4096
        h.out(p, select6(0x10, p.length)).assertInvalidParameter(9);
        p = caching6(0);
        p[12] = 0x1C;
        Result r = h.out(p, select6(0x10, p.length));
        r.assertCheck(ScsiSense.ILLEGAL_REQUEST, ScsiSense.INVALID_FIELD_IN_PARAMETER_LIST);
        assertThat(r.sense()[15] & 0xFF).isEqualTo(0x80 | 0x08 | 5);
        p = caching6(0);
        p[13] = 0x10;
        h.out(p, select6(0x10, p.length)).assertInvalidParameter(13);
        p = caching6(0);
        p[12] = 0x48; // SPF
        h.out(p, select6(0x10, p.length)).assertCheck(ScsiSense.ILLEGAL_REQUEST, ScsiSense.INVALID_FIELD_IN_PARAMETER_LIST);
        h.out(new byte[8], cdb(ScsiOpcode.MODE_SELECT_10, 0x10, 0, 0, 0, 0, 0, 0x20, 0, 0)).assertInvalidField(7, -1);
    }

    private static long be(byte[] d, int off, int width) {
        long v = 0;
        for (int i = 0; i < width; i++) v = v << 8 | (d[off + i] & 0xFF);
        return v;
    }
}
