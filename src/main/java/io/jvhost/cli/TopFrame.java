package io.jvhost.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.jvhost.rpc.Json;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * The tables of {@code jvhost top}, computed from two {@link TopSample}s (rates are deltas over
 * the time between them), and their rendering as lines of text: sorted, cut to a terminal's
 * width and height. No terminal here, so frames can be checked from canned RPC answers.
 */
final class TopFrame {
    private TopFrame() {}

    /** The views, in key order (1, 2, 3; Tab cycles). */
    enum View {
        REACTORS("Reactors", 1), CONTROLLERS("Controllers", 3), BDEVS("Bdevs", 1);

        final String title;
        /** The column sorted by default (descending): busy %, IOPS, IOPS. */
        final int defaultSort;

        View(String title, int defaultSort) {
            this.title = title;
            this.defaultSort = defaultSort;
        }

        View next() {
            return values()[(ordinal() + 1) % values().length];
        }
    }

    record Column(String title, boolean numeric) {}

    /** A row: its cells as shown, the numbers it sorts by, and rows shown under it (a controller's queues). */
    record Row(String[] cells, double[] keys, List<Row> children) {}

    record Table(View view, List<Column> columns, List<Row> rows) {}

    // ---- tables from two samples ----

    static Table table(View v, TopSample prev, TopSample cur) {
        return switch (v) {
            case REACTORS -> reactors(prev, cur);
            case CONTROLLERS -> controllers(prev, cur);
            case BDEVS -> bdevs(prev, cur);
        };
    }

    private static final double NONE = Double.NaN;

    static Table reactors(TopSample prev, TopSample cur) {
        List<Column> cols = List.of(new Column("REACTOR", false), new Column("BUSY%", true), new Column("LOOPS/s", true),
                new Column("SLEEPS/s", true), new Column("WAKEUPS/s", true), new Column("IDLE", false), new Column("CONTROLLERS", false));
        double secs = seconds(prev, cur);
        Map<Integer, JsonNode> before = new HashMap<>();
        if (prev != null) for (JsonNode r : prev.reactors().path("reactors")) before.put(r.path("lcore").asInt(), r);
        List<Row> rows = new ArrayList<>();
        for (JsonNode r : cur.reactors().path("reactors")) {
            JsonNode p = before.get(r.path("lcore").asInt());
            long busy = delta(r, p, "busy"), idle = delta(r, p, "idle");
            double busyPct = busy + idle > 0 ? 100.0 * busy / (busy + idle) : 0;
            double loops = rate(delta(r, p, "busy_loops") + delta(r, p, "idle_loops"), secs);
            double sleeps = rate(delta(r, p, "sleeps"), secs), wakeups = rate(delta(r, p, "wakeups"), secs);
            List<String> names = new ArrayList<>();
            for (JsonNode t : r.path("lw_threads")) names.add(t.path("name").asText());
            String idleText = r.path("dead").asBoolean() ? "DEAD" : r.path("idle_strategy").asText("-");
            rows.add(new Row(new String[] {"reactor_" + r.path("lcore").asInt(), pct(busyPct), num(loops), num(sleeps), num(wakeups), idleText,
                    names.isEmpty() ? "-" : String.join(",", names)},
                    new double[] {r.path("lcore").asInt(), busyPct, loops, sleeps, wakeups, NONE, names.size()}, List.of()));
        }
        return new Table(View.REACTORS, cols, rows);
    }

    static Table controllers(TopSample prev, TopSample cur) {
        List<Column> cols = List.of(new Column("CONTROLLER", false), new Column("CPUMASK", false), new Column("SESSION", false),
                new Column("IOPS", true), new Column("MiB/s", true), new Column("INFLIGHT", true), new Column("CALLS/REQ", true),
                new Column("KICKS/s", true), new Column("ERRORS", true));
        double secs = seconds(prev, cur);
        Map<String, JsonNode> ctrlrInfo = new HashMap<>();
        for (JsonNode c : cur.controllers()) ctrlrInfo.put(c.path("ctrlr").asText(), c);
        Map<String, double[]> bdevRates = bdevRates(prev, cur);
        Map<String, JsonNode> before = new HashMap<>();
        if (prev != null) for (JsonNode c : prev.vhostStats()) before.put(c.path("ctrlr").asText(), c);
        List<Row> rows = new ArrayList<>();
        for (JsonNode c : cur.vhostStats()) {
            String name = c.path("ctrlr").asText();
            JsonNode info = ctrlrInfo.getOrDefault(name, Json.obj());
            JsonNode session = c.path("session");
            JsonNode prevSession = before.getOrDefault(name, Json.obj()).path("session");
            // A new session restarts its counters: compare only with the same session.
            boolean sameSession = !session.isMissingNode() && !session.isNull()
                    && session.path("name").asText().equals(prevSession.path("name").asText(null));
            Map<Integer, JsonNode> prevQueues = new HashMap<>();
            if (sameSession) for (JsonNode q : prevSession.path("queues")) prevQueues.put(q.path("index").asInt(), q);
            List<Row> queues = new ArrayList<>();
            long reqs = 0, calls = 0, kicks = 0, inflight = 0, errors = 0, bytes = 0;
            boolean queueBytes = false;
            for (JsonNode q : session.path("queues")) {
                JsonNode pq = prevQueues.get(q.path("index").asInt());
                long r = delta(q, pq, "requests"), cl = delta(q, pq, "calls"), k = delta(q, pq, "kicks");
                long fl = q.path("in_flight").asLong();
                long err = q.path("chain_errors").asLong() + q.path("request_errors").asLong() + q.path("call_errors").asLong();
                // Bytes per queue when the target reports them; else the controller's bdevs give MiB/s.
                boolean hasBytes = q.has("bytes");
                long b = hasBytes ? delta(q, pq, "bytes") : 0;
                queueBytes |= hasBytes;
                reqs += r;
                calls += cl;
                kicks += k;
                inflight += fl;
                errors += err;
                bytes += b;
                double iops = rate(r, secs), cpr = r > 0 ? (double) cl / r : NONE;
                double mibs = hasBytes ? rate(b, secs) / MIB : NONE;
                String qname = "  q" + q.path("index").asInt() + (q.path("broken").asBoolean() ? " BROKEN" : "");
                queues.add(new Row(new String[] {qname, "", "", num(iops), mib(mibs), Long.toString(fl), ratio(cpr), num(rate(k, secs)), Long.toString(err)},
                        new double[] {q.path("index").asInt(), NONE, NONE, iops, mibs, fl, cpr, rate(k, secs), err}, List.of()));
            }
            double iops = rate(reqs, secs), cpr = reqs > 0 ? (double) calls / reqs : NONE;
            double mibs;
            if (queueBytes) {
                mibs = rate(bytes, secs) / MIB;
            } else {
                mibs = 0;
                boolean any = false;
                for (String bdev : bdevsOf(info)) {
                    double[] br = bdevRates.get(bdev);
                    if (br != null) {
                        mibs += (br[2] + br[3]) / MIB;
                        any = true;
                    }
                }
                if (!any) mibs = NONE;
            }
            long ctrlErrors = errors + c.path("protocol_errors").asLong() + c.path("failed_requests").asLong();
            String sessionText = session.isMissingNode() || session.isNull() ? "-" : session.path("name").asText();
            rows.add(new Row(new String[] {name, info.path("cpumask").asText("-"), sessionText, num(iops), mib(mibs), Long.toString(inflight),
                    ratio(cpr), num(rate(kicks, secs)), Long.toString(ctrlErrors)},
                    new double[] {NONE, NONE, NONE, iops, mibs, inflight, cpr, rate(kicks, secs), ctrlErrors}, queues));
        }
        return new Table(View.CONTROLLERS, cols, rows);
    }

    private static final double MIB = 1024.0 * 1024.0;

    /** The bdevs behind a controller (blk: one; scsi: the LUNs of every target). */
    static Set<String> bdevsOf(JsonNode ctrlrInfo) {
        Set<String> s = new LinkedHashSet<>();
        JsonNode be = ctrlrInfo.path("backend_specific");
        String blk = be.path("block").path("bdev").asText(null);
        if (blk != null) s.add(blk);
        for (JsonNode t : be.path("scsi")) for (JsonNode l : t.path("luns")) s.add(l.path("bdev_name").asText());
        return s;
    }

    /** Per bdev: read IOPS, write IOPS, read bytes/s, write bytes/s, avg read us, avg write us. */
    private static Map<String, double[]> bdevRates(TopSample prev, TopSample cur) {
        Map<String, double[]> m = new HashMap<>();
        Map<String, JsonNode> before = new HashMap<>();
        if (prev != null) for (JsonNode b : prev.iostat().path("bdevs")) before.put(b.path("name").asText(), b);
        double tickRate = cur.iostat().path("tick_rate").asDouble(1e9);
        // The target's own clock between the two answers; the client's if it did not move.
        long ticks = prev == null ? 0 : cur.iostat().path("ticks").asLong() - prev.iostat().path("ticks").asLong();
        double secs = ticks > 0 ? ticks / tickRate : seconds(prev, cur);
        for (JsonNode b : cur.iostat().path("bdevs")) {
            JsonNode p = before.get(b.path("name").asText());
            long rOps = delta(b, p, "num_read_ops"), wOps = delta(b, p, "num_write_ops");
            double rLat = rOps > 0 ? delta(b, p, "read_latency_ticks") / tickRate * 1e6 / rOps : NONE;
            double wLat = wOps > 0 ? delta(b, p, "write_latency_ticks") / tickRate * 1e6 / wOps : NONE;
            m.put(b.path("name").asText(), new double[] {rate(rOps, secs), rate(wOps, secs), rate(delta(b, p, "bytes_read"), secs),
                    rate(delta(b, p, "bytes_written"), secs), rLat, wLat});
        }
        return m;
    }

    static Table bdevs(TopSample prev, TopSample cur) {
        List<Column> cols = List.of(new Column("BDEV", false), new Column("IOPS", true), new Column("READ/s", true), new Column("WRITE/s", true),
                new Column("MiB/s", true), new Column("RD MiB/s", true), new Column("WR MiB/s", true),
                new Column("RD LAT us", true), new Column("WR LAT us", true));
        Map<String, double[]> rates = bdevRates(prev, cur);
        List<Row> rows = new ArrayList<>();
        for (JsonNode b : cur.iostat().path("bdevs")) {
            double[] r = rates.get(b.path("name").asText());
            double iops = r[0] + r[1], rmib = r[2] / MIB, wmib = r[3] / MIB;
            rows.add(new Row(new String[] {b.path("name").asText(), num(iops), num(r[0]), num(r[1]), mib(rmib + wmib), mib(rmib), mib(wmib), lat(r[4]), lat(r[5])},
                    new double[] {NONE, iops, r[0], r[1], rmib + wmib, rmib, wmib, r[4], r[5]}, List.of()));
        }
        return new Table(View.BDEVS, cols, rows);
    }

    // ---- arithmetic and number formats ----

    private static double seconds(TopSample prev, TopSample cur) {
        return prev == null ? 0 : (cur.nanos() - prev.nanos()) / 1e9;
    }

    /** {@code cur - prev} of a counter; without a previous value (first sample, new object) the whole count is not a rate: 0. */
    private static long delta(JsonNode cur, JsonNode prev, String field) {
        if (prev == null) return 0;
        long d = cur.path(field).asLong() - prev.path(field).asLong();
        return Math.max(0, d);
    }

    private static double rate(long count, double secs) {
        return secs > 0 ? count / secs : 0;
    }

    private static String num(double v) {
        return String.format(Locale.ROOT, "%.0f", v);
    }

    private static String pct(double v) {
        return String.format(Locale.ROOT, "%.1f", v);
    }

    private static String mib(double v) {
        return Double.isNaN(v) ? "-" : String.format(Locale.ROOT, "%.1f", v);
    }

    private static String ratio(double v) {
        return Double.isNaN(v) ? "-" : String.format(Locale.ROOT, "%.2f", v);
    }

    private static String lat(double v) {
        return Double.isNaN(v) ? "-" : String.format(Locale.ROOT, "%.1f", v);
    }

    // ---- sorting and rendering ----

    /** The top-level rows sorted by {@code column} (numbers by value, text by name; "-" last). */
    static List<Row> sortedParents(Table t, int column, boolean descending) {
        Comparator<Row> byName = Comparator.comparing(r -> r.cells()[0]);
        Comparator<Row> c;
        if (t.columns().get(column).numeric()) {
            Comparator<Row> byValue = (a, b) -> {
                double x = a.keys()[column], y = b.keys()[column];
                if (Double.isNaN(x) || Double.isNaN(y)) return Boolean.compare(Double.isNaN(x), Double.isNaN(y));
                return descending ? Double.compare(y, x) : Double.compare(x, y);
            };
            c = byValue.thenComparing(byName);
        } else {
            Comparator<Row> byText = Comparator.comparing(r -> r.cells()[column]);
            c = (descending ? byText.reversed() : byText).thenComparing(byName);
        }
        List<Row> rows = new ArrayList<>(t.rows());
        rows.sort(c);
        return rows;
    }

    /** The rows in display order: sorted parents, each followed by its children (a controller's queues, in queue order). */
    static List<Row> sorted(Table t, int column, boolean descending) {
        List<Row> out = new ArrayList<>();
        for (Row r : sortedParents(t, column, descending)) {
            out.add(r);
            out.addAll(r.children());
        }
        return out;
    }

    /** The table as lines: a header, then the rows; each column as wide as its widest cell, numbers right-aligned. */
    static List<String> lines(Table t, int sortColumn, boolean descending) {
        List<Row> rows = sorted(t, sortColumn, descending);
        int n = t.columns().size();
        String[] titles = new String[n];
        int[] w = new int[n];
        for (int i = 0; i < n; i++) {
            titles[i] = t.columns().get(i).title() + (i == sortColumn ? (descending ? "v" : "^") : "");
            w[i] = titles[i].length();
        }
        for (Row r : rows) for (int i = 0; i < n; i++) w[i] = Math.max(w[i], r.cells()[i].length());
        List<String> out = new ArrayList<>();
        out.add(line(t, titles, w));
        for (Row r : rows) out.add(line(t, r.cells(), w));
        return out;
    }

    private static String line(Table t, String[] cells, int[] w) {
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < cells.length; i++) {
            if (i > 0) sb.append("  ");
            String c = cells[i];
            String pad = " ".repeat(w[i] - c.length());
            if (t.columns().get(i).numeric()) sb.append(pad).append(c);
            else sb.append(c).append(i == cells.length - 1 ? "" : pad);
        }
        return sb.toString().stripTrailing();
    }

    /**
     * A whole screen: the title line, the view tabs, the table and the key help, cut to
     * {@code width} columns and {@code height} lines (rows that do not fit are counted in a
     * "more" line).
     */
    static List<String> screen(String title, Table t, int sortColumn, boolean descending, int width, int height) {
        List<String> out = new ArrayList<>();
        out.add(title);
        StringBuilder tabs = new StringBuilder();
        for (View v : View.values()) {
            String label = (v.ordinal() + 1) + " " + v.title;
            tabs.append(v == t.view() ? "[" + label + "]" : " " + label + " ").append(' ');
        }
        tabs.append(" sort: ").append(t.columns().get(sortColumn).title()).append(descending ? " (desc)" : " (asc)");
        out.add(tabs.toString().stripTrailing());
        out.add("");
        List<String> table = lines(t, sortColumn, descending);
        String help = "1/2/3 or Tab: view   s: sort column   r: reverse   q: quit";
        int room = Math.max(2, height - out.size() - 1);
        if (table.size() > room) {
            int hidden = table.size() - (room - 1);
            out.addAll(table.subList(0, room - 1));
            out.add("... " + hidden + " more row" + (hidden == 1 ? "" : "s") + " (enlarge the terminal)");
        } else {
            out.addAll(table);
        }
        while (out.size() < height - 1) out.add("");
        out.add(help);
        List<String> cut = new ArrayList<>(out.size());
        for (String l : out.subList(0, Math.min(out.size(), height))) cut.add(l.length() > width ? l.substring(0, width).stripTrailing() : l);
        return cut;
    }

    /** The table as JSON for {@code --once --json}: one object per row (children nested as "queues"). */
    static ArrayNode json(Table t, int sortColumn, boolean descending) {
        ArrayNode a = Json.arr();
        for (Row r : sortedParents(t, sortColumn, descending)) {
            ObjectNode o = rowJson(t, r);
            if (!r.children().isEmpty()) {
                ArrayNode q = o.putArray("queues");
                for (Row c : r.children()) {
                    ObjectNode qo = Json.obj().put("queue", (int) c.keys()[0]);
                    rowJson(t, c).properties().stream().skip(3).forEach(e -> qo.set(e.getKey(), e.getValue()));
                    q.add(qo);
                }
            }
            a.add(o);
        }
        return a;
    }

    private static ObjectNode rowJson(Table t, Row r) {
        ObjectNode o = Json.obj();
        for (int i = 0; i < t.columns().size(); i++) {
            Column c = t.columns().get(i);
            String key = c.title().toLowerCase(Locale.ROOT).replace("%", "_pct").replace("/s", "_per_s").replace("/", "_per_").replace(' ', '_');
            double k = r.keys()[i];
            if (c.numeric() && !Double.isNaN(k)) o.put(key, Math.round(k * 100) / 100.0);
            else if (c.numeric()) o.putNull(key);
            else o.put(key, r.cells()[i].strip());
        }
        return o;
    }
}
