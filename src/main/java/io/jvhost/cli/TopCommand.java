package io.jvhost.cli;

import io.jvhost.rpc.Json;
import io.jvhost.rpc.JsonRpcServer;
import io.jvhost.rpc.RpcClient;
import io.jvhost.rpc.RpcException;
import org.jline.terminal.Attributes;
import org.jline.terminal.Terminal;
import org.jline.terminal.TerminalBuilder;
import org.jline.utils.InfoCmp;
import org.jline.utils.NonBlockingReader;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.time.Duration;
import java.time.LocalTime;
import java.time.format.DateTimeFormatter;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * {@code jvhost top}: a live view of a running target over its RPC socket, in the manner of
 * SPDK's {@code spdk_top}: reactors, controllers with their queues, bdevs; rates from the
 * difference of two samples. The terminal (raw mode, keys, size) is JLine's; the frames are
 * {@link TopFrame}'s plain lines.
 */
@Command(name = "top", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Watch a running 'jvhost serve': reactors (busy %%), controllers and their queues",
                "(IOPS, MiB/s, in flight, calls per request), bdevs (IOPS, MiB/s, latency), refreshed",
                "every --delay seconds. Reads the same counters as 'jvhost rpc' (framework_get_reactors,",
                "vhost_get_controllers, vhost_get_stats, bdev_get_iostat); rates are differences of two samples.", "",
                "Keys:  1 Reactors   2 Controllers   3 Bdevs   Tab next view",
                "       s sort by the next column   r reverse the order   q (or Ctrl-C) quit", ""},
        footer = {"", "Examples:",
                "  jvhost top                                   # the default socket " + JsonRpcServer.DEFAULT_SOCKET,
                "  jvhost top -s /run/jvhost/rpc.sock -d 2      # another socket, refresh every 2 s",
                "  jvhost top --once                            # one frame of every view as text, for scripts",
                "  jvhost top --once --view bdevs --json        # one view as JSON rows",
                "", "Exit status: 0 quit, 1 the server could not be reached or went away, 2 bad usage."})
final class TopCommand implements Callable<Integer> {
    @Option(names = {"-s", "--socket"}, paramLabel = "PATH", description = "The server's RPC socket (default: ${DEFAULT-VALUE}).")
    Path socket = Path.of(JsonRpcServer.DEFAULT_SOCKET);

    @Option(names = {"-d", "--delay"}, paramLabel = "SECONDS", description = "Seconds between refreshes, and between the two samples of --once (default: ${DEFAULT-VALUE}).")
    double delay = 1.0;

    @Option(names = "--view", paramLabel = "VIEW", description = "View to show first: reactors, controllers or bdevs (default: reactors; with --once: all three).")
    TopFrame.View view;

    @Option(names = "--once", description = "Print one frame as plain text (no terminal control) and exit.")
    boolean once;

    @Option(names = "--json", description = "With --once: print the rows as JSON instead of text.")
    boolean json;

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() {
        PrintWriter err = spec.commandLine().getErr();
        if (!(delay >= 0.05 && delay <= 3600)) {
            err.println("jvhost top: --delay must be between 0.05 and 3600 seconds, got " + delay);
            err.flush();
            return 2;
        }
        if (json && !once) {
            err.println("jvhost top: --json goes with --once (the live view is for people)");
            err.flush();
            return 2;
        }
        try (RpcClient c = RpcClient.connect(socket, Duration.ofSeconds(30))) {
            return once ? once(c) : live(c);
        } catch (IOException | RpcException e) {
            err.println("jvhost top: " + e.getMessage());
            err.flush();
            return 1;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return 1;
        }
    }

    private long delayMillis() {
        return Math.round(delay * 1000);
    }

    private String title(TopSample cur) {
        return String.format(Locale.ROOT, "jvhost top - %s - pid %d - every %.1f s - %s", socket, cur.reactors().path("pid").asLong(),
                delay, LocalTime.now().format(DateTimeFormatter.ofPattern("HH:mm:ss")));
    }

    private int once(RpcClient c) throws IOException, InterruptedException {
        PrintWriter out = spec.commandLine().getOut();
        TopSample first = TopSample.take(c);
        Thread.sleep(delayMillis());
        TopSample second = TopSample.take(c);
        List<TopFrame.View> views = view != null ? List.of(view) : List.of(TopFrame.View.values());
        if (json) {
            var o = Json.obj();
            for (TopFrame.View v : views) {
                TopFrame.Table t = TopFrame.table(v, first, second);
                o.set(v.name().toLowerCase(Locale.ROOT), TopFrame.json(t, v.defaultSort, true));
            }
            out.println(Json.MAPPER.writerWithDefaultPrettyPrinter().writeValueAsString(o));
        } else {
            out.println(title(second));
            for (TopFrame.View v : views) {
                out.println();
                out.println(v.title + ":");
                for (String l : TopFrame.lines(TopFrame.table(v, first, second), v.defaultSort, true)) out.println(l);
            }
        }
        out.flush();
        return 0;
    }

    private int live(RpcClient c) throws IOException {
        PrintWriter err = spec.commandLine().getErr();
        Terminal term = TerminalBuilder.builder().system(true).dumb(true).build();
        try {
            if (Terminal.TYPE_DUMB.equals(term.getType()) || Terminal.TYPE_DUMB_COLOR.equals(term.getType())) {
                err.println("jvhost top: standard output is not a terminal; use --once (or --once --json) in scripts");
                err.flush();
                return 2;
            }
            return loop(c, term);
        } finally {
            term.close();
        }
    }

    private int loop(RpcClient c, Terminal term) throws IOException {
        TopFrame.View current = view == null ? TopFrame.View.REACTORS : view;
        int[] sortColumn = new int[TopFrame.View.values().length];
        boolean[] descending = new boolean[sortColumn.length];
        for (TopFrame.View v : TopFrame.View.values()) {
            sortColumn[v.ordinal()] = v.defaultSort;
            descending[v.ordinal()] = true;
        }
        AtomicBoolean quit = new AtomicBoolean();
        AtomicBoolean resized = new AtomicBoolean();
        Terminal.SignalHandler oldWinch = term.handle(Terminal.Signal.WINCH, s -> resized.set(true));
        Terminal.SignalHandler oldInt = term.handle(Terminal.Signal.INT, s -> quit.set(true));
        Attributes saved = term.enterRawMode();
        term.puts(InfoCmp.Capability.enter_ca_mode);
        term.puts(InfoCmp.Capability.cursor_invisible);
        String lost = null;
        try {
            NonBlockingReader keys = term.reader();
            TopSample prev = null;
            TopSample cur = TopSample.take(c);
            while (!quit.get()) {
                TopFrame.Table table = TopFrame.table(current, prev, cur);
                draw(term, TopFrame.screen(title(cur) + (prev == null ? " - first sample, rates follow" : ""), table,
                        sortColumn[current.ordinal()], descending[current.ordinal()], term.getWidth() > 0 ? term.getWidth() : 80,
                        term.getHeight() > 0 ? term.getHeight() : 24));
                long deadline = System.nanoTime() + (prev == null ? Math.min(delayMillis(), 250) : delayMillis()) * 1_000_000;
                boolean redraw = false;
                while (!quit.get() && !redraw) {
                    long left = (deadline - System.nanoTime()) / 1_000_000;
                    if (left <= 0) break;
                    int ch = keys.read(Math.min(left, 100));
                    if (ch == NonBlockingReader.READ_EXPIRED) {
                        if (resized.getAndSet(false)) redraw = true;
                        continue;
                    }
                    if (ch < 0) {
                        quit.set(true);
                        break;
                    }
                    int ord = current.ordinal();
                    switch (ch) {
                        case 'q', 'Q', 3 /* Ctrl-C */, 4 /* Ctrl-D */ -> quit.set(true);
                        case '1', '2', '3' -> current = TopFrame.View.values()[ch - '1'];
                        case '\t' -> current = current.next();
                        case 's', 'S' -> sortColumn[ord] = (sortColumn[ord] + 1) % table.columns().size();
                        case 'r', 'R' -> descending[ord] = !descending[ord];
                        default -> {
                            continue; // other keys (and escape sequences) change nothing
                        }
                    }
                    redraw = true;
                }
                if (quit.get()) break;
                if (redraw) continue; // same samples, new view/sort
                try {
                    TopSample next = TopSample.take(c);
                    prev = cur;
                    cur = next;
                } catch (IOException | RpcException e) {
                    lost = "jvhost top: lost the connection to " + socket + ": " + e.getMessage() + " (has jvhost serve stopped?)";
                    break;
                }
            }
        } finally {
            term.puts(InfoCmp.Capability.cursor_visible);
            term.puts(InfoCmp.Capability.exit_ca_mode);
            term.setAttributes(saved);
            term.handle(Terminal.Signal.WINCH, oldWinch);
            term.handle(Terminal.Signal.INT, oldInt);
            term.flush();
        }
        if (lost != null) {
            PrintWriter err = spec.commandLine().getErr();
            err.println(lost);
            err.flush();
            return 1;
        }
        return 0;
    }

    /** Paints a frame over the previous one: home, each line then clear-to-end-of-line, clear below. */
    private static void draw(Terminal term, List<String> lines) {
        StringBuilder sb = new StringBuilder("\033[H");
        for (int i = 0; i < lines.size(); i++) {
            sb.append(lines.get(i)).append("\033[K");
            if (i < lines.size() - 1) sb.append("\r\n");
        }
        sb.append("\033[J");
        term.writer().print(sb);
        term.flush();
    }
}
