package io.jvhost.rpc;

import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;

/** Shared Jackson set-up for the management plane (control path only). */
public final class Json {
    private Json() {}

    /**
     * Strict: one JSON value per document, duplicate keys rejected (a duplicated parameter is a
     * mistake, not a silent override).
     */
    public static final ObjectMapper MAPPER = JsonMapper.builder()
            .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
            .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION)
            .build();

    public static ObjectNode obj() {
        return JsonNodeFactory.instance.objectNode();
    }

    public static ArrayNode arr() {
        return JsonNodeFactory.instance.arrayNode();
    }
}
