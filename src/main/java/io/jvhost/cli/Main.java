package io.jvhost.cli;

import picocli.CommandLine;
import picocli.CommandLine.Command;

import java.util.ArrayList;
import java.util.List;

/** jvhost command-line entry point. */
@Command(name = "jvhost", mixinStandardHelpOptions = true, versionProvider = Main.Version.class,
        description = {"A vhost-user storage target (virtio-blk, virtio-scsi) in Java: serves disks to QEMU guests",
                "from a user-space process that polls the guests' queues in shared memory.", ""},
        subcommands = {ServeCommand.class, RpcCommand.class, TopCommand.class, BenchCommand.class, BenchSuiteCommand.class, CommandLine.HelpCommand.class},
        footer = {"", "Each command's manual: jvhost help COMMAND (or jvhost COMMAND --help)."})
public final class Main implements Runnable {
    public static final String VERSION = io.jvhost.rpc.FrameworkRpc.VERSION;

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        spec.commandLine().usage(System.out);
    }

    /** The configured command line (also used by tests). */
    static CommandLine commandLine() {
        CommandLine cl = new CommandLine(new Main()).setCaseInsensitiveEnumValuesAllowed(true);
        CommandLine rpc = cl.getSubcommands().get("rpc");
        // Everything after METHOD belongs to the method: --name etc. are not jvhost's options.
        rpc.setStopAtPositional(true);
        rpc.setUnmatchedOptionsArePositionalParams(true);
        var usage = rpc.getCommandSpec().usageMessage();
        List<String> footer = new ArrayList<>(List.of(RpcCommand.methodsHelp()));
        footer.addAll(List.of(usage.footer()));
        usage.footer(footer.toArray(new String[0]));
        ManPages.apply(cl);
        // A failure nobody anticipated is still one line on stderr and exit code 1; expected
        // start-up errors (bad options, taken sockets, bad configs) are handled by the commands
        // with exit code 2. JVHOST_DEBUG=1 adds the stack trace.
        cl.setExecutionExceptionHandler((e, line, parsed) -> {
            line.getErr().println("jvhost: " + line.getCommandName() + " failed: " + e);
            if (System.getenv("JVHOST_DEBUG") != null) e.printStackTrace(line.getErr());
            return 1;
        });
        return cl;
    }

    public static void main(String[] args) {
        int rc = commandLine().execute(args);
        if (rc != 0 || !ServeCommand.keepRunning) System.exit(rc);
    }

    static final class Version implements CommandLine.IVersionProvider {
        @Override
        public String[] getVersion() {
            return new String[] {"jvhost " + VERSION + " (Java " + Runtime.version() + ")"};
        }
    }
}
