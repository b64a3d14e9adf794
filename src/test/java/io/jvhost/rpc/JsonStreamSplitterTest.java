package io.jvhost.rpc;

import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

/** Cutting an unframed stream of JSON texts into requests, whatever the read boundaries. */
class JsonStreamSplitterTest {
    static List<String> split(String stream, int chunk) {
        JsonStreamSplitter s = new JsonStreamSplitter(1 << 20);
        List<String> out = new ArrayList<>();
        byte[] b = stream.getBytes(StandardCharsets.UTF_8);
        for (int i = 0; i < b.length; i += chunk) {
            assertThat(s.feed(ByteBuffer.wrap(b, i, Math.min(chunk, b.length - i)), v -> out.add(new String(v, StandardCharsets.UTF_8)))).isTrue();
        }
        byte[] rest = s.finish(v -> out.add(new String(v, StandardCharsets.UTF_8)));
        if (rest != null) out.add("REST:" + new String(rest, StandardCharsets.UTF_8));
        return out;
    }

    @Test
    void concatenatedObjectsArraysStringsAndScalarsAreCutAtTheirEnds() {
        String stream = "{\"a\":1}{\"b\":[1,{\"c\":2}]}\n  [1,2]\"top\" 42 true {\"d\":\"}{][\\\"\"}nul {\"é\":\"ü{\"}";
        List<String> expected = List.of("{\"a\":1}", "{\"b\":[1,{\"c\":2}]}", "[1,2]", "\"top\"", "42", "true",
                "{\"d\":\"}{][\\\"\"}", "nul", "{\"é\":\"ü{\"}");
        assertThat(split(stream, 1000)).isEqualTo(expected);
        // Objects, arrays and strings are whole whatever the read boundaries; a bare scalar (never a
        // request) may be cut where a read ends, into pieces that are each answered.
        java.util.function.Predicate<String> structured = v -> v.startsWith("{") || v.startsWith("[") || v.startsWith("\"");
        for (int chunk : new int[] {1, 2, 3, 7}) {
            List<String> got = split(stream, chunk);
            assertThat(got.stream().filter(structured).toList()).as("chunk %d", chunk).isEqualTo(expected.stream().filter(structured).toList());
            assertThat(String.join("", got)).as("chunk %d", chunk).isEqualTo(String.join("", expected));
        }
    }

    @Test
    void aMalformedValueIsCutSoTheNextOneStillParses() {
        assertThat(split("{\"a\": tru}{\"b\":2}", 4)).containsExactly("{\"a\": tru}", "{\"b\":2}");
        assertThat(split("garbage{\"b\":2}", 100)).containsExactly("garbage", "{\"b\":2}");
        assertThat(split("garbage{\"b\":2}", 4)).containsExactly("garb", "age", "{\"b\":2}");
    }

    @Test
    void aBareScalarAtTheEndOfTheBytesAtHandIsCutAtOnceSoItCanBeAnswered() {
        // Regression (issue 15): "123", "null" and "}}}" without a trailing delimiter waited for
        // more input forever, so the sender never got its -32600 / -32700.
        for (String junk : new String[] {"123", "null", "}}}"}) {
            JsonStreamSplitter s = new JsonStreamSplitter(1 << 20);
            List<String> out = new ArrayList<>();
            assertThat(s.feed(ByteBuffer.wrap(junk.getBytes(StandardCharsets.UTF_8)), v -> out.add(new String(v, StandardCharsets.UTF_8)))).isTrue();
            assertThat(out).as(junk).containsExactly(junk);
            // The connection goes on: the next request is cut whole.
            s.feed(ByteBuffer.wrap("{\"x\":1}".getBytes(StandardCharsets.UTF_8)), v -> out.add(new String(v, StandardCharsets.UTF_8)));
            assertThat(out).as(junk).containsExactly(junk, "{\"x\":1}");
        }
    }

    @Test
    void anUnfinishedValueIsReturnedAtEndOfStream() {
        assertThat(split("{\"a\":1}{\"b\":", 5)).containsExactly("{\"a\":1}", "REST:{\"b\":");
        assertThat(split("   \n", 1)).isEmpty();
    }

    @Test
    void aValueOverTheLimitStopsTheStream() {
        JsonStreamSplitter s = new JsonStreamSplitter(16);
        List<byte[]> out = new ArrayList<>();
        assertThat(s.feed(ByteBuffer.wrap("{\"a\":1}".getBytes()), out::add)).isTrue();
        assertThat(s.feed(ByteBuffer.wrap("{\"aaaaaaaaaaaaaaaaaaaaaaaaaa\":1}".getBytes()), out::add)).isFalse();
        assertThat(out).hasSize(1);
    }
}
