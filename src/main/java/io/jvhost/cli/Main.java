package io.jvhost.cli;

import picocli.CommandLine;
import picocli.CommandLine.Command;

/** jvhost command-line entry point. */
@Command(name = "jvhost", mixinStandardHelpOptions = true, versionProvider = Main.Version.class,
        description = {"A vhost-user storage target (virtio-blk, virtio-scsi) in Java: serves disks to QEMU guests",
                "from a user-space process that polls the guests' queues in shared memory.", ""},
        subcommands = {ServeCommand.class, BenchCommand.class, BenchSuiteCommand.class, CommandLine.HelpCommand.class},
        footer = {"", "Start with:  jvhost serve        (RAM disk on ./vhost.0, prints the QEMU command line)",
                "Help:        jvhost help serve"})
public final class Main implements Runnable {
    public static final String VERSION = "0.1.0";

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        spec.commandLine().usage(System.out);
    }

    public static void main(String[] args) {
        int rc = new CommandLine(new Main()).setCaseInsensitiveEnumValuesAllowed(true).execute(args);
        if (rc != 0 || !ServeCommand.keepRunning) System.exit(rc);
    }

    static final class Version implements CommandLine.IVersionProvider {
        @Override
        public String[] getVersion() {
            return new String[] {"jvhost " + VERSION + " (Java " + Runtime.version() + ")"};
        }
    }
}
