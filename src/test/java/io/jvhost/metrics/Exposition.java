package io.jvhost.metrics;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A strict reader of the Prometheus text exposition format (0.0.4), for tests: every sample
 * must belong to a family declared before it with HELP and TYPE (a histogram's
 * {@code _bucket}/{@code _sum}/{@code _count}, a summary's {@code _sum}/{@code _count}), each
 * family is declared once and its samples are contiguous, names and label names are valid,
 * label values are quoted with only {@code \\}, {@code \"} and {@code \n} escapes, and every
 * value is a number. Violations throw {@link IllegalArgumentException} naming the line.
 */
public final class Exposition {
    public record Sample(String name, Map<String, String> labels, double value) {}

    public record Family(String name, String type, String help) {}

    public final Map<String, Family> families = new LinkedHashMap<>();
    public final List<Sample> samples = new ArrayList<>();

    private static final Set<String> TYPES = Set.of("counter", "gauge", "histogram", "summary", "untyped");

    public static Exposition parse(String text) {
        Exposition e = new Exposition();
        String pendingHelpName = null, pendingHelp = null;
        String current = null; // the family whose samples are being read
        java.util.Set<String> closed = new java.util.HashSet<>();
        int lineNo = 0;
        for (String line : text.split("\n", -1)) {
            lineNo++;
            if (line.isEmpty()) continue;
            if (line.startsWith("# HELP ")) {
                String rest = line.substring(7);
                int sp = rest.indexOf(' ');
                pendingHelpName = sp < 0 ? rest : rest.substring(0, sp);
                pendingHelp = sp < 0 ? "" : rest.substring(sp + 1);
                checkName(pendingHelpName, lineNo);
                continue;
            }
            if (line.startsWith("# TYPE ")) {
                String[] p = line.substring(7).split(" ");
                if (p.length != 2 || !TYPES.contains(p[1])) throw bad(lineNo, "bad TYPE line: " + line);
                if (!p[0].equals(pendingHelpName)) throw bad(lineNo, "TYPE of " + p[0] + " without a HELP just before it");
                if (e.families.containsKey(p[0])) throw bad(lineNo, "family " + p[0] + " declared twice");
                e.families.put(p[0], new Family(p[0], p[1], pendingHelp));
                if (current != null) closed.add(current);
                current = p[0];
                pendingHelpName = null;
                continue;
            }
            if (line.startsWith("#")) continue;
            Sample s = sample(line, lineNo);
            String fam = familyOf(e, s.name());
            if (fam == null) throw bad(lineNo, "sample " + s.name() + " belongs to no declared family");
            if (!fam.equals(current) || closed.contains(fam)) throw bad(lineNo, "sample " + s.name() + " is not with the rest of family " + fam);
            e.samples.add(s);
        }
        return e;
    }

    private static String familyOf(Exposition e, String sample) {
        if (e.families.containsKey(sample)) {
            String t = e.families.get(sample).type();
            return t.equals("histogram") || t.equals("summary") ? null : sample;
        }
        for (String suffix : new String[] {"_bucket", "_sum", "_count", "_created"}) {
            if (!sample.endsWith(suffix)) continue;
            String base = sample.substring(0, sample.length() - suffix.length());
            Family f = e.families.get(base);
            if (f == null) continue;
            if (suffix.equals("_bucket") && !f.type().equals("histogram")) return null;
            if ((suffix.equals("_sum") || suffix.equals("_count")) && !(f.type().equals("histogram") || f.type().equals("summary"))) return null;
            return base;
        }
        return null;
    }

    private static Sample sample(String line, int lineNo) {
        int i = 0;
        while (i < line.length() && line.charAt(i) != '{' && line.charAt(i) != ' ') i++;
        String name = line.substring(0, i);
        checkName(name, lineNo);
        Map<String, String> labels = new LinkedHashMap<>();
        if (i < line.length() && line.charAt(i) == '{') {
            i++;
            while (line.charAt(i) != '}') {
                int eq = line.indexOf('=', i);
                if (eq < 0) throw bad(lineNo, "label without '='");
                String ln = line.substring(i, eq);
                if (!ln.matches("[a-zA-Z_][a-zA-Z0-9_]*")) throw bad(lineNo, "bad label name '" + ln + "'");
                i = eq + 1;
                if (line.charAt(i) != '"') throw bad(lineNo, "label value not quoted");
                i++;
                StringBuilder v = new StringBuilder();
                while (true) {
                    char c = line.charAt(i++);
                    if (c == '"') break;
                    if (c == '\\') {
                        char n = line.charAt(i++);
                        switch (n) {
                            case '\\' -> v.append('\\');
                            case '"' -> v.append('"');
                            case 'n' -> v.append('\n');
                            default -> throw bad(lineNo, "bad escape \\" + n);
                        }
                    } else {
                        v.append(c);
                    }
                }
                if (labels.put(ln, v.toString()) != null) throw bad(lineNo, "label " + ln + " twice");
                if (line.charAt(i) == ',') i++;
                else if (line.charAt(i) != '}') throw bad(lineNo, "expected ',' or '}'");
            }
            i++;
        }
        if (i >= line.length() || line.charAt(i) != ' ') throw bad(lineNo, "no value");
        String[] rest = line.substring(i + 1).split(" ");
        double value;
        try {
            value = switch (rest[0]) {
                case "+Inf" -> Double.POSITIVE_INFINITY;
                case "-Inf" -> Double.NEGATIVE_INFINITY;
                case "NaN" -> Double.NaN;
                default -> Double.parseDouble(rest[0]);
            };
        } catch (NumberFormatException ex) {
            throw bad(lineNo, "value '" + rest[0] + "' is not a number");
        }
        return new Sample(name, labels, value);
    }

    private static void checkName(String name, int lineNo) {
        if (!name.matches("[a-zA-Z_:][a-zA-Z0-9_:]*")) throw bad(lineNo, "bad metric name '" + name + "'");
    }

    private static IllegalArgumentException bad(int line, String why) {
        return new IllegalArgumentException("line " + line + ": " + why);
    }

    /** The one sample named {@code name} whose labels include {@code labels} (name, value, ...). */
    public double value(String name, String... labels) {
        Sample found = null;
        for (Sample s : samples) {
            if (!s.name().equals(name)) continue;
            boolean match = true;
            for (int i = 0; i < labels.length; i += 2) match &= labels[i + 1].equals(s.labels().get(labels[i]));
            if (!match) continue;
            if (found != null) throw new IllegalStateException("more than one sample " + name + " with " + List.of(labels));
            found = s;
        }
        if (found == null) throw new IllegalStateException("no sample " + name + " with " + List.of(labels));
        return found.value();
    }

    public boolean has(String name, String... labels) {
        try {
            value(name, labels);
            return true;
        } catch (IllegalStateException e) {
            return false;
        }
    }

    /** The sum of every sample named {@code name} whose labels include {@code labels} (0 if none). */
    public double sum(String name, String... labels) {
        double t = 0;
        for (Sample s : samples) {
            if (!s.name().equals(name)) continue;
            boolean match = true;
            for (int i = 0; i < labels.length; i += 2) match &= labels[i + 1].equals(s.labels().get(labels[i]));
            if (match) t += s.value();
        }
        return t;
    }
}
