'use strict';
// fifo_consume.js ADDRESS TOPIC GROUP --stop-file PATH [--seed S] [--fail-rate R] [--max-wait S]
//                 [--shutdown-wait S]
//
// A PushConsumer of a FIFO group (the server's settings say subscription.fifo, so the client consumes each
// received batch one message at a time, in order) whose listener fails at random about R of the time (default 0.05;
// a seeded PRNG, so runs are repeatable per seed). On a failure the client redelivers the message locally after
// the group's backoff (FIFO: it holds the message, nothing else of its group comes meanwhile).
// Records every successful consumption [wall-clock seconds (Date.now()/1000), message group, seq, message id,
// deliveryAttempt] and every failure [wall-clock seconds, message group, seq], reading group and seq from the
// message properties (see produce_fifo.js), until the file PATH exists (or --max-wait, default 300 s, passes),
// so several instances can run side by side and a test can merge their records by time. Then it prints the
// records and exits; the client's shutdown, which waits for its long polls to end (up to the server's long
// polling timeout), is capped at --shutdown-wait (default 5 s): the records were taken before it.
// Prints {successes: [[t, group, seq, id, attempt]...], failures: [[t, group, seq]...], shutdown}.

const fs = require('node:fs');
const { rocketmq, parseArgs, baseOptions, emit, shutdownWithin, sleep, run } = require('./_common');

/** mulberry32: a small seeded PRNG returning floats in [0, 1). */
function seededRandom(seed) {
  let state = (Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) >>> 0) || 1;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

run(async () => {
  const { positional: [ address, topic, group ], options } = parseArgs(process.argv.slice(2));
  const stopFile = options['stop-file'];
  const seed = Number(options.seed ?? 1);
  const failRate = Number(options['fail-rate'] ?? 0.05);
  const maxWaitMs = Number(options['max-wait'] ?? 300) * 1000;
  const shutdownMs = Number(options['shutdown-wait'] ?? 5) * 1000;
  if (!address || !topic || !group || !stopFile || !Number.isInteger(seed) || !(failRate >= 0 && failRate <= 1)) {
    throw new Error('usage: fifo_consume.js ADDRESS TOPIC GROUP --stop-file PATH [--seed S] [--fail-rate R] '
      + '[--max-wait S] [--shutdown-wait S]');
  }

  const random = seededRandom(seed);
  const successes = [];
  const failures = [];
  const consumer = new rocketmq.PushConsumer({
    ...baseOptions(address),
    consumerGroup: group,
    subscriptions: new Map([ [ topic, '*' ] ]),
    messageListener: {
      consume(message) {
        const messageGroup = message.properties.get('group');
        const seq = Number(message.properties.get('seq'));
        const now = Date.now() / 1000;
        if (random() < failRate) {
          failures.push([ now, messageGroup, seq ]);
          return rocketmq.ConsumeResult.FAILURE;
        }
        successes.push([ now, messageGroup, seq, message.messageId, message.deliveryAttempt ?? null ]);
        return rocketmq.ConsumeResult.SUCCESS;
      },
    },
  });
  await consumer.startup();

  const deadline = Date.now() + maxWaitMs;
  while (Date.now() < deadline && !fs.existsSync(stopFile)) {
    await sleep(100);
  }
  // Snapshot now: nothing consumed while shutting down belongs to the observation.
  const result = { successes: [ ...successes ], failures: [ ...failures ] };
  result.shutdown = await shutdownWithin(consumer, shutdownMs);
  emit(result);
});
