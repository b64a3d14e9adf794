package io.jvhost.rpc;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.NullNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;

/**
 * JSON-RPC 2.0 (https://www.jsonrpc.org/specification) over {@link Methods}: one request text
 * in, the response text out (or none for notifications). Transport-free, so it is tested
 * without a socket.
 *
 * <ul>
 *   <li>Not JSON: {@code -32700} with {@code "id": null}; the caller goes on with the next
 *       request (SPDK drops the connection without answering).</li>
 *   <li>Not a request object ({@code jsonrpc} not "2.0", {@code method} not a string, {@code id}
 *       not a string/number/null, {@code params} not an object): {@code -32600}, with the id
 *       when it could be read. Such errors are answered even without an id.</li>
 *   <li>Unknown method {@code -32601}; bad parameters {@code -32602} naming the field; method
 *       failures their SPDK-style code ({@code -errno}); anything unexpected {@code -32603}.</li>
 *   <li>A request without {@code id} is a notification: run, never answered.</li>
 *   <li>A batch (array) runs its requests in order and answers with an array of the responses
 *       (none if all were notifications; an empty batch is {@code -32600}).</li>
 * </ul>
 */
public final class JsonRpcHandler {
    private static final Logger log = LoggerFactory.getLogger(JsonRpcHandler.class);
    private final Methods methods;

    public JsonRpcHandler(Methods methods) {
        this.methods = methods;
    }

    /** Handles one request text; returns the response text (no trailing newline) or null. */
    public byte[] handle(byte[] text) {
        JsonNode req;
        try {
            req = Json.MAPPER.readTree(text);
        } catch (JsonProcessingException e) {
            return write(error(NullNode.getInstance(), RpcException.PARSE_ERROR, "Parse error: " + e.getOriginalMessage()));
        } catch (IOException e) {
            return write(error(NullNode.getInstance(), RpcException.PARSE_ERROR, "Parse error: " + e.getMessage()));
        }
        if (req == null || req.isMissingNode()) {
            return write(error(NullNode.getInstance(), RpcException.PARSE_ERROR, "Parse error: empty request"));
        }
        JsonNode resp = handle(req);
        return resp == null ? null : write(resp);
    }

    /** Handles a parsed request or batch; returns the response or null. */
    public JsonNode handle(JsonNode req) {
        if (req.isArray()) {
            if (req.isEmpty()) return error(NullNode.getInstance(), RpcException.INVALID_REQUEST, "Invalid request: empty batch");
            ArrayNode out = Json.arr();
            for (JsonNode r : req) {
                JsonNode one = single(r);
                if (one != null) out.add(one);
            }
            return out.isEmpty() ? null : out;
        }
        return single(req);
    }

    private JsonNode single(JsonNode req) {
        if (!req.isObject()) return error(NullNode.getInstance(), RpcException.INVALID_REQUEST, "Invalid request: expected a JSON object, got " + req.getNodeType().name().toLowerCase());
        JsonNode id = req.get("id");
        boolean notification = id == null;
        if (id != null && !(id.isTextual() || id.isNumber() || id.isNull())) {
            return error(NullNode.getInstance(), RpcException.INVALID_REQUEST, "Invalid request: \"id\" must be a string, a number or null");
        }
        JsonNode replyId = id == null ? NullNode.getInstance() : id;
        JsonNode version = req.get("jsonrpc");
        if (version == null || !version.isTextual() || !version.asText().equals("2.0")) {
            return error(replyId, RpcException.INVALID_REQUEST, "Invalid request: \"jsonrpc\" must be \"2.0\"");
        }
        JsonNode method = req.get("method");
        if (method == null || !method.isTextual()) {
            return error(replyId, RpcException.INVALID_REQUEST, "Invalid request: \"method\" must be a string");
        }
        JsonNode params = req.get("params");
        if (params != null && !params.isObject() && !params.isNull()) {
            // By-position params are valid JSON-RPC, but SPDK's methods take named parameters only.
            return notification ? null : error(replyId, RpcException.INVALID_PARAMS,
                    method.asText() + ": params must be an object of named parameters");
        }
        try {
            JsonNode result = methods.call(method.asText(), params);
            if (log.isDebugEnabled()) log.debug("rpc {} -> ok", method.asText());
            if (notification) return null;
            ObjectNode r = Json.obj();
            r.put("jsonrpc", "2.0");
            r.set("id", replyId);
            r.set("result", result);
            return r;
        } catch (RpcException e) {
            log.debug("rpc {} -> error {}: {}", method.asText(), e.code(), e.getMessage());
            return notification ? null : error(replyId, e.code(), e.getMessage());
        } catch (RuntimeException e) {
            log.warn("rpc {} failed unexpectedly", method.asText(), e);
            return notification ? null : error(replyId, RpcException.INTERNAL_ERROR, "Internal error: " + e);
        } catch (OutOfMemoryError e) {
            // The Java heap, not the host: answer (as SPDK answers a failed allocation) instead of
            // letting the error end this client's thread with no reply.
            log.error("rpc {} ran out of memory: {}", method.asText(), e.getMessage());
            return notification ? null : error(replyId, RpcException.ENOMEM, method.asText() + ": out of memory: " + e.getMessage() + " (Cannot allocate memory)");
        }
    }

    static ObjectNode error(JsonNode id, int code, String message) {
        ObjectNode r = Json.obj();
        r.put("jsonrpc", "2.0");
        r.set("id", id);
        r.putObject("error").put("code", code).put("message", message);
        return r;
    }

    static byte[] write(JsonNode n) {
        try {
            return Json.MAPPER.writeValueAsBytes(n);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("cannot serialize a JSON tree", e);
        }
    }
}
