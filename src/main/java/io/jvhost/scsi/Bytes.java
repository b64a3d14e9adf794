package io.jvhost.scsi;

/** Big-endian field access on byte arrays (CDBs, parameter lists, response data). */
final class Bytes {
    private Bytes() {}

    static int u8(byte[] b, int i) {
        return b[i] & 0xFF;
    }

    static int be16(byte[] b, int i) {
        return (b[i] & 0xFF) << 8 | (b[i + 1] & 0xFF);
    }

    static int be24(byte[] b, int i) {
        return (b[i] & 0xFF) << 16 | (b[i + 1] & 0xFF) << 8 | (b[i + 2] & 0xFF);
    }

    /** Unsigned 32-bit value. */
    static long be32(byte[] b, int i) {
        return ((long) (b[i] & 0xFF) << 24) | (b[i + 1] & 0xFF) << 16 | (b[i + 2] & 0xFF) << 8 | (b[i + 3] & 0xFF);
    }

    /** 64-bit value; values of 2^63 and more come out negative. */
    static long be64(byte[] b, int i) {
        return be32(b, i) << 32 | be32(b, i + 4);
    }

    static void put16(byte[] b, int i, int v) {
        b[i] = (byte) (v >>> 8);
        b[i + 1] = (byte) v;
    }

    static void put24(byte[] b, int i, int v) {
        b[i] = (byte) (v >>> 16);
        b[i + 1] = (byte) (v >>> 8);
        b[i + 2] = (byte) v;
    }

    static void put32(byte[] b, int i, long v) {
        b[i] = (byte) (v >>> 24);
        b[i + 1] = (byte) (v >>> 16);
        b[i + 2] = (byte) (v >>> 8);
        b[i + 3] = (byte) v;
    }

    static void put64(byte[] b, int i, long v) {
        put32(b, i, v >>> 32);
        put32(b, i + 4, v);
    }

    /** Copies ASCII text into {@code b[i..i+len)}, space padded; other characters become '_'. */
    static void putAscii(byte[] b, int i, String s, int len) {
        for (int k = 0; k < len; k++) {
            char ch = k < s.length() ? s.charAt(k) : ' ';
            b[i + k] = (byte) (ch >= 0x20 && ch <= 0x7E ? ch : '_');
        }
    }
}
