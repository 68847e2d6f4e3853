'use strict';
// produce.js ADDRESS TOPIC COUNT [--mode sequential|concurrent|mixed] [--prefix P] [--size BYTES]
//
// Sends COUNT messages with a Producer. Message i has tag `tag-{i%3}`, keys [`key-{i}`, `order-{floor(i/10)}`],
// properties {index: String(i), origin: 'node'} and a body starting with `{prefix}-{i}:`, padded with the
// bytes 0..255 to SIZE bytes (binary content, so a mangled body shows).
// The Node API is async only: "sequential" awaits each send before the next; "concurrent" keeps up to 64 sends
// in flight; "mixed" (default) awaits even indices one by one while the odd ones run concurrently.
// Prints {sent: [{index, message_id, offset, mode}], errors: [{index, error, code}]}.

const { rocketmq, parseArgs, baseOptions, describeError, emit, shutdownWithin, run } = require('./_common');

const MAX_IN_FLIGHT = 64;

function build(topic, index, prefix, size) {
  const head = Buffer.from(`${prefix}-${index}:`);
  const pad = Buffer.from(Array.from({ length: 256 }, (_, b) => b));
  const body = Buffer.concat([ head, ...Array(Math.ceil(size / 256) + 1).fill(pad) ]).subarray(0, Math.max(size, 16));
  return {
    topic,
    body,
    tag: `tag-${index % 3}`,
    keys: [ `key-${index}`, `order-${Math.floor(index / 10)}` ],
    properties: new Map([ [ 'index', String(index) ], [ 'origin', 'node' ] ]),
  };
}

run(async () => {
  const { positional: [ address, topic, countArg ], options } = parseArgs(process.argv.slice(2));
  const count = Number(countArg);
  const mode = options.mode ?? 'mixed';
  const prefix = options.prefix ?? 'node';
  const size = Number(options.size ?? 100);
  if (!address || !topic || !Number.isInteger(count) || ![ 'sequential', 'concurrent', 'mixed' ].includes(mode)) {
    throw new Error('usage: produce.js ADDRESS TOPIC COUNT [--mode sequential|concurrent|mixed] [--prefix P] [--size N]');
  }

  const producer = new rocketmq.Producer({ ...baseOptions(address), topics: [ topic ] });
  await producer.startup();

  const sent = [];
  const errors = [];
  const pending = [];
  const record = (index, how) => receipt => {
    sent.push({ index, message_id: receipt.messageId, offset: Number(receipt.offset), mode: how });
  };
  const fail = index => err => { errors.push({ index, ...describeError(err) }); };

  const inFlight = new Set();
  for (let index = 0; index < count; index++) {
    const message = build(topic, index, prefix, size);
    const concurrent = mode === 'concurrent' || (mode === 'mixed' && index % 2 === 1);
    if (concurrent) {
      // Started now, awaited with the others below; at most MAX_IN_FLIGHT at once: a thousand sends
      // started together on a busy machine outlast the client's 10 s request timeout, and the client
      // then sends them again (stored twice: at least once, but not what these tests look at).
      if (inFlight.size >= MAX_IN_FLIGHT) await Promise.race(inFlight);
      const send = producer.send(message).then(record(index, 'concurrent'), fail(index));
      inFlight.add(send);
      send.finally(() => inFlight.delete(send));
      pending.push(send);
    } else {
      await producer.send(message).then(record(index, 'sequential'), fail(index));
    }
  }
  await Promise.all(pending);

  await shutdownWithin(producer, 15000);
  sent.sort((a, b) => a.index - b.index);
  emit({ sent, errors });
});
