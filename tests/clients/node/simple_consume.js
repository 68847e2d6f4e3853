'use strict';
// simple_consume.js ADDRESS TOPIC GROUP EXPECT [--ack] [--invisible S] [--max-wait S] [--batch N] [--tag EXPR]
//                   [--await S] [--linger S]
//
// Receives with a SimpleConsumer until EXPECT messages arrived or --max-wait seconds passed; with --ack it acks
// each one. With --linger it keeps receiving for that many seconds after reaching EXPECT, so anything extra
// (a duplicate, a redelivery) also shows up in `received`.
// Prints {received: [every visible field of each message], ack_errors, receive_errors, receive_calls}.

const { rocketmq, parseArgs, baseOptions, describe, describeError, emit, shutdownWithin, run } = require('./_common');

run(async () => {
  const { positional: [ address, topic, group, expectArg ], options } = parseArgs(process.argv.slice(2), [ 'ack' ]);
  const expect = Number(expectArg);
  if (!address || !topic || !group || !Number.isInteger(expect)) {
    throw new Error('usage: simple_consume.js ADDRESS TOPIC GROUP EXPECT [--ack] [--invisible S] [--max-wait S]');
  }
  const invisibleMs = Number(options.invisible ?? 20) * 1000;
  const maxWaitMs = Number(options['max-wait'] ?? 60) * 1000;
  const lingerMs = Number(options.linger ?? 0) * 1000;
  const batch = Number(options.batch ?? 32);

  const consumer = new rocketmq.SimpleConsumer({
    ...baseOptions(address),
    consumerGroup: group,
    subscriptions: new Map([ [ topic, options.tag ?? '*' ] ]),
    awaitDuration: Number(options.await ?? 5) * 1000, // long polling per receive
  });
  await consumer.startup();

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
  emit({ received, ack_errors: ackErrors, receive_errors: receiveErrors, receive_calls: receiveCalls });
});
