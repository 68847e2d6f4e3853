'use strict';
// transaction_flow.js ADDRESS TOPIC GROUP [--listen S] [--leave NAME=DECIDE,...] [--checker-only]
//
// Transactional messages with the Node client (mirrors ../python/transaction_flow.py).
// Sends half messages and resolves them in every way: commit, rollback, left to the transaction checker (which
// commits, rolls back, or cannot tell, per the message's "decide" property: it answers COMMIT, ROLLBACK or
// TRANSACTION_RESOLUTION_UNSPECIFIED, and the client sends EndTransaction with SOURCE_SERVER_CHECK for the first
// two), and a second commit of a committed transaction (must fail). Keeps the producer (and its checker) online
// for --listen seconds while a SimpleConsumer receives, then prints what arrived and what the checker was asked.
// --leave sends one half message per NAME=DECIDE, leaves them unresolved and exits at once (no shutdown: the
// producer vanishes); --checker-only runs just the producer with its checker, and the consumer.
//
// Prints {errors: {commit-again}, asked: [NAME, ...] (in the order asked), arrivals: [NAME, ...]};
// with --leave, {left: NAME=DECIDE,...}.

const { TransactionResolution } = require('rocketmq-client-nodejs/proto/apache/rocketmq/v2/definition_pb');
const { rocketmq, parseArgs, baseOptions, describeError, emit, run } = require('./_common');

const DECISIONS = {
  commit: TransactionResolution.COMMIT,
  rollback: TransactionResolution.ROLLBACK,
  unknown: TransactionResolution.TRANSACTION_RESOLUTION_UNSPECIFIED,
};

function half(topic, name, decide) {
  return { topic, body: Buffer.from(name), properties: new Map([ [ 'name', name ], [ 'decide', decide ] ]) };
}

run(async () => {
  const { positional: [ address, topic, group ], options } = parseArgs(process.argv.slice(2), [ 'checker-only' ]);
  if (!address || !topic || !group) {
    throw new Error('usage: transaction_flow.js ADDRESS TOPIC GROUP [--listen S] [--leave N=D,...] [--checker-only]');
  }
  const listenMs = Number(options.listen ?? 12) * 1000;
  const asked = [];
  const checker = {
    async check(messageView) {
      asked.push({ name: messageView.properties.get('name'), at: Date.now() });
      return DECISIONS[messageView.properties.get('decide')];
    },
  };
  const producer = new rocketmq.Producer({ ...baseOptions(address), topics: [ topic ], checker });
  await producer.startup();
  const result = { errors: {} };

  if (options.leave) {
    for (const item of options.leave.split(',')) {
      const [ name, decide ] = item.split('=');
      await producer.send(half(topic, name, decide), producer.beginTransaction());
    }
    emit({ left: options.leave });
    return;
  }

  if (options['checker-only'] !== true) {
    const plan = [
      [ 'committed', 'rollback', 'commit' ], [ 'rolled-back', 'commit', 'rollback' ],
      [ 'checker-commits', 'commit', null ], [ 'checker-rolls-back', 'rollback', null ],
      [ 'checker-unsure', 'unknown', null ],
    ];
    for (const [ name, decide, action ] of plan) {
      const transaction = producer.beginTransaction();
      await producer.send(half(topic, name, decide), transaction);
      if (action === 'commit') {
        await transaction.commit();
        try {
          await transaction.commit();
          result.errors['commit-again'] = null;
        } catch (err) {
          result.errors['commit-again'] = describeError(err);
        }
      } else if (action === 'rollback') {
        await transaction.rollback();
      }
    }
  }

  const consumer = new rocketmq.SimpleConsumer({
    ...baseOptions(address),
    consumerGroup: group,
    subscriptions: new Map([ [ topic, new rocketmq.FilterExpression('*') ] ]),
    awaitDuration: 1000,
  });
  await consumer.startup();
  const arrivals = [];
  const deadline = Date.now() + listenMs;
  while (Date.now() < deadline) {
    for (const message of await consumer.receive(32, 30000)) {
      arrivals.push(message.properties.get('name'));
      await consumer.ack(message);
    }
  }
  result.asked = asked.map(a => a.name);
  result.arrivals = arrivals;
  // No shutdown: the producer's checker stays online to the end, as in the Python twin; emit() exits.
  emit(result);
});
