package io.jvhost.scsi;

/**
 * Sense keys and additional sense codes (SPC-4 4.5), and the layout of the fixed-format sense
 * data this layer produces (SPC-4 4.5.3): 18 bytes, response code 70h (current error).
 *
 * <p>Additional sense codes are given as one int, {@code (ASC << 8) | ASCQ}.
 */
public final class ScsiSense {
    private ScsiSense() {}

    // Sense keys
    public static final int NO_SENSE = 0x0;
    public static final int RECOVERED_ERROR = 0x1;
    public static final int NOT_READY = 0x2;
    public static final int MEDIUM_ERROR = 0x3;
    public static final int HARDWARE_ERROR = 0x4;
    public static final int ILLEGAL_REQUEST = 0x5;
    public static final int UNIT_ATTENTION = 0x6;
    public static final int DATA_PROTECT = 0x7;
    public static final int ABORTED_COMMAND = 0xB;
    public static final int MISCOMPARE = 0xE;

    // Additional sense code << 8 | additional sense code qualifier
    public static final int NO_ADDITIONAL_SENSE = 0x0000;
    public static final int WRITE_ERROR = 0x0C00;
    public static final int UNRECOVERED_READ_ERROR = 0x1100;
    public static final int PARAMETER_LIST_LENGTH_ERROR = 0x1A00;
    public static final int MISCOMPARE_DURING_VERIFY = 0x1D00;
    public static final int INVALID_COMMAND_OPERATION_CODE = 0x2000;
    public static final int LBA_OUT_OF_RANGE = 0x2100;
    public static final int INVALID_FIELD_IN_CDB = 0x2400;
    public static final int LOGICAL_UNIT_NOT_SUPPORTED = 0x2500;
    public static final int INVALID_FIELD_IN_PARAMETER_LIST = 0x2600;
    public static final int WRITE_PROTECTED = 0x2700;
    public static final int SPACE_ALLOCATION_FAILED_WRITE_PROTECT = 0x2707;
    public static final int POWER_ON_RESET = 0x2900;
    public static final int SAVING_PARAMETERS_NOT_SUPPORTED = 0x3900;
    public static final int INTERNAL_TARGET_FAILURE = 0x4400;

    /** Length of the fixed-format sense data this layer returns. */
    public static final int FIXED_LENGTH = 18;
    /** Response code of fixed-format sense data for a current error. */
    public static final int RESPONSE_CURRENT_FIXED = 0x70;
    /** Response code of descriptor-format sense data for a current error (REQUEST SENSE DESC=1). */
    public static final int RESPONSE_CURRENT_DESCRIPTOR = 0x72;

    // Offsets in fixed-format sense data
    public static final int OFF_RESPONSE_CODE = 0;   // bit 7 = VALID (INFORMATION is valid)
    public static final int OFF_SENSE_KEY = 2;
    public static final int OFF_INFORMATION = 3;     // 4 bytes, big-endian
    public static final int OFF_ADDITIONAL_LENGTH = 7;
    public static final int OFF_ASC = 12;
    public static final int OFF_ASCQ = 13;
    public static final int OFF_SKS = 15;            // bit 7 = SKSV; ILLEGAL REQUEST: bit 6 C/D, bit 3 BPV, bits 2-0 bit pointer
    public static final int OFF_FIELD_POINTER = 16;  // 2 bytes, big-endian

    /**
     * Writes fixed-format sense data into {@code buf[0..18)}.
     *
     * @param fieldByte for ILLEGAL REQUEST: the byte of the CDB ({@code cdb}) or parameter list
     *                  at fault, or -1 for no sense-key-specific field pointer
     * @param fieldBit  the bit at fault (0-7), or -1 for none
     */
    static void fill(byte[] buf, int key, int ascAscq, boolean cdb, int fieldByte, int fieldBit) {
        java.util.Arrays.fill(buf, 0, FIXED_LENGTH, (byte) 0);
        buf[OFF_RESPONSE_CODE] = (byte) RESPONSE_CURRENT_FIXED;
        buf[OFF_SENSE_KEY] = (byte) (key & 0x0F);
        buf[OFF_ADDITIONAL_LENGTH] = (byte) (FIXED_LENGTH - 8);
        buf[OFF_ASC] = (byte) (ascAscq >>> 8);
        buf[OFF_ASCQ] = (byte) ascAscq;
        if (fieldByte >= 0) {
            int sks = 0x80 | (cdb ? 0x40 : 0);
            if (fieldBit >= 0) sks |= 0x08 | (fieldBit & 0x07);
            buf[OFF_SKS] = (byte) sks;
            buf[OFF_FIELD_POINTER] = (byte) (fieldByte >>> 8);
            buf[OFF_FIELD_POINTER + 1] = (byte) fieldByte;
        }
    }

    /** Sets the VALID bit and the 4-byte INFORMATION field of fixed-format sense data. */
    static void information(byte[] buf, long info) {
        buf[OFF_RESPONSE_CODE] |= (byte) 0x80;
        buf[OFF_INFORMATION] = (byte) (info >>> 24);
        buf[OFF_INFORMATION + 1] = (byte) (info >>> 16);
        buf[OFF_INFORMATION + 2] = (byte) (info >>> 8);
        buf[OFF_INFORMATION + 3] = (byte) info;
    }
}
