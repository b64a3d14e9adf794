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
        for (int chunk : new int[] {1, 2, 3, 7, 1000}) {
            assertThat(split(stream, chunk)).as("chunk %d", chunk).isEqualTo(expected);
        }
    }

    @Test
    void aMalformedValueIsCutSoTheNextOneStillParses() {
        assertThat(split("{\"a\": tru}{\"b\":2}", 4)).containsExactly("{\"a\": tru}", "{\"b\":2}");
        assertThat(split("garbage{\"b\":2}", 1)).containsExactly("garbage", "{\"b\":2}");
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
