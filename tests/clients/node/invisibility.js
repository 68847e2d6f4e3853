'use strict';
// invisibility.js ADDRESS TOPIC GROUP
//
// Redelivery and ChangeInvisibleDuration, seen from the Node SimpleConsumer (mirrors ../python/invisibility.py):
// 1. receive one message with a 10 s invisible duration and do not ack it: it must come back after ~10 s
//    with deliveryAttempt 2 (and not during the first 5 s long poll);
// 2. changeInvisibleDuration(15 s) on the redelivered message gives it a new receipt handle; acking with the
//    handle from before the change is refused; the message is not back before the new 15 s ran out, then comes
//    back with attempt 3, which makes the handle from the change stale too; the third delivery acks fine.
// Prints timings and outcomes; the test asserts on them.

const { rocketmq, parseArgs, baseOptions, describeError, emit, shutdownWithin, run } = require('./_common');

const INVISIBLE_MS = 10000;
const CHANGED_MS = 15000;

/** Receive calls (each long polls ~5 s) until one message arrives or `waitMs` passed since the call. */
async function receiveOne(consumer, waitMs) {
  const deadline = Date.now() + waitMs;
  while (Date.now() < deadline) {
    const messages = await consumer.receive(1, INVISIBLE_MS);
    if (messages.length > 0) return messages[0];
  }
  return null;
}

/** Ack `message` as if it carried `handle`; 'accepted' or the error (with its RocketMQ code). */
async function ackWith(consumer, message, handle) {
  message.receiptHandle = handle; // the client keeps the handle on the MessageView
  try {
    await consumer.ack(message);
    return 'accepted';
  } catch (err) {
    return describeError(err);
  }
}

const seconds = since => (Date.now() - since) / 1000;

run(async () => {
  const { positional: [ address, topic, group ] } = parseArgs(process.argv.slice(2));
  if (!address || !topic || !group) throw new Error('usage: invisibility.js ADDRESS TOPIC GROUP');
  const consumer = new rocketmq.SimpleConsumer({
    ...baseOptions(address),
    consumerGroup: group,
    subscriptions: new Map([ [ topic, '*' ] ]),
    awaitDuration: 5000,
  });
  await consumer.startup();
  const result = {};

  const first = await receiveOne(consumer, 30000);
  if (!first) throw new Error('nothing to receive');
  const t0 = Date.now();
  result.first = { message_id: first.messageId, attempt: first.deliveryAttempt };

  // Within the 10 s nothing comes back (this receive long polls ~5 s).
  result.early_receive_count = (await consumer.receive(1, INVISIBLE_MS)).length;
  const second = await receiveOne(consumer, 30000);
  if (!second) throw new Error('the unacked message did not come back');
  result.second = { message_id: second.messageId, attempt: second.deliveryAttempt, after_s: seconds(t0) };

  const oldHandle = second.receiptHandle;
  const t1 = Date.now();
  await consumer.changeInvisibleDuration(second, CHANGED_MS); // replaces second.receiptHandle
  const newHandle = second.receiptHandle;
  result.handle_changed = typeof newHandle === 'string' && newHandle.length > 0 && newHandle !== oldHandle;
  result.old_handle_ack = await ackWith(consumer, second, oldHandle);

  // Not back before the new 15 s: receive calls started within 8 s of the change end by ~13 s.
  const early = await receiveOne(consumer, 8000);
  result.receive_after_change = early ? { message_id: early.messageId, attempt: early.deliveryAttempt } : null;
  result.receive_after_change_window_s = seconds(t1);
  const third = await receiveOne(consumer, 20000);
  result.third = third && { message_id: third.messageId, attempt: third.deliveryAttempt, after_s: seconds(t1) };
  // Redelivered: the handle the change returned is superseded now.
  result.stale_new_handle_ack = await ackWith(consumer, second, newHandle);
  if (third) result.third_ack = await ackWith(consumer, third, third.receiptHandle);

  await shutdownWithin(consumer, 15000);
  emit(result);
});
