'use strict';
// simple_consume.js ADDRESS TOPIC GROUP EXPECT [--ack] [--invisible S] [--max-wait S] [--batch N]
//                   [--tag EXPR | --sql EXPR] [--subscribe-after-startup] [--startup-wait S] [--await S] [--linger S]
//                   [--error-pause S]
//
// Receives with a SimpleConsumer until EXPECT messages arrived or --max-wait seconds passed; with --ack it acks
// each one. With --linger it keeps receiving for that many seconds after reaching EXPECT, so anything extra
// (a duplicate, a redelivery) also shows up in `received`.
// It subscribes with the tag expression --tag (default '*') or the SQL92 expression --sql, given to the
// constructor (so it is in the settings the client sends at startup), or with --subscribe-after-startup, starts
// with no subscription and then calls subscribe(TOPIC, filter): that sends no settings (the client resends them
// every 5 minutes or when it reconnects), the server sees the filter in each ReceiveMessage. With
// --startup-wait, startup is given up after S seconds: the client waits for the server's answer to its settings
// without a time limit. --error-pause waits that long after a failed receive before the next one (default 0).
// Prints {received: [every visible field of each message], ack_errors, receive_errors, receive_calls,
//         startup_error: null | {error, code}, client_log: [{level, message}] (the first line of the first 50
//         entries the client logged at warn or error level), client_log_total}.

const { rocketmq, parseArgs, baseOptions, describe, describeError, emit, shutdownWithin, sleep, run } =
  require('./_common');
const { subscription, recordingLogger, startupWithin } = require('./_filter');

run(async () => {
  const { positional: [ address, topic, group, expectArg ], options } =
    parseArgs(process.argv.slice(2), [ 'ack', 'subscribe-after-startup' ]);
  const expect = Number(expectArg);
  if (!address || !topic || !group || !Number.isInteger(expect)) {
    throw new Error('usage: simple_consume.js ADDRESS TOPIC GROUP EXPECT [--ack] [--invisible S] [--max-wait S]');
  }
  const invisibleMs = Number(options.invisible ?? 20) * 1000;
  const maxWaitMs = Number(options['max-wait'] ?? 60) * 1000;
  const lingerMs = Number(options.linger ?? 0) * 1000;
  const batch = Number(options.batch ?? 32);
  const errorPauseMs = Number(options['error-pause'] ?? 0) * 1000;

  const filter = subscription(options);
  const later = options['subscribe-after-startup'] === true;
  const logger = recordingLogger();
  const consumer = new rocketmq.SimpleConsumer({
    ...baseOptions(address),
    logger,
    consumerGroup: group,
    subscriptions: new Map(later ? [] : [ [ topic, filter ] ]),
    awaitDuration: Number(options.await ?? 5) * 1000, // long polling per receive
  });
  if (options['startup-wait'] === undefined) {
    await consumer.startup();
  } else {
    const startupError = await startupWithin(consumer, Number(options['startup-wait']) * 1000);
    if (startupError) {
      await shutdownWithin(consumer, 15000);
      emit({ received: [], ack_errors: [], receive_errors: [], receive_calls: 0, startup_error: startupError,
        client_log: logger.lines, client_log_total: logger.total });
      return;
    }
  }
  if (later) await consumer.subscribe(topic, filter);

  const received = [];
  const ackErrors = [];
  const receiveErrors = [];
  let receiveCalls = 0;
  const deadline = Date.now() + maxWaitMs;
  let stopAt = deadline;
  while (Date.now() < stopAt) {
    let messages;
    try {
      receiveCalls++;
      const want = received.length < expect ? Math.min(batch, expect - received.length) : batch;
      messages = await consumer.receive(want, invisibleMs);
    } catch (err) {
      receiveErrors.push(describeError(err));
      if (errorPauseMs > 0) await sleep(errorPauseMs);
      continue;
    }
    for (const message of messages) {
      received.push(describe(message));
      if (options.ack) {
        try {
          await consumer.ack(message);
        } catch (err) {
          ackErrors.push({ message_id: message.messageId, ...describeError(err) });
        }
      }
    }
    if (received.length >= expect && stopAt === deadline) {
      if (lingerMs <= 0) break;
      stopAt = Date.now() + lingerMs;
    }
  }

  await shutdownWithin(consumer, 15000);
  emit({ received, ack_errors: ackErrors, receive_errors: receiveErrors, receive_calls: receiveCalls, startup_error: null,
    client_log: logger.lines, client_log_total: logger.total });
});
