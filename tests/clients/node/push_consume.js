'use strict';
// push_consume.js ADDRESS TOPIC GROUP EXPECT [--max-wait S] [--linger S] [--tag EXPR | --sql EXPR] [--startup-wait S]
//
// A PushConsumer whose listener always succeeds. Counts consumptions per message id; once EXPECT distinct ids
// were consumed (or --max-wait passed) it lingers (default 3 s) to catch duplicates, then shuts down.
// It subscribes with the tag expression --tag (default '*') or the SQL92 expression --sql. With --startup-wait,
// startup is given up after S seconds (the client waits for the server's answer to its settings without a time
// limit); the consumer then keeps running (it may still start) until --max-wait, like a started one.
// Prints {counts: {id: n}, attempts: {id: [deliveryAttempt...]}, messages: {id: fields of the first delivery},
//         reached_expect_s, shutdown, startup_error: null | {error, code}, started_late_s: null | seconds,
//         client_log: [{level, message}] (the first line of the first 50 entries the client logged at warn or
//         error level), client_log_total}.

const { rocketmq, parseArgs, baseOptions, describe, emit, shutdownWithin, sleep, run } = require('./_common');
const { subscription, recordingLogger, startupWithin } = require('./_filter');

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
  const logger = recordingLogger();
  const consumer = new rocketmq.PushConsumer({
    ...baseOptions(address),
    logger,
    consumerGroup: group,
    subscriptions: new Map([ [ topic, subscription(options) ] ]),
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
  let startupError = null;
  let startedLate = null;
  if (options['startup-wait'] === undefined) {
    await consumer.startup();
  } else {
    // Not abandoned: if it completes after the wait, the consumer runs (and says when) like a started one.
    const startup = consumer.startup();
    startupError = await startupWithin({ startup: () => startup }, Number(options['startup-wait']) * 1000);
    if (startupError && startupError.error === 'timeout') {
      startup.then(() => { startedLate = (Date.now() - started) / 1000; }, () => {});
    }
  }

  const deadline = started + maxWaitMs;
  while (Object.keys(counts).length < expect && Date.now() < deadline) {
    await sleep(100);
  }
  const reached = Object.keys(counts).length >= expect ? (Date.now() - started) / 1000 : null;
  await sleep(lingerMs);
  // Shutdown waits for in-flight long polls and for the acks of consumed messages.
  const shutdown = await shutdownWithin(consumer, 40000);
  emit({ counts, attempts, messages, reached_expect_s: reached, shutdown, startup_error: startupError,
    started_late_s: startedLate, client_log: logger.lines, client_log_total: logger.total });
});
