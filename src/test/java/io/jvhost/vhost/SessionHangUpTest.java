package io.jvhost.vhost;

import io.jvhost.bdev.MallocBlockDevice;
import io.jvhost.runtime.IdleStrategy;
import io.jvhost.sys.UnixSocket;
import io.jvhost.vhostuser.VhostUserConnection;
import io.jvhost.vhostuser.VhostUserMessage;
import io.jvhost.vhostuser.VhostUserRequest;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;

import static io.jvhost.vhostuser.VhostUserProtocol.VERSION;
import static org.assertj.core.api.Assertions.assertThat;

/**
 * Found by {@link SessionFuzzTest} (with {@code -Djvhost.fuzz.hangUpWithRepliesOwed=true}): a
 * front-end that hangs up while a reply is owed makes the session's reply fail with EPIPE, which
 * escaped the message handler as a {@code NativeException}; the session logged "closing connection
 * after unexpected error" with a stack trace at ERROR level and counted a protocol error, where a
 * plain disconnect was meant. Now EPIPE/ECONNRESET on a reply ends the session as a disconnect.
 */
class SessionHangUpTest {
    @TempDir
    Path dir;
    VhostTarget target;
    Controller ctrl;

    @BeforeEach
    void setUp() {
        target = new VhostTarget(dir, 1, IdleStrategy.BACKOFF);
        target.bdevs().register(new MallocBlockDevice("D", 64, 512, null));
        ctrl = target.createBlkController("c", "D", false, 1, null);
    }

    @AfterEach
    void tearDown() {
        target.close();
    }

    @Test
    void aFrontEndThatHangsUpWithAReplyOwedIsADisconnectNotAnError() throws Exception {
        UnixSocket[] pair = UnixSocket.pair();
        Session s = new Session(ctrl, ctrl.device(), new VhostUserConnection(pair[1], true), 1);
        try (VhostUserConnection fe = new VhostUserConnection(pair[0], false); VhostUserMessage m = new VhostUserMessage()) {
            m.begin(VhostUserRequest.GET_FEATURES, VERSION, 0);
            fe.send(m);
            // Hang up before the session has read the request: its reply can only fail.
            pair[0].shutdown();
            s.run(); // on this thread: returns once the session has torn down
        }
        assertThat(ctrl.stats.protocolErrors.get()).as("a hang-up is not a protocol error").isZero();
    }
}
