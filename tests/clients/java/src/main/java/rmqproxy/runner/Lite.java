package rmqproxy.runner;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.apache.rocketmq.client.apis.consumer.ConsumeResult;
import org.apache.rocketmq.client.apis.consumer.LitePushConsumer;
import org.apache.rocketmq.client.apis.producer.Producer;

/**
 * The lite-push scenario (RocketMQ 5.5 lite topics): a Producer sends LITE messages to the lite parent --topic and a
 * LitePushConsumer bound to it changes its lite subscriptions while they flow. --steps is a comma-separated list:
 * sub:NAME, unsub:NAME, send:NAME:N (bodies NAME-i, counted per lite topic), recv:N (wait for N more consumed),
 * quiet:S (wait S seconds, expecting nothing).
 */
final class Lite {
    private Lite() {
    }

    static Map<String, Object> litePush(Args args, Clients clients) throws Exception {
        String topic = args.required("topic");
        String group = args.required("group");
        String[] steps = args.required("steps").split(",");
        long maxWaitMs = args.secondsAsMillis("max-wait-s", 40);
        args.checkAllUsed();

        List<Map<String, Object>> consumed = new ArrayList<>();
        List<Map<String, Object>> records = new ArrayList<>();
        try (Producer producer = Producing.producer(clients, topic)) {
            LitePushConsumer consumer = clients.provider.newLitePushConsumerBuilder()
                .setClientConfiguration(clients.configuration)
                .setConsumerGroup(group)
                .bindTopic(topic)
                .setMessageListener(message -> {
                    synchronized (consumed) {
                        consumed.add(Clients.map(
                            "body", StandardCharsets.UTF_8.decode(message.getBody()).toString(),
                            "lite_topic", message.getLiteTopic().orElse(null),
                            "topic", message.getTopic()));
                    }
                    return ConsumeResult.SUCCESS;
                })
                .build();
            Map<String, Integer> counts = new HashMap<>();
            for (String step : steps) {
                String[] parts = step.split(":");
                List<Map<String, Object>> errors = new ArrayList<>();
                List<Map<String, Object>> received = new ArrayList<>();
                try {
                    switch (parts[0]) {
                        case "sub" -> consumer.subscribeLite(parts[1]);
                        case "unsub" -> consumer.unsubscribeLite(parts[1]);
                        case "send" -> {
                            for (int i = 0; i < Integer.parseInt(parts[2]); i++) {
                                int index = counts.merge(parts[1], 1, Integer::sum) - 1;
                                try {
                                    producer.send(clients.provider.newMessageBuilder().setTopic(topic)
                                        .setLiteTopic(parts[1])
                                        .setBody((parts[1] + "-" + index).getBytes(StandardCharsets.UTF_8)).build());
                                } catch (Exception e) {
                                    errors.add(Clients.error(e));
                                }
                            }
                        }
                        case "recv", "quiet" -> {
                            boolean quiet = parts[0].equals("quiet");
                            long deadline = System.currentTimeMillis()
                                + (quiet ? (long) (Double.parseDouble(parts[1]) * 1000) : maxWaitMs);
                            int want = quiet ? 0 : Integer.parseInt(parts[1]);
                            while (System.currentTimeMillis() < deadline && (quiet || received.size() < want)) {
                                Thread.sleep(200);
                                synchronized (consumed) {
                                    received.addAll(consumed);
                                    consumed.clear();
                                }
                            }
                        }
                        default -> throw new Args.UsageError("unknown step " + step);
                    }
                } catch (Args.UsageError e) {
                    throw e;
                } catch (Exception e) {
                    errors.add(Clients.error(e));
                }
                records.add(Clients.map("step", step, "errors", errors, "received", received));
            }
            Consuming.closeWithin(consumer, 10_000);
        }
        return Clients.map("steps", records);
    }
}
