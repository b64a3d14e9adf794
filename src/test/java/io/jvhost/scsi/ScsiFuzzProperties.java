package io.jvhost.scsi;

import io.jvhost.scsi.Harness.Result;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Combinators;
import net.jqwik.api.EdgeCasesMode;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.Tuple;
import net.jqwik.api.lifecycle.AfterContainer;
import net.jqwik.api.lifecycle.BeforeContainer;

import java.util.Set;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Random CDBs, parameter data and buffers: every command must complete exactly once without an
 * exception, leave the guard bytes around its buffer alone, write only data-in buffers and only
 * up to what it reports as transferred, and produce a well-formed status and sense.
 */
class ScsiFuzzProperties {
    private static Harness h;
    private static Harness ro;

    /** Opcodes worth hitting often: all supported ones and a few unsupported neighbours. */
    private static final int[] OPCODES = {
            0x00, 0x03, 0x08, 0x0A, 0x12, 0x15, 0x1A, 0x1B, 0x25, 0x28, 0x2A, 0x2F, 0x35, 0x41, 0x42, 0x55,
            0x5A, 0x88, 0x89, 0x8A, 0x8F, 0x91, 0x93, 0x9E, 0xA0, 0xA8, 0xAA,
            0x5E, 0x5F, 0x4D, 0xA3, 0x85, 0xA1, 0x7F, 0x16, 0x17};

    private static final Set<Integer> SENSE_KEYS = Set.of(ScsiSense.ILLEGAL_REQUEST, ScsiSense.DATA_PROTECT,
            ScsiSense.MISCOMPARE, ScsiSense.UNIT_ATTENTION);

    @BeforeContainer
    static void open() {
        h = new Harness(4096, 512); // small, so random LBAs land on both sides of the end
        ro = new Harness(4096, 4096, b -> {
            b.readOnly = true;
            b.volatileCache = true;
            b.unmap = false;
            b.writeZeroes = false;
        });
    }

    @AfterContainer
    static void close() {
        h.close();
        ro.close();
    }

    record Input(byte[] cdb, ScsiTask.Direction dir, byte[] dataOut, int length, int splits, int lun) {
        @Override
        public String toString() {
            return "cdb=" + Harness.hex(cdb) + " dir=" + dir + " len=" + length + " splits=" + splits + " lun=" + lun;
        }
    }

    /** Bytes biased towards 0 and small values, so that lengths and LBAs are often plausible. */
    private static Arbitrary<Byte> fieldByte() {
        return Arbitraries.frequencyOf(
                Tuple.of(10, Arbitraries.just((byte) 0)),
                Tuple.of(4, Arbitraries.bytes().between((byte) 0, (byte) 8)),
                Tuple.of(2, Arbitraries.bytes()),
                Tuple.of(1, Arbitraries.of((byte) 0xFF, (byte) 0x80, (byte) 0x10, (byte) 0x3F, (byte) 0x40)));
    }

    @Provide
    Arbitrary<Input> inputs() {
        Arbitrary<Integer> opcode = Arbitraries.frequencyOf(
                Tuple.of(9, Arbitraries.integers().between(0, OPCODES.length - 1).map(i -> OPCODES[i])),
                Tuple.of(1, Arbitraries.integers().between(0, 255)));
        // virtio-scsi hands over 32 CDB bytes; sometimes fewer
        Arbitrary<byte[]> rest = Arbitraries.frequencyOf(
                Tuple.of(7, fieldByte().array(byte[].class).ofSize(31)),
                Tuple.of(3, fieldByte().array(byte[].class).ofMinSize(0).ofMaxSize(31)));
        Arbitrary<byte[]> cdb = Combinators.combine(opcode, rest).as((op, r) -> {
            byte[] c = new byte[r.length + 1];
            c[0] = (byte) (int) op;
            System.arraycopy(r, 0, c, 1, r.length);
            return c;
        });
        Arbitrary<Integer> length = Arbitraries.frequencyOf(
                Tuple.of(3, Arbitraries.integers().between(0, 64)),
                Tuple.of(4, Arbitraries.integers().between(0, 16).map(n -> n * 512)),
                Tuple.of(3, Arbitraries.of(0, 8, 18, 24, 36, 96, 255, 511, 513, 1023, 4104, 65536, 131072)),
                Tuple.of(2, Arbitraries.integers().between(0, 70_000)));
        Arbitrary<ScsiTask.Direction> dir = Arbitraries.of(ScsiTask.Direction.class);
        Arbitrary<Integer> splits = Arbitraries.integers().between(1, 6);
        Arbitrary<Integer> lun = Arbitraries.frequencyOf(
                Tuple.of(9, Arbitraries.just(0)), Tuple.of(1, Arbitraries.integers().between(-2, 300)));
        Arbitrary<Long> seed = Arbitraries.longs();
        Arbitrary<Boolean> fit = Arbitraries.of(true, false);
        return Combinators.combine(cdb, dir, length, splits, lun, seed, fit).as((c, d0, len0, sp, l, sd, f) -> {
            java.util.Random rnd = new java.util.Random(sd);
            ScsiTask.Direction d = d0;
            int len = len0;
            if (f) { // direction and size as the CDB implies, now and then off by a little
                int size = ScsiLun.cdbSize(c[0] & 0xFF);
                if (size > 0 && size <= c.length && rnd.nextInt(8) != 0) c[size - 1] = 0; // control byte
                d = naturalDirection(c[0] & 0xFF);
                len = (int) Math.min(impliedBytes(c), 140_000);
                if (rnd.nextInt(4) == 0) len = Math.max(0, len + rnd.nextInt(5) - 2);
            }
            byte[] out = null;
            if (d == ScsiTask.Direction.TO_DEVICE) {
                out = new byte[len];
                for (int i = 0; i < len; i++) out[i] = (byte) (rnd.nextInt(4) == 0 ? rnd.nextInt(256) : rnd.nextInt(3));
                if (len >= 8 && rnd.nextBoolean()) { // a plausible UNMAP header now and then
                    int bdl = 16 * rnd.nextInt(Math.min((len - 8) / 16, 260) + 1);
                    out[0] = (byte) ((bdl + 6) >> 8);
                    out[1] = (byte) (bdl + 6);
                    out[2] = (byte) (bdl >> 8);
                    out[3] = (byte) bdl;
                }
            }
            return new Input(c, d, out, len, sp, l);
        });
    }

    private static int u8(byte[] c, int i) {
        return i < c.length ? c[i] & 0xFF : 0;
    }

    private static long be(byte[] c, int off, int width) {
        long v = 0;
        for (int i = 0; i < width; i++) v = v << 8 | u8(c, off + i);
        return v;
    }

    static ScsiTask.Direction naturalDirection(int op) {
        return switch (op) {
            case 0x0A, 0x2A, 0xAA, 0x8A, 0x89, 0x2F, 0x8F, 0x41, 0x93, 0x42, 0x15, 0x55 -> ScsiTask.Direction.TO_DEVICE;
            case 0x00, 0x1B, 0x35, 0x91 -> ScsiTask.Direction.NONE;
            default -> ScsiTask.Direction.FROM_DEVICE;
        };
    }

    /** Bytes the CDB asks to move (allocation or parameter list length for the others). */
    static long impliedBytes(byte[] c) {
        return switch (c[0] & 0xFF) {
            case 0x08, 0x0A -> (u8(c, 4) == 0 ? 256 : u8(c, 4)) * 512L;
            case 0x28, 0x2A -> be(c, 7, 2) * 512;
            case 0xA8, 0xAA -> be(c, 6, 4) * 512;
            case 0x88, 0x8A -> be(c, 10, 4) * 512;
            case 0x2F -> ((u8(c, 1) & 0x06) == 0x06 ? 1 : be(c, 7, 2)) * 512;
            case 0x8F -> ((u8(c, 1) & 0x06) == 0x06 ? 1 : be(c, 10, 4)) * 512;
            case 0x89 -> 2L * u8(c, 13) * 512;
            case 0x41, 0x93 -> 512;
            case 0x42, 0x55, 0x5A -> be(c, 7, 2);
            case 0x12 -> be(c, 3, 2);
            case 0x15, 0x1A, 0x03 -> u8(c, 4);
            case 0xA0 -> be(c, 6, 4);
            case 0x9E -> be(c, 10, 4);
            case 0x25 -> 8;
            default -> 0;
        };
    }

    @Property(tries = 4000, edgeCases = EdgeCasesMode.NONE)
    void randomCommandsAreAnsweredSafely(@ForAll("inputs") Input in) {
        check(h, in);
    }

    @Property(tries = 1500, edgeCases = EdgeCasesMode.NONE)
    void randomCommandsOnAReadOnlyDeviceWithResets(@ForAll("inputs") Input in, @ForAll boolean reset) {
        if (reset) { // leaves a unit attention for the command
            ScsiTmf m = new ScsiTmf().completion(x -> {});
            ro.target.manage(m.set(ScsiTmf.Function.LOGICAL_UNIT_RESET, 0, 0));
            assertThat(m.response()).isEqualTo(ScsiTmf.Response.FUNCTION_COMPLETE);
        }
        check(ro, in);
        assertThat(ro.bdev.ops).allMatch(op -> op.startsWith("READ") || op.startsWith("FLUSH"));
    }

    private static void check(Harness h, Input in) {
        h.splits = in.splits();
        h.lun = in.lun();
        // Harness.run checks: one completion, guards intact, data-out/none buffers untouched,
        // data-in bytes past the transferred length untouched.
        Result r = h.run(in.cdb(), in.dir(), in.dataOut(), in.length());

        assertThat(r.status()).isIn(ScsiStatus.GOOD, ScsiStatus.CHECK_CONDITION);
        assertThat(r.transferred()).isBetween(0L, (long) in.length());
        assertThat(r.residual()).isEqualTo(in.length() - r.transferred());
        if (r.status() == ScsiStatus.GOOD) {
            assertThat(r.sense()).isEmpty();
        } else {
            byte[] s = r.sense();
            assertThat(s).hasSize(18);
            assertThat(s[0] & 0x7F).isEqualTo(0x70);
            assertThat(s[7]).isEqualTo((byte) 10);
            assertThat(s[2] & 0xF0).isZero();
            assertThat(r.senseKey()).isIn(SENSE_KEYS);
            assertThat(r.transferred()).isZero();
            if ((s[15] & 0x80) != 0) {
                int field = (s[16] & 0xFF) << 8 | (s[17] & 0xFF);
                if ((s[15] & 0x40) != 0) assertThat(field).as("CDB field pointer").isLessThan(in.cdb().length);
                else assertThat(field).as("parameter field pointer").isLessThan(Math.max(1, in.length()));
            }
        }
        if (in.dir() != ScsiTask.Direction.FROM_DEVICE) {
            assertThat(r.transferred()).isLessThanOrEqualTo(in.dir() == ScsiTask.Direction.TO_DEVICE ? in.length() : 0);
        }
        assertThat(h.target.inFlight()).isZero();
        assertThat(h.lun().inFlight()).isZero();
        assertThat(h.channel.inFlight()).isZero();
    }
}
