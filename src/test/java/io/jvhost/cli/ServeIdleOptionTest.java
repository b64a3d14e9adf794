package io.jvhost.cli;

import io.jvhost.runtime.IdleStrategy;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** {@code serve --idle POLICY}, {@code --busy-poll} and {@code --interrupt-mode}: at most one, each its strategy. */
class ServeIdleOptionTest {
    @Test
    void serveChoosesOnePolicy() {
        assertThat(parse().idleStrategy()).isSameAs(IdleStrategy.BACKOFF);
        assertThat(parse("--idle", "sleep").idleStrategy()).isSameAs(IdleStrategy.SLEEP);
        assertThat(parse("--interrupt-mode").idleStrategy()).isSameAs(IdleStrategy.SLEEP);
        assertThat(parse("--idle", "poll").idleStrategy()).isSameAs(IdleStrategy.BUSY);
        assertThat(parse("--busy-poll").idleStrategy()).isSameAs(IdleStrategy.BUSY);
        assertThat(parse("--idle", "backoff").idleStrategy()).isSameAs(IdleStrategy.BACKOFF);
        assertThatThrownBy(() -> parse("--idle", "nap").idleStrategy()).hasMessageContaining("choose poll, backoff or sleep");
        assertThatThrownBy(() -> parse("--busy-poll", "--interrupt-mode").idleStrategy()).hasMessageContaining("choose one of");
        assertThat(IdleStrategy.SLEEP.spinNanos()).isZero();
        assertThat(IdleStrategy.SLEEP.yieldNanos()).isZero();
        assertThat(IdleStrategy.SLEEP.sleep()).isTrue();
    }

    private static ServeCommand parse(String... args) {
        ServeCommand c = new ServeCommand();
        new CommandLine(c).parseArgs(args);
        return c;
    }
}
