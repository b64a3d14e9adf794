package io.jvhost.cli;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import picocli.CommandLine;
import picocli.CommandLine.Model.OptionSpec;

import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

/** Every command's --help reads like a man page: usage, a description, options with their defaults, examples. */
class HelpTest {
    @ParameterizedTest
    @ValueSource(strings = {"jvhost", "serve", "rpc", "top", "bench", "bench-suite", "help"})
    void everyCommandsHelpHasUsageDescriptionAndExamples(String command) {
        RpcCommandTest.Run r = command.equals("jvhost") ? RpcCommandTest.raw("--help") : RpcCommandTest.raw(command, "--help");
        assertThat(r.exit()).isZero();
        assertThat(r.err()).as("no picocli warnings").isEmpty();
        String usage = command.equals("jvhost") ? "Usage: jvhost " : "Usage: jvhost " + command + " ";
        assertThat(r.out()).startsWith(usage);
        List<String> lines = r.out().lines().toList();
        int d = lines.indexOf("Description:");
        assertThat(d).as("a Description section").isPositive();
        assertThat(lines.get(d + 1)).as("the description's first line").isNotBlank();
        assertThat(lines).contains("Options:");
        int e = lines.indexOf("Examples:");
        assertThat(e).as("an Examples section").isPositive();
        String example = command.equals("jvhost") ? "  jvhost " : "  jvhost " + command;
        assertThat(lines.get(e + 1)).as("the first example").startsWith(example);
        assertThat(lines).as("fits %d columns", ManPages.WIDTH).allMatch(l -> l.length() <= ManPages.WIDTH);
        // "jvhost help X" shows the same page.
        if (!command.equals("jvhost") && !command.equals("help")) assertThat(RpcCommandTest.raw("help", command).out()).isEqualTo(r.out());
    }

    @ParameterizedTest
    @ValueSource(strings = {"serve", "rpc", "top", "bench", "bench-suite"})
    void everyOptionIsDescribedAndSaysItsDefault(String command) {
        CommandLine cl = Main.commandLine().getSubcommands().get(command);
        for (OptionSpec o : cl.getCommandSpec().options()) {
            if (o.usageHelp() || o.versionHelp()) continue;
            String text = String.join(" ", o.description());
            assertThat(text).as("%s %s", command, o.longestName()).isNotBlank();
            Object initial = o.initialValue();
            boolean hasDefault = initial != null && !(initial instanceof Boolean b && !b) && !(initial instanceof List<?> l && l.isEmpty());
            if (hasDefault && !o.required()) {
                assertThat(text.toLowerCase()).as("%s %s (initially %s) should say its default", command, o.longestName(), initial)
                        .containsAnyOf("default", "current directory");
            }
        }
    }
}
