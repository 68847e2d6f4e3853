package rmqproxy.runner;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.apache.rocketmq.client.apis.ClientConfiguration;
import org.apache.rocketmq.client.apis.ClientConfigurationBuilder;
import org.apache.rocketmq.client.apis.ClientServiceProvider;
import org.apache.rocketmq.client.apis.StaticSessionCredentialsProvider;
import org.apache.rocketmq.client.apis.consumer.FilterExpression;
import org.apache.rocketmq.client.apis.consumer.FilterExpressionType;
import org.apache.rocketmq.client.apis.message.MessageBuilder;
import org.apache.rocketmq.client.apis.message.MessageView;

/** What every scenario shares: the client configuration from the common options, messages, results. */
final class Clients {
    static final String LANGUAGE = "java";
    /** The client puts the status code into the text of its ClientException only: "response-code=40012". */
    private static final Pattern RESPONSE_CODE = Pattern.compile("response-code=(\\d+)");

    final ClientServiceProvider provider = ClientServiceProvider.loadService();
    final ClientConfiguration configuration;

    Clients(Args args) {
        ClientConfigurationBuilder builder = ClientConfiguration.newBuilder()
            .setEndpoints(args.required("endpoint"))
            .setRequestTimeout(Duration.ofMillis(args.integer("request-timeout-ms", 10000)));
        String tls = args.text("tls", "default");
        switch (tls) {
            // The client's own default (TLS on, any certificate trusted) stays untouched.
            case "default" -> { }
            case "on" -> builder.enableSsl(true);
            case "off" -> builder.enableSsl(false);
            default -> throw new Args.UsageError("--tls is default, on or off, not " + tls);
        }
        String accessKey = args.text("access-key", null);
        String secretKey = args.text("secret-key", null);
        if ((accessKey == null) != (secretKey == null)) {
            throw new Args.UsageError("--access-key and --secret-key go together");
        }
        if (accessKey != null) {
            builder.setCredentialProvider(new StaticSessionCredentialsProvider(accessKey, secretKey));
        }
        configuration = builder.build();
    }

    /** Message `index` of a produce* scenario, as SCENARIOS.md describes it. */
    MessageBuilder numbered(String topic, int index, String prefix, int size) {
        return provider.newMessageBuilder()
            .setTopic(topic)
            .setBody(body(prefix + "-" + index + ":", size))
            .setTag("tag-" + index % 3)
            .setKeys("key-" + index, "order-" + index / 10)
            .addProperty("index", Integer.toString(index))
            .addProperty("origin", LANGUAGE);
    }

    /** The prefix, then bytes 0x00, 0x01 ... 0xff, 0x00 ... until the body has `size` bytes. */
    static byte[] body(String head, int size) {
        byte[] start = head.getBytes(StandardCharsets.UTF_8);
        byte[] body = new byte[Math.max(size, start.length)];
        System.arraycopy(start, 0, body, 0, start.length);
        for (int i = start.length; i < body.length; i++) {
            body[i] = (byte) (i - start.length);
        }
        return body;
    }

    static FilterExpression filter(Args args) {
        if (args.has("tag") && args.has("sql")) {
            throw new Args.UsageError("--tag and --sql exclude each other");
        }
        if (args.has("sql")) {
            return new FilterExpression(args.required("sql"), FilterExpressionType.SQL92);
        }
        return new FilterExpression(args.text("tag", "*"), FilterExpressionType.TAG);
    }

    /** Everything a consumer sees of a received message (SCENARIOS.md, simple-consume). */
    static Map<String, Object> describe(MessageView message, long atMs) {
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("message_id", message.getMessageId().toString());
        out.put("topic", message.getTopic());
        ByteBuffer body = message.getBody().duplicate();
        byte[] bytes = new byte[body.remaining()];
        body.get(bytes);
        out.put("body", Base64.getEncoder().encodeToString(bytes));
        out.put("tag", message.getTag().orElse(null));
        List<String> keys = new ArrayList<>(message.getKeys());
        keys.sort(null);
        out.put("keys", keys);
        out.put("properties", new TreeMap<>(message.getProperties()));
        out.put("delivery_attempt", message.getDeliveryAttempt());
        out.put("message_group", message.getMessageGroup().orElse(null));
        out.put("delivery_timestamp_ms", message.getDeliveryTimestamp().orElse(null));
        out.put("born_timestamp_ms", message.getBornTimestamp());
        out.put("born_host", message.getBornHost());
        out.put("at_ms", atMs);
        return out;
    }

    /** An error as SCENARIOS.md records it: {"code": protocol code or null, "error": text}. */
    static Map<String, Object> error(Throwable thrown) {
        Throwable error = thrown;
        while ((error instanceof CompletionException || error instanceof ExecutionException)
            && error.getCause() != null) {
            error = error.getCause();
        }
        Integer code = null;
        for (Throwable t = error; t != null && code == null; t = t.getCause()) {
            Matcher matcher = RESPONSE_CODE.matcher(String.valueOf(t.getMessage()));
            if (matcher.find()) {
                code = Integer.valueOf(matcher.group(1));
            }
        }
        String text = error.getClass().getSimpleName() + ": " + error.getMessage();
        Throwable root = error;
        while (root.getCause() != null && root.getCause() != root) {
            root = root.getCause();
        }
        if (root != error) {
            // A client that fails to start says why only at the bottom of the chain (NotSslRecordException...).
            text += " (root cause: " + root.getClass().getSimpleName() + ": " + root.getMessage() + ")";
        }
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("code", code);
        out.put("error", text);
        return out;
    }

    static Map<String, Object> map(Object... keysAndValues) {
        Map<String, Object> out = new LinkedHashMap<>();
        for (int i = 0; i < keysAndValues.length; i += 2) {
            out.put((String) keysAndValues[i], keysAndValues[i + 1]);
        }
        return out;
    }
}
