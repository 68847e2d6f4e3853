'use strict';
// push_consume.js ADDRESS TOPIC GROUP EXPECT [--max-wait S] [--linger S]
//
// A PushConsumer whose listener always succeeds. Counts consumptions per message id; once EXPECT distinct ids
// were consumed (or --max-wait passed) it lingers (default 3 s) to catch duplicates, then shuts down.
// Prints {counts: {id: n}, attempts: {id: [deliveryAttempt...]}, messages: {id: fields of the first delivery},
//         reached_expect_s, shutdown}.

const { rocketmq, parseArgs, baseOptions, describe, emit, shutdownWithin, sleep, run } = require('./_common');

run(async () => {
  const { positional: [ address, topic, group, expectArg ], options } = parseArgs(process.argv.slice(2));
  const expect = Number(expectArg);
  if (!address || !topic || !group || !Number.isInteger(expect)) {
    throw new Error('usage: push_consume.js ADDRESS TOPIC GROUP EXPECT [--max-wait S] [--linger S]');
  }
  const maxWaitMs = Number(options['max-wait'] ?? 90) * 1000;
  const lingerMs = Number(options.linger ?? 3) * 1000;

  const counts = {};
  const attempts = {};
  const messages = {};
  const consumer = new rocketmq.PushConsumer({
    ...baseOptions(address),
    consumerGroup: group,
    subscriptions: new Map([ [ topic, '*' ] ]),
    messageListener: {
      consume(message) {
        const id = message.messageId;
        counts[id] = (counts[id] ?? 0) + 1;
        (attempts[id] ??= []).push(message.deliveryAttempt ?? null);
        if (!messages[id]) {
          const { receipt_handle, ...fields } = describe(message); // eslint-disable-line no-unused-vars
          messages[id] = fields;
        }
        return rocketmq.ConsumeResult.SUCCESS;
      },
    },
  });
  const started = Date.now();
  await consumer.startup();

  const deadline = started + maxWaitMs;
  while (Object.keys(counts).length < expect && Date.now() < deadline) {
    await sleep(100);
  }
  const reached = Object.keys(counts).length >= expect ? (Date.now() - started) / 1000 : null;
  await sleep(lingerMs);
  // Shutdown waits for in-flight long polls and for the acks of consumed messages.
  const shutdown = await shutdownWithin(consumer, 40000);
  emit({ counts, attempts, messages, reached_expect_s: reached, shutdown });
});
