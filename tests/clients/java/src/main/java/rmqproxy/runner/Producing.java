package rmqproxy.runner;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import org.apache.rocketmq.client.apis.ClientException;
import org.apache.rocketmq.client.apis.message.Message;
import org.apache.rocketmq.client.apis.message.MessageView;
import org.apache.rocketmq.client.apis.producer.Producer;
import org.apache.rocketmq.client.apis.producer.SendReceipt;
import org.apache.rocketmq.client.apis.producer.Transaction;
import org.apache.rocketmq.client.apis.producer.TransactionResolution;

/** The produce* scenarios: a Producer sending normal, FIFO, scheduled and transactional messages. */
final class Producing {
    private static final long DAY_MS = 86_400_000L;

    private Producing() {
    }

    /** produce: N normal messages, sync, async or mixed (even indexes sync, odd async). */
    static Map<String, Object> produce(Args args, Clients clients) throws Exception {
        String topic = args.required("topic");
        int count = args.integer("count", null);
        String mode = args.text("mode", "sync");
        String prefix = args.text("prefix", "msg");
        int size = args.integer("size", 100);
        if (!List.of("sync", "async", "mixed").contains(mode)) {
            throw new Args.UsageError("--mode is sync, async or mixed, not " + mode);
        }
        args.checkAllUsed();
        List<Map<String, Object>> sent = Collections.synchronizedList(new ArrayList<>());
        List<Map<String, Object>> errors = Collections.synchronizedList(new ArrayList<>());
        List<CompletableFuture<?>> pending = new ArrayList<>();
        try (Producer producer = producer(clients, topic)) {
            for (int i = 0; i < count; i++) {
                Message message = clients.numbered(topic, i, prefix, size).build();
                int index = i;
                if (mode.equals("async") || mode.equals("mixed") && i % 2 == 1) {
                    pending.add(producer.sendAsync(message).handle((receipt, thrown) -> {
                        record(sent, errors, index, "async", receipt, thrown);
                        return null;
                    }));
                } else {
                    try {
                        record(sent, errors, index, "sync", producer.send(message), null);
                    } catch (ClientException e) {
                        record(sent, errors, index, "sync", null, e);
                    }
                }
            }
            CompletableFuture.allOf(pending.toArray(CompletableFuture[]::new)).join();
        }
        return sortedResult(sent, errors);
    }

    /** produce-fifo: message i in message group mg-(i % G) with seq = i / G, sent one by one in order. */
    static Map<String, Object> produceFifo(Args args, Clients clients) throws Exception {
        String topic = args.required("topic");
        int count = args.integer("count", null);
        int groups = args.integer("groups", null);
        String prefix = args.text("prefix", "msg");
        int size = args.integer("size", 100);
        args.checkAllUsed();
        List<Map<String, Object>> sent = new ArrayList<>();
        List<Map<String, Object>> errors = new ArrayList<>();
        try (Producer producer = producer(clients, topic)) {
            for (int i = 0; i < count; i++) {
                String group = "mg-" + i % groups;
                int seq = i / groups;
                Message message = clients.numbered(topic, i, prefix, size)
                    .setMessageGroup(group)
                    .addProperty("seq", Integer.toString(seq))
                    .build();
                Map<String, Object> entry;
                try {
                    entry = record(sent, errors, i, "sync", producer.send(message), null);
                } catch (ClientException e) {
                    entry = record(sent, errors, i, "sync", null, e);
                }
                entry.put("message_group", group);
                entry.put("seq", seq);
            }
        }
        return sortedResult(sent, errors);
    }

    /** produce-priority: for each spec P:N, N messages of priority P (body p<P>-<i>, tag tag-<P>), in order. */
    static Map<String, Object> producePriority(Args args, Clients clients) throws Exception {
        String topic = args.required("topic");
        String specs = args.required("specs");
        args.checkAllUsed();
        List<Map<String, Object>> sent = new ArrayList<>();
        List<Map<String, Object>> errors = new ArrayList<>();
        int index = 0;
        try (Producer producer = producer(clients, topic)) {
            for (String spec : specs.split(",")) {
                String[] parts = spec.split(":");
                int priority = Integer.parseInt(parts[0]);
                int count = Integer.parseInt(parts[1]);
                for (int i = 0; i < count; i++, index++) {
                    Message message = clients.provider.newMessageBuilder()
                        .setTopic(topic)
                        .setBody(("p" + priority + "-" + i).getBytes(StandardCharsets.UTF_8))
                        .setTag("tag-" + priority)
                        .addProperty("origin", Clients.LANGUAGE)
                        .setPriority(priority)
                        .build();
                    Map<String, Object> entry;
                    try {
                        entry = record(sent, errors, index, "sync", producer.send(message), null);
                    } catch (ClientException e) {
                        entry = record(sent, errors, index, "sync", null, e);
                    }
                    entry.put("priority", priority);
                }
            }
        }
        return sortedResult(sent, errors);
    }

    /** produce-delay: scheduled messages due in 3 s, 1 s, the past, 41 days (refused), and one recalled. */
    static Map<String, Object> produceDelay(Args args, Clients clients) throws Exception {
        String topic = args.required("topic");
        args.checkAllUsed();
        Map<String, Object> sent = new LinkedHashMap<>();
        Map<String, Object> errors = new LinkedHashMap<>();
        errors.put("too-far", null);
        errors.put("recall-again", null);
        String recalled = null;
        try (Producer producer = producer(clients, topic)) {
            // Each due time counts from its own send: a cold JVM's first send (TLS handshake included) can
            // take over a second, which would make "plus1" due before it is sent (and so not recallable).
            Map<String, Long> offsets = new LinkedHashMap<>();
            offsets.put("plus3", 3000L);
            offsets.put("plus1", 1000L);
            offsets.put("past", -5000L);
            offsets.put("too-far", 41 * DAY_MS);
            offsets.put("recalled", 5000L);
            for (Map.Entry<String, Long> offset : offsets.entrySet()) {
                String name = offset.getKey();
                Map.Entry<String, Long> due = Map.entry(name, System.currentTimeMillis() + offset.getValue());
                Message message = clients.provider.newMessageBuilder()
                    .setTopic(topic)
                    .setBody(name.getBytes(StandardCharsets.UTF_8))
                    .setTag("scheduled")
                    .setKeys("delay-" + name)
                    .addProperty("name", name)
                    .addProperty("origin", Clients.LANGUAGE)
                    .setDeliveryTimestamp(due.getValue())
                    .build();
                SendReceipt receipt;
                try {
                    receipt = producer.send(message);
                } catch (ClientException e) {
                    errors.put(name, Clients.error(e));
                    continue;
                }
                sent.put(name, Clients.map("due_ms", due.getValue(), "message_id", receipt.getMessageId().toString(),
                    "recall_handle", emptyToNull(receipt.getRecallHandle())));
                if (name.equals("recalled")) {
                    try {
                        recalled = producer.recallMessage(topic, receipt.getRecallHandle()).getMessageId().toString();
                    } catch (ClientException e) {
                        errors.put("recall", Clients.error(e));
                    }
                    try {
                        producer.recallMessage(topic, receipt.getRecallHandle());
                    } catch (ClientException e) {
                        errors.put("recall-again", Clients.error(e));
                    }
                }
            }
        }
        return Clients.map("sent", sent, "errors", errors, "recall", recalled);
    }

    /**
     * produce-transaction: half messages committed, rolled back, and left to the TransactionChecker, which answers
     * from each message's `decide` property while the producer stays online for --linger seconds.
     */
    static Map<String, Object> produceTransaction(Args args, Clients clients) throws Exception {
        String topic = args.required("topic");
        long lingerMs = args.secondsAsMillis("linger", 15);
        args.checkAllUsed();
        List<Map<String, Object>> asked = Collections.synchronizedList(new ArrayList<>());
        Map<String, Object> sent = new LinkedHashMap<>();
        Map<String, Object> errors = new LinkedHashMap<>();
        errors.put("commit-again", null);
        Producer producer = clients.provider.newProducerBuilder()
            .setClientConfiguration(clients.configuration)
            .setTopics(topic)
            .setTransactionChecker((MessageView message) -> {
                String name = message.getProperties().get("name");
                asked.add(Clients.map("name", name, "at_ms", System.currentTimeMillis()));
                return switch (String.valueOf(message.getProperties().get("decide"))) {
                    case "commit" -> TransactionResolution.COMMIT;
                    case "rollback" -> TransactionResolution.ROLLBACK;
                    default -> TransactionResolution.UNKNOWN;
                };
            })
            .build();
        try (producer) {
            // name, what the checker would answer (never asked for the first two), what this producer does.
            String[][] plan = {
                {"committed", "rollback", "commit"},
                {"rolled-back", "commit", "rollback"},
                {"checker-commits", "commit", null},
                {"checker-rolls-back", "rollback", null},
                {"checker-unsure", "unknown", null},
            };
            for (String[] step : plan) {
                String name = step[0];
                Message message = clients.provider.newMessageBuilder()
                    .setTopic(topic)
                    .setBody(name.getBytes(StandardCharsets.UTF_8))
                    .setKeys("tx-" + name)
                    .addProperty("name", name)
                    .addProperty("decide", step[1])
                    .addProperty("origin", Clients.LANGUAGE)
                    .build();
                Transaction transaction = producer.beginTransaction();
                try {
                    sent.put(name, producer.send(message, transaction).getMessageId().toString());
                } catch (ClientException e) {
                    errors.put(name, Clients.error(e));
                    continue;
                }
                String action = step[2];
                try {
                    if ("commit".equals(action)) {
                        transaction.commit();
                    } else if ("rollback".equals(action)) {
                        transaction.rollback();
                    }
                } catch (ClientException e) {
                    errors.put(action, Clients.error(e));
                }
                if ("commit".equals(action)) {
                    try {
                        transaction.commit();
                    } catch (ClientException | IllegalStateException e) {
                        errors.put("commit-again", Clients.error(e));
                    }
                }
            }
            // Online for the checks: nothing to wait for but the time the scenario asks for.
            Thread.sleep(lingerMs);
        }
        List<Map<String, Object>> askedSoFar;
        synchronized (asked) {
            askedSoFar = new ArrayList<>(asked);
        }
        return Clients.map("sent", sent, "asked", askedSoFar, "errors", errors);
    }

    /** The receipt has "" where the server sent no recall handle (a message due at once): null in the result. */
    private static String emptyToNull(String text) {
        return text == null || text.isEmpty() ? null : text;
    }

    static Producer producer(Clients clients, String topic) throws ClientException {
        return clients.provider.newProducerBuilder()
            .setClientConfiguration(clients.configuration)
            .setTopics(topic)
            .build();
    }

    /** Adds the outcome of one send to `sent` or `errors` and returns the entry added. */
    private static Map<String, Object> record(List<Map<String, Object>> sent, List<Map<String, Object>> errors,
        int index, String mode, SendReceipt receipt, Throwable thrown) {
        if (thrown == null) {
            Map<String, Object> entry =
                Clients.map("index", index, "message_id", receipt.getMessageId().toString(), "mode", mode);
            sent.add(entry);
            return entry;
        }
        Map<String, Object> entry = Clients.map("index", index);
        entry.putAll(Clients.error(thrown));
        errors.add(entry);
        return entry;
    }

    private static Map<String, Object> sortedResult(List<Map<String, Object>> sent, List<Map<String, Object>> errors) {
        Comparator<Map<String, Object>> byIndex = Comparator.comparingInt(entry -> (int) entry.get("index"));
        List<Map<String, Object>> sentSorted = new ArrayList<>(sent);
        List<Map<String, Object>> errorsSorted = new ArrayList<>(errors);
        sentSorted.sort(byIndex);
        errorsSorted.sort(byIndex);
        return Clients.map("sent", sentSorted, "errors", errorsSorted);
    }
}
