package io.jvhost.cli;

import io.jvhost.rpc.JsonRpcServer;
import picocli.CommandLine;
import picocli.CommandLine.Model.UsageMessageSpec;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Every command's {@code --help} laid out like a man page: usage, then Description, Arguments,
 * Options, Commands and, in the footer, Examples, Environment/Files and Exit status. The
 * commands keep their own description and options; the sections they do not carry themselves
 * (mostly examples) are added here, so {@code jvhost help X} and {@code jvhost X --help} match.
 */
final class ManPages {
    private ManPages() {}

    /** Width of the help text: the descriptions are written for 100 columns. */
    static final int WIDTH = 100;

    private static final Map<String, List<String>> EXTRA = Map.of(
            "jvhost", List.of("Examples:",
                    "  jvhost serve                                  # RAM disk on ./vhost.0, prints QEMU's options",
                    "  jvhost serve --json /etc/jvhost/jvhost.json -S /run/jvhost   # a saved or SPDK config",
                    "  jvhost rpc vhost_get_controllers              # manage a running target",
                    "  jvhost top                                    # watch it",
                    "  jvhost bench -s ./vhost.0 -w randread --qd 32 # measure it without a VM",
                    "",
                    "Environment:",
                    "  JAVA_HOME         the Java 25+ the ./jvhost launcher runs (else the newest under /usr/lib/jvm)",
                    "  JVHOST_JAVA_OPTS  extra JVM flags for the launcher, e.g. -Xmx2g",
                    "  JVHOST_DEBUG      set: unexpected failures print their stack trace"),
            "serve", List.of("Examples:",
                    "  jvhost serve                                  # 256 MiB RAM disk as vhost-user-blk on ./vhost.0",
                    "  jvhost serve --file /var/lib/vm/disk.img --ctrlr vm1 -S /run/jvhost",
                    "  jvhost serve --type scsi --null 8G            # a null disk behind vhost-user-scsi, for benchmarks",
                    "  jvhost serve --empty -r /tmp/jvhost.sock      # nothing yet; create disks with 'jvhost rpc'",
                    "  jvhost serve --json cfg.json -m 0x3           # a config (rpc save_config, or SPDK's), reactors on cores 0-1",
                    "",
                    "Environment:",
                    "  NOTIFY_SOCKET   set by systemd (Type=notify): READY=1 is sent there once every controller",
                    "                  listens and the RPC socket accepts, STOPPING=1 on shutdown; a path or @abstract",
                    "  JOURNAL_STREAM  set by systemd: logs go to stdout without timestamps (the journal adds them)",
                    "",
                    "Files:",
                    "  " + JsonRpcServer.DEFAULT_SOCKET + "           default JSON-RPC socket (-r)",
                    "  contrib/systemd/jvhost.service, contrib/jvhost.json   a systemd unit and a sample config",
                    "",
                    "Exit status: 0 stopped by a signal or spdk_kill_instance, 2 start-up refused (the reason is",
                    "one line on stderr: bad option, taken socket, bad config), 1 an unexpected failure."),
            "bench", List.of("Examples:",
                    "  jvhost bench -s ./vhost.0                     # 4k random reads, QD 32, 10 s",
                    "  jvhost bench -s ./vhost.0 -w randrw --mix 70 --bs 16k --queues 2 --qd 16",
                    "  jvhost bench -s /var/tmp/vhost.1 -t scsi --verify -w randwrite --time 30",
                    "  jvhost bench -s /var/tmp/spdk.0 --hugepages --json   # SPDK's target maps only hugepages",
                    "  jvhost bench -s /var/tmp/spdk.pk --hugepages --ring packed --indirect --verify",
                    "",
                    "Exit status: 0 done, 1 the target failed a request or the run, 2 bad usage."),
            "bench-suite", List.of("Examples:",
                    "  jvhost bench-suite                            # jvhost vs qemu-storage-daemon, 3 rounds",
                    "  jvhost bench-suite --only qd1 --rounds 5 --out results.md",
                    "  jvhost bench-suite --spdk /work/spdk          # and SPDK's vhost target (needs hugepages)",
                    "",
                    "Exit status: 0 done, 1 a target could not be started or a run failed."),
            "help", List.of("Examples:",
                    "  jvhost help serve",
                    "  jvhost help rpc                               # includes the list of RPC methods"));

    /** Applies the layout to {@code cl} and all its subcommands. */
    static void apply(CommandLine cl) {
        UsageMessageSpec u = cl.getCommandSpec().usageMessage();
        cl.setUsageHelpWidth(WIDTH);
        u.synopsisHeading("Usage: ");
        u.descriptionHeading("%nDescription:%n");
        u.parameterListHeading("%nArguments:%n");
        u.optionListHeading("%nOptions:%n");
        u.commandListHeading("%nCommands:%n");
        // Blank lines the descriptions end with were spacing before the options; the headings space now.
        // A header (picocli's own help command has one) goes into the description: usage comes first.
        List<String> description = new ArrayList<>(List.of(u.header()));
        description.addAll(List.of(u.description()));
        u.header(new String[0]);
        while (!description.isEmpty() && description.getFirst().isBlank()) description.removeFirst();
        while (!description.isEmpty() && description.getLast().isBlank()) description.removeLast();
        u.description(description.toArray(new String[0]));
        List<String> extra = EXTRA.get(cl.getCommandName());
        if (extra != null) {
            List<String> footer = new ArrayList<>();
            footer.add("");
            footer.addAll(extra);
            for (String l : u.footer()) footer.add(l);
            u.footer(footer.toArray(new String[0]));
        }
        for (CommandLine sub : cl.getSubcommands().values()) apply(sub);
    }
}
