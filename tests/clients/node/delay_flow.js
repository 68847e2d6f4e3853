'use strict';
// delay_flow.js ADDRESS TOPIC GROUP [--listen S] [--later MS] [--send-only | --receive-only]
//
// Scheduled messages with the Node client (mirrors ../python/delay_flow.py): send, recall, and receive on time.
// Sends messages due in +3 s, +1 s and in the past (the message's `deliveryTimestamp`, a Date), one due in 41 days
// (must be refused), and one due in +5 s that is recalled at once with producer.recallMessage (recalling it again,
// or with a malformed handle, must fail). Meanwhile a SimpleConsumer (started before the sends, so it is already
// polling while the messages are not due yet) receives for --listen seconds from the end of the sends and records,
// per message, when it was due and when it arrived (epoch ms).
// --send-only sends the +3 s/+1 s/past messages and exits; --receive-only only receives. --later MS moves the
// +3 s and +1 s due times MS later (a crash test needs them still pending after a slow start on a busy machine).
//
// Prints {sent: {NAME: {due, message_id, recall_handle, sent_at}}, errors: {too-far, recall-again, recall-garbage},
//         recalled_id, recall, listening_since, arrivals: [{name, arrived, delivery_timestamp, message_id}]}.
// An error is {error, code, name}; 1.0.8's recallMessage throws a plain Error whose text ends with
// "(code: N)" (no `code` property), so for those the code is read from the text (`code_from`: 'message').

const { rocketmq, parseArgs, baseOptions, describeError, emit, shutdownWithin, run } = require('./_common');

const DAY_MS = 86400000;

function scheduled(topic, name, dueMs) {
  return {
    topic,
    body: Buffer.from(name),
    tag: 'scheduled',
    properties: new Map([ [ 'name', name ] ]),
    deliveryTimestamp: new Date(dueMs),
  };
}

/** describeError, with the status code recallMessage only puts in its message text. */
function recallError(err) {
  const described = describeError(err);
  if (described.code === null) {
    const match = /\(code: (\d+)\)\s*$/.exec(described.error);
    if (match) return { ...described, code: Number(match[1]), code_from: 'message' };
  }
  return described;
}

async function attempt(fn, describeFn = describeError) {
  try {
    await fn();
    return null;
  } catch (err) {
    return describeFn(err);
  }
}

run(async () => {
  const { positional: [ address, topic, group ], options } =
    parseArgs(process.argv.slice(2), [ 'send-only', 'receive-only' ]);
  if (!address || !topic || !group) {
    throw new Error('usage: delay_flow.js ADDRESS TOPIC GROUP [--listen S] [--later MS] '
      + '[--send-only | --receive-only]');
  }
  const listenMs = Number(options.listen ?? 8) * 1000;
  const sendOnly = options['send-only'] === true;
  const result = { sent: {}, errors: {} };

  // The consumer receives from before the first send, concurrently with the sends, until --listen
  // seconds after them (the deadline is set once they are done), so an early delivery would show.
  const arrivals = [];
  let deadline = null;
  let consumer = null;
  let receiving = null;
  if (!sendOnly) {
    consumer = new rocketmq.SimpleConsumer({
      ...baseOptions(address),
      consumerGroup: group,
      subscriptions: new Map([ [ topic, new rocketmq.FilterExpression('*') ] ]),
      awaitDuration: 3000, // a message the server fails to hand to a waiting poll shows up seconds late
    });
    await consumer.startup();
    result.listening_since = Date.now();
    receiving = (async () => {
      while (deadline === null || Date.now() < deadline) {
        const messages = await consumer.receive(32, 30000);
        const arrived = Date.now();
        for (const message of messages) {
          arrivals.push({
            name: message.properties.get('name') ?? null,
            arrived,
            delivery_timestamp: message.deliveryTimestamp instanceof Date ? message.deliveryTimestamp.getTime() : null,
            message_id: message.messageId,
          });
          await consumer.ack(message);
        }
      }
    })();
  }

  if (options['receive-only'] !== true) {
    const producer = new rocketmq.Producer({ ...baseOptions(address), topics: [ topic ] });
    await producer.startup();
    const now = Date.now();
    const later = Number(options.later ?? 0);
    const dues = { plus3: now + later + 3000, plus1: now + later + 1000, past: now - 5000 };
    for (const [ name, due ] of Object.entries(dues)) {
      const receipt = await producer.send(scheduled(topic, name, due));
      result.sent[name] = {
        due, message_id: receipt.messageId, recall_handle: receipt.recallHandle, sent_at: Date.now(),
      };
    }
    if (!sendOnly) {
      result.errors['too-far'] = await attempt(() => producer.send(scheduled(topic, 'too-far', now + 41 * DAY_MS)));
      const receipt = await producer.send(scheduled(topic, 'recalled', now + 5000));
      result.recalled_id = receipt.messageId;
      result.recall = (await producer.recallMessage(topic, receipt.recallHandle)).messageId;
      result.errors['recall-again'] = await attempt(() => producer.recallMessage(topic, receipt.recallHandle),
        recallError);
      result.errors['recall-garbage'] = await attempt(() => producer.recallMessage(topic, 'not-a-handle'), recallError);
    }
    await shutdownWithin(producer, 15000);
    if (sendOnly) {
      emit(result);
      return;
    }
  }

  deadline = Date.now() + listenMs;
  await receiving;
  result.arrivals = arrivals;
  await shutdownWithin(consumer, 15000);
  emit(result);
});
