package io.jvhost.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.jvhost.rpc.ConfigClient;
import io.jvhost.rpc.Json;
import io.jvhost.rpc.JsonConfig;
import io.jvhost.rpc.JsonRpcServer;
import io.jvhost.rpc.RpcClient;
import io.jvhost.rpc.RpcDocs;
import io.jvhost.rpc.RpcException;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.regex.Pattern;

/**
 * {@code jvhost rpc}: call a management method of a running {@code jvhost serve} (or SPDK) over
 * its JSON-RPC socket and print the JSON result, so nobody needs SPDK's {@code rpc.py}.
 * Options go before METHOD; everything after it are the method's parameters.
 */
@Command(name = "rpc", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Call a JSON-RPC method of a running 'jvhost serve' and print the JSON result.", "",
                "Parameters: --NAME VALUE or --NAME=VALUE ('-' in NAME means '_'). A VALUE",
                "that is true, false, null, a number, {...}, [...] or \"...\" is JSON; else a",
                "string ('\"7\"' is the string 7). A --NAME without a value is true.",
                "Or all at once as a JSON object: -p '{\"name\": \"Malloc0\"}'.",
                "", "Also:  save_config [-o FILE]    write the running configuration (SPDK's format)",
                "       load_config [-i FILE]    replay a saved configuration (stdin without -i)", ""},
        footer = {"", "Examples:",
                "  jvhost rpc bdev_malloc_create --name Malloc1 --num_blocks 262144",
                "  jvhost rpc vhost_create_blk_controller --ctrlr vhost.1 --dev_name Malloc1",
                "  jvhost rpc -s /tmp/jvhost.sock vhost_get_controllers",
                "  jvhost rpc save_config -o cfg.json      # then: jvhost serve --json cfg.json",
                "", "Exit status: 0 success, 1 the call failed (message on stderr), 2 bad usage."})
final class RpcCommand implements Callable<Integer> {
    private static final Pattern JSON_NUMBER = Pattern.compile("-?(0|[1-9][0-9]*)(\\.[0-9]+)?([eE][+-]?[0-9]+)?");

    @Option(names = {"-s", "--socket"}, paramLabel = "PATH", description = "The server's RPC socket (default " + JsonRpcServer.DEFAULT_SOCKET + ").")
    Path socket = Path.of(JsonRpcServer.DEFAULT_SOCKET);

    @Option(names = {"-t", "--timeout"}, paramLabel = "SECONDS", description = "Give up waiting for an answer after this long (default 60).")
    int timeoutSeconds = 60;

    @Option(names = {"-p", "--params"}, paramLabel = "JSON", description = "The parameters as one JSON object.")
    String paramsJson;

    @Option(names = {"-o", "--output"}, paramLabel = "FILE", description = "save_config: write to FILE instead of stdout.")
    Path output;

    @Option(names = {"-i", "--input"}, paramLabel = "FILE", description = "load_config: read FILE instead of stdin.")
    Path input;

    @Parameters(index = "0", arity = "0..1", paramLabel = "METHOD", description = "The method (see the list below, or call rpc_get_methods).")
    String method;

    @Parameters(index = "1..*", arity = "0..*", paramLabel = "PARAM", description = "The method's parameters: --NAME VALUE ...")
    List<String> args = new ArrayList<>();

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    /** The methods list for --help (from {@link RpcDocs}, so it works without a server). */
    static String[] methodsHelp() {
        List<String> l = new ArrayList<>();
        l.add("");
        l.add("Methods (SPDK's names and parameters; [optional], * = jvhost extension):");
        for (RpcDocs.Doc d : RpcDocs.ALL) {
            // Keep within 80 columns: wrap the parameter list under itself.
            StringBuilder line = new StringBuilder(String.format("  %-33s", d.method()));
            int indent = line.length();
            for (String word : d.params().split(" ")) {
                if (word.isEmpty()) continue;
                if (line.length() + 1 + word.length() > 79 && line.length() > indent) {
                    l.add(line.toString());
                    line = new StringBuilder(" ".repeat(indent));
                }
                line.append(' ').append(word);
            }
            l.add(line.toString().stripTrailing());
        }
        return l.toArray(new String[0]);
    }

    @Override
    public Integer call() {
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        if (method == null) {
            err.println("jvhost rpc: missing METHOD (jvhost rpc --help lists them)");
            return 2;
        }
        ObjectNode params;
        try {
            params = parseParams();
        } catch (IllegalArgumentException e) {
            err.println("jvhost rpc: " + e.getMessage());
            return 2;
        }
        try (RpcClient c = RpcClient.connect(socket, Duration.ofSeconds(timeoutSeconds))) {
            switch (method) {
                case "save_config" -> {
                    if (!params.isEmpty()) throw new IllegalArgumentException("save_config takes no parameters (only -o FILE)");
                    String text = Json.MAPPER.writerWithDefaultPrettyPrinter().writeValueAsString(ConfigClient.save(c)) + "\n";
                    if (output != null) Files.writeString(output, text);
                    else out.print(text);
                }
                case "load_config" -> {
                    if (!params.isEmpty()) throw new IllegalArgumentException("load_config takes no parameters (only -i FILE)");
                    String where = input == null ? "<stdin>" : input.toString();
                    JsonNode cfg = readConfig(where);
                    int n = ConfigClient.load(c, cfg, where);
                    err.println("jvhost rpc: loaded " + n + " config entr" + (n == 1 ? "y" : "ies") + " from " + where);
                }
                default -> out.println(Json.MAPPER.writerWithDefaultPrettyPrinter().writeValueAsString(c.call(method, params)));
            }
            out.flush();
            return 0;
        } catch (RpcException e) {
            err.println("jvhost rpc: " + method + " failed: " + e.getMessage() + " (code " + e.code() + ")");
            return 1;
        } catch (JsonConfig.ConfigException e) {
            err.println("jvhost rpc: load_config failed: " + e.getMessage());
            return 1;
        } catch (IllegalArgumentException e) {
            err.println("jvhost rpc: " + e.getMessage());
            return 2;
        } catch (IOException e) {
            err.println("jvhost rpc: " + e.getMessage());
            return 1;
        } finally {
            err.flush();
        }
    }

    private JsonNode readConfig(String where) throws IOException, JsonConfig.ConfigException {
        // Same limits as serve --json (size, nesting) and one-line errors.
        if (input == null || input.toString().equals("-")) return JsonConfig.parse(where, System.in);
        return JsonConfig.parse(input);
    }

    /** --NAME VALUE pairs, -p JSON and bare {...} objects, merged in order. */
    ObjectNode parseParams() {
        ObjectNode p = Json.obj();
        if (paramsJson != null) merge(p, paramsJson);
        for (Iterator<String> it = args.iterator(); it.hasNext(); ) {
            String tok = it.next();
            if (tok.equals("-p") || tok.equals("--params")) {
                merge(p, next(it, tok));
            } else if ((tok.equals("-o") || tok.equals("--output")) && method.equals("save_config")) {
                output = Path.of(next(it, tok));
            } else if ((tok.equals("-i") || tok.equals("--input")) && method.equals("load_config")) {
                input = Path.of(next(it, tok));
            } else if (tok.startsWith("--") && tok.length() > 2) {
                String key = tok.substring(2);
                String value;
                int eq = key.indexOf('=');
                if (eq >= 0) {
                    value = key.substring(eq + 1);
                    key = key.substring(0, eq);
                } else {
                    value = null;
                }
                key = key.replace('-', '_');
                if (value == null) {
                    // Look ahead: a following token that is not itself --NAME is the value.
                    List<String> rest = new ArrayList<>();
                    it.forEachRemaining(rest::add);
                    if (!rest.isEmpty() && !(rest.getFirst().startsWith("--") && rest.getFirst().length() > 2)) value = rest.removeFirst();
                    it = rest.iterator();
                }
                p.set(key, value == null ? Json.MAPPER.getNodeFactory().booleanNode(true) : typed(value));
            } else if (tok.startsWith("{")) {
                merge(p, tok);
            } else {
                throw new IllegalArgumentException("unexpected argument '" + tok + "' (parameters are --NAME VALUE; options go before METHOD)");
            }
        }
        return p;
    }

    private static String next(Iterator<String> it, String opt) {
        if (!it.hasNext()) throw new IllegalArgumentException(opt + " needs a value");
        return it.next();
    }

    private static void merge(ObjectNode into, String json) {
        JsonNode n;
        try {
            n = Json.MAPPER.readTree(json);
        } catch (IOException e) {
            throw new IllegalArgumentException("-p: not valid JSON: " + json);
        }
        if (n == null || !n.isObject()) throw new IllegalArgumentException("-p: parameters must be a JSON object, got: " + json);
        into.setAll((ObjectNode) n);
    }

    static JsonNode typed(String v) {
        if (v.equals("true") || v.equals("false") || v.equals("null") || JSON_NUMBER.matcher(v).matches()
                || v.startsWith("{") || v.startsWith("[") || v.startsWith("\"")) {
            try {
                return Json.MAPPER.readTree(v);
            } catch (IOException e) {
                throw new IllegalArgumentException("not valid JSON: " + v);
            }
        }
        return Json.MAPPER.getNodeFactory().textNode(v);
    }
}
