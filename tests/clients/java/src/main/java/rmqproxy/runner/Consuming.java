package rmqproxy.runner;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.apache.rocketmq.client.apis.ClientException;
import org.apache.rocketmq.client.apis.consumer.ConsumeResult;
import org.apache.rocketmq.client.apis.consumer.FilterExpression;
import org.apache.rocketmq.client.apis.consumer.PushConsumer;
import org.apache.rocketmq.client.apis.consumer.SimpleConsumer;
import org.apache.rocketmq.client.apis.message.MessageView;

/** The consume scenarios: a SimpleConsumer that receives, changes invisibility and acks; a PushConsumer. */
final class Consuming {
    /** How long a failed receive waits before the next: the error is not one a retry at once would fix. */
    private static final long RECEIVE_ERROR_PAUSE_MS = 500;
    /** Longest wait of one receive call: short enough to stop near --max-wait-s, arrivals wake it anyway. */
    private static final long AWAIT_MS = 5000;
    /**
     * A PushConsumer's close waits for its long polls in flight (up to the request timeout plus the server's long
     * polling timeout, 30 s by default): the result is complete before it, and once the process exits the server sees
     * the consumer go and gives back what it held. So close is tried, but not waited for long.
     */
    private static final long CLOSE_WAIT_MS = 3000;

    private Consuming() {
    }

    static Map<String, Object> simpleConsume(Args args, Clients clients) throws Exception {
        String topic = args.required("topic");
        String group = args.required("group");
        int expect = args.integer("expect", null);
        boolean ack = args.flag("ack");
        Duration invisible = Duration.ofMillis(args.secondsAsMillis("invisible-s", 30));
        long maxWaitMs = args.secondsAsMillis("max-wait-s", 60);
        int batch = args.integer("batch", 32);
        Duration changeTo = args.has("change-invisible-s")
            ? Duration.ofMillis(args.secondsAsMillis("change-invisible-s", 0)) : null;
        FilterExpression filter = Clients.filter(args);
        args.checkAllUsed();

        List<Map<String, Object>> received = new ArrayList<>();
        List<Map<String, Object>> ackErrors = new ArrayList<>();
        List<Map<String, Object>> receiveErrors = new ArrayList<>();
        try (SimpleConsumer consumer = clients.provider.newSimpleConsumerBuilder()
            .setClientConfiguration(clients.configuration)
            .setConsumerGroup(group)
            .setSubscriptionExpressions(Map.of(topic, filter))
            .setAwaitDuration(Duration.ofMillis(Math.max(1000, Math.min(AWAIT_MS, maxWaitMs))))
            .build()) {
            // The wait starts once the consumer is up: a slow start-up must not eat the scenario's time.
            long deadline = System.currentTimeMillis() + maxWaitMs;
            while (received.size() < expect && System.currentTimeMillis() < deadline) {
                List<MessageView> messages;
                try {
                    // Never more than still expected: what is not received stays for the next consumer.
                    messages = consumer.receive(Math.min(batch, expect - received.size()), invisible);
                } catch (ClientException e) {
                    Map<String, Object> error = Clients.error(e);
                    error.put("at_ms", System.currentTimeMillis());
                    receiveErrors.add(error);
                    Thread.sleep(RECEIVE_ERROR_PAUSE_MS);
                    continue;
                }
                long atMs = System.currentTimeMillis();
                for (MessageView message : messages) {
                    Map<String, Object> described = Clients.describe(message, atMs);
                    String id = message.getMessageId().toString();
                    if (changeTo != null) {
                        // The client refreshes the view's receipt handle in place: an ack of the view afterwards
                        // uses the NEW handle, and the public API keeps no way to ack with the old one, so
                        // `old_handle_ack` stays absent.
                        try {
                            consumer.changeInvisibleDuration(message, changeTo);
                        } catch (ClientException e) {
                            ackErrors.add(operationError(id, "change-invisible-duration", e));
                        }
                    }
                    if (ack) {
                        try {
                            consumer.ack(message);
                        } catch (ClientException e) {
                            ackErrors.add(operationError(id, "ack", e));
                        }
                    }
                    received.add(described);
                }
            }
        }
        return Clients.map("received", received, "ack_errors", ackErrors, "receive_errors", receiveErrors);
    }

    static Map<String, Object> pushConsume(Args args, Clients clients) throws Exception {
        String topic = args.required("topic");
        String group = args.required("group");
        int expect = args.integer("expect", null);
        FailSpec fail = FailSpec.parse(args.text("fail", "never"));
        long maxWaitMs = args.secondsAsMillis("max-wait-s", 120);
        long lingerMs = args.secondsAsMillis("linger-s", 2);
        FilterExpression filter = Clients.filter(args);
        args.checkAllUsed();

        List<Map<String, Object>> events = new ArrayList<>();
        Set<String> seen = new HashSet<>();
        CountDownLatch calls = new CountDownLatch(expect);
        PushConsumer consumer = clients.provider.newPushConsumerBuilder()
            .setClientConfiguration(clients.configuration)
            .setConsumerGroup(group)
            .setSubscriptionExpressions(Map.of(topic, filter))
            .setMessageListener(message -> {
                String id = message.getMessageId().toString();
                boolean failed;
                // One lock keeps the events in the order the listener was called.
                synchronized (events) {
                    failed = fail.fails(message, seen.add(id));
                    events.add(Clients.map(
                        "message_id", id,
                        "attempt", message.getDeliveryAttempt(),
                        "message_group", message.getMessageGroup().orElse(null),
                        "properties", new TreeMap<>(message.getProperties()),
                        "result", failed ? "fail" : "ok",
                        "at_ms", System.currentTimeMillis()));
                }
                calls.countDown();
                return failed ? ConsumeResult.FAILURE : ConsumeResult.SUCCESS;
            })
            .build();
        calls.await(maxWaitMs, TimeUnit.MILLISECONDS);
        Thread.sleep(lingerMs);
        List<Map<String, Object>> observed;
        synchronized (events) {
            observed = new ArrayList<>(events);
        }
        closeWithin(consumer, CLOSE_WAIT_MS);
        return Clients.map("events", observed);
    }

    private static Map<String, Object> operationError(String messageId, String operation, Throwable thrown) {
        Map<String, Object> entry = Clients.map("message_id", messageId, "operation", operation);
        entry.putAll(Clients.error(thrown));
        return entry;
    }

    /** Closes a client on another thread and stops waiting after `ms`: the process exits after the result. */
    static void closeWithin(AutoCloseable client, long ms) throws InterruptedException {
        Thread closer = new Thread(() -> {
            try {
                client.close();
            } catch (Exception e) {
                System.err.println("closing the client failed: " + e);
            }
        }, "close-client");
        closer.setDaemon(true);
        closer.start();
        closer.join(ms);
        if (closer.isAlive()) {
            System.err.println("the client did not close within " + ms + " ms");
        }
    }

    /** --fail: never, always, first (first delivery of each message) or index-mod-K (first delivery, index % K == 0). */
    record FailSpec(String kind, int modulus) {
        static FailSpec parse(String spec) {
            if (spec.equals("never") || spec.equals("always") || spec.equals("first")) {
                return new FailSpec(spec, 0);
            }
            if (spec.startsWith("index-mod-")) {
                try {
                    int k = Integer.parseInt(spec.substring("index-mod-".length()));
                    if (k > 0) {
                        return new FailSpec("index-mod", k);
                    }
                } catch (NumberFormatException e) {
                    // falls through to the usage error
                }
            }
            throw new Args.UsageError("--fail is never, always, first or index-mod-K, not " + spec);
        }

        boolean fails(MessageView message, boolean firstDelivery) {
            return switch (kind) {
                case "always" -> true;
                case "first" -> firstDelivery;
                case "index-mod" -> firstDelivery && indexOf(message) >= 0 && indexOf(message) % modulus == 0;
                default -> false;
            };
        }

        private static long indexOf(MessageView message) {
            try {
                return Long.parseLong(message.getProperties().getOrDefault("index", ""));
            } catch (NumberFormatException e) {
                return -1;
            }
        }
    }
}
