package io.jvhost.rpc;

import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.function.Consumer;

/**
 * Cuts a byte stream into top-level JSON texts without parsing them, so that requests may be
 * concatenated with no framing at all (SPDK's {@code rpc.py} sends one object after another,
 * no newline) and a malformed request can be answered and skipped instead of poisoning the
 * rest of the connection.
 *
 * <p>A value that starts with {@code {} or {@code [} ends when its brackets balance, counting
 * only brackets outside strings (a backslash escapes the next byte inside a string); a string
 * at top level ends at its closing quote; any other top-level token ends at whitespace or at
 * the next {@code {} / {@code [}. Bytes are scanned, not decoded: UTF-8 continuation bytes
 * never look like ASCII delimiters. Each cut is handed to the consumer, which parses it and
 * reports a parse error if it is not valid JSON. Whitespace between values is skipped.
 *
 * <p>A top-level token that is not an object or array ({@code 123}, {@code null},
 * {@code }}}}) can never be a request, and the stream cannot tell where it ends ({@code 123}
 * may go on with {@code 4}). So that the sender is not left waiting for an answer, it is cut
 * where the bytes at hand end when no delimiter came first: junk written in one piece gets one
 * answer; junk split across reads may get one answer per piece, and the stream stays in step.
 */
public final class JsonStreamSplitter {
    /** A single request larger than this is refused (and the connection closed). */
    public static final int DEFAULT_MAX_REQUEST = 8 << 20;

    private final int maxRequest;
    private byte[] buf = new byte[4096];
    private int len;
    private int depth;
    private boolean inString;
    private boolean escape;
    private boolean scalar; // current value is a top-level token that is not an object/array
    private boolean tooLong;

    public JsonStreamSplitter(int maxRequest) {
        this.maxRequest = maxRequest;
    }

    /**
     * Consumes {@code in} (position to limit), handing each complete value to {@code out}.
     * Returns false once a value exceeds the size limit: the stream cannot be resynchronized
     * safely, so the caller should answer and close.
     */
    public boolean feed(ByteBuffer in, Consumer<byte[]> out) {
        while (in.hasRemaining()) {
            byte b = in.get();
            if (len == 0) {
                if (b == ' ' || b == '\n' || b == '\r' || b == '\t') continue;
                append(b);
                if (b == '{' || b == '[') {
                    depth = 1;
                    scalar = false;
                } else if (b == '"') {
                    inString = true;
                    scalar = false;
                    depth = 0;
                } else {
                    scalar = true;
                }
            } else if (scalar) {
                if (b == ' ' || b == '\n' || b == '\r' || b == '\t') {
                    emit(out);
                } else if (b == '{' || b == '[') {
                    emit(out);
                    in.position(in.position() - 1); // starts the next value
                } else {
                    append(b);
                }
            } else {
                append(b);
                if (inString) {
                    if (escape) escape = false;
                    else if (b == '\\') escape = true;
                    else if (b == '"') {
                        inString = false;
                        if (depth == 0) emit(out); // a top-level string
                    }
                } else if (b == '"') {
                    inString = true;
                } else if (b == '{' || b == '[') {
                    depth++;
                } else if (b == '}' || b == ']') {
                    if (--depth == 0) emit(out);
                }
            }
            if (tooLong) return false;
        }
        if (len > 0 && scalar) emit(out);
        return true;
    }

    /** True while part of a value has been fed but not yet emitted. */
    public boolean pending() {
        return len > 0;
    }

    /** End of stream: a pending complete token (a bare scalar) is emitted; returns the bytes of an unfinished value, or null. */
    public byte[] finish(Consumer<byte[]> out) {
        if (len == 0) return null;
        if (scalar) {
            emit(out);
            return null;
        }
        byte[] rest = Arrays.copyOf(buf, len);
        reset();
        return rest;
    }

    private void append(byte b) {
        if (len >= maxRequest) {
            tooLong = true;
            return;
        }
        if (len == buf.length) buf = Arrays.copyOf(buf, Math.min(maxRequest, len * 2));
        buf[len++] = b;
    }

    private void emit(Consumer<byte[]> out) {
        byte[] v = Arrays.copyOf(buf, len);
        reset();
        if (buf.length > 65536) buf = new byte[4096]; // do not keep a huge buffer for a small connection
        out.accept(v);
    }

    private void reset() {
        len = 0;
        depth = 0;
        inString = false;
        escape = false;
        scalar = false;
    }
}
