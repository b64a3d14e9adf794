package io.jvhost.cli;

/** Parses sizes such as 512, 4K, 256M, 2G, 1T (binary units). */
public final class Sizes {
    private Sizes() {}

    public static long parse(String s) {
        String t = s.trim().toUpperCase();
        if (t.endsWith("IB")) t = t.substring(0, t.length() - 2);
        else if (t.endsWith("B")) t = t.substring(0, t.length() - 1);
        long mult = 1;
        if (!t.isEmpty()) {
            char u = t.charAt(t.length() - 1);
            int shift = switch (u) { case 'K' -> 10; case 'M' -> 20; case 'G' -> 30; case 'T' -> 40; default -> 0; };
            if (shift > 0) {
                mult = 1L << shift;
                t = t.substring(0, t.length() - 1);
            }
        }
        try {
            long v = Long.parseLong(t.trim());
            if (v <= 0) throw new IllegalArgumentException("size must be positive: " + s);
            return Math.multiplyExact(v, mult);
        } catch (NumberFormatException | ArithmeticException e) {
            throw new IllegalArgumentException("not a size: '" + s + "' (examples: 512, 64K, 256M, 2G)");
        }
    }
}
