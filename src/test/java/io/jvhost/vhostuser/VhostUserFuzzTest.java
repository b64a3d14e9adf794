package io.jvhost.vhostuser;

import io.jvhost.sys.UnixSocket;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.constraints.IntRange;
import net.jqwik.api.constraints.Size;

import java.io.EOFException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import static org.assertj.core.api.Assertions.assertThat;

/** Random byte streams into the back-end codec: it either decodes a valid message or says why. */
class VhostUserFuzzTest {
    @Property(tries = 300)
    void randomMessagesNeverEscapeAsUnexpectedExceptions(@ForAll @IntRange(min = 0, max = 45) int request,
                                                         @ForAll @IntRange(min = 0, max = 15) int flags,
                                                         @ForAll @IntRange(min = -1, max = 5000) int size,
                                                         @ForAll @Size(max = 300) byte[] payload) throws Exception {
        UnixSocket[] pair = UnixSocket.pair();
        try (VhostUserConnection back = new VhostUserConnection(pair[1], true); VhostUserMessage in = new VhostUserMessage();
             Arena arena = Arena.ofConfined()) {
            MemorySegment b = arena.allocate(12 + payload.length);
            b.set(ValueLayout.JAVA_INT_UNALIGNED, 0, request);
            b.set(ValueLayout.JAVA_INT_UNALIGNED, 4, flags);
            b.set(ValueLayout.JAVA_INT_UNALIGNED, 8, size);
            MemorySegment.copy(payload, 0, b, ValueLayout.JAVA_BYTE, 12, payload.length);
            pair[0].send(b, b.byteSize());
            pair[0].shutdown();
            try {
                back.receive(in);
                // decoded: then it must be well-formed
                // version bits other than 1 are tolerated (as DPDK and libvhost-user do), never silently
                if ((in.flags & 3) != 1) assertThat(in.tolerated & VhostUserMessage.TOLERATED_VERSION).isNotZero();
                if ((in.flags & 4) != 0) assertThat(in.tolerated & VhostUserMessage.TOLERATED_REPLY_FLAG).isNotZero();
                assertThat(in.size).isBetween(0, VhostUserProtocol.MAX_PAYLOAD);
                assertThat(in.size).isLessThanOrEqualTo(payload.length);
                assertThat(VhostUserConnection.checkShape(in)).isNull();
            } catch (VhostUserProtocolException e) {
                assertThat(e.getMessage()).isNotBlank();
            } catch (EOFException e) {
                // short stream: fine
            }
        } finally {
            pair[0].close();
        }
    }
}
