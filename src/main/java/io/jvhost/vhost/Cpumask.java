package io.jvhost.vhost;

/** Parses SPDK-style CPU masks: hex ("0x3", "3") or a core list ("[0,2-3]"). */
public final class Cpumask {
    private Cpumask() {}

    public static long parse(String s) {
        String t = s.trim();
        try {
            long mask;
            if (t.startsWith("[") && t.endsWith("]")) {
                mask = 0;
                String body = t.substring(1, t.length() - 1).trim();
                if (body.isEmpty()) throw new IllegalArgumentException("empty core list");
                for (String part : body.split(",")) {
                    String p = part.trim();
                    int dash = p.indexOf('-');
                    int lo = Integer.parseInt(dash < 0 ? p : p.substring(0, dash).trim());
                    int hi = dash < 0 ? lo : Integer.parseInt(p.substring(dash + 1).trim());
                    if (lo < 0 || hi > 63 || lo > hi) throw new IllegalArgumentException("core range " + p + " outside 0..63");
                    for (int c = lo; c <= hi; c++) mask |= 1L << c;
                }
            } else {
                String hex = t.startsWith("0x") || t.startsWith("0X") ? t.substring(2) : t;
                mask = Long.parseUnsignedLong(hex, 16);
            }
            if (mask == 0) throw new IllegalArgumentException("selects no core");
            return mask;
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("cpumask '" + s + "' is neither hex (0x3) nor a core list ([0,1])");
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("cpumask '" + s + "': " + e.getMessage());
        }
    }
}
