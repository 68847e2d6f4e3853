'use strict';
// produce_fifo.js ADDRESS TOPIC [--groups G] [--per-group N] [--producers P]
//
// Sends FIFO messages: G message groups (`group-000`, `group-001`, ...) x N messages, by P Producers running
// concurrently in this process. Message group g belongs to producer g % P, which sends its groups' messages
// round robin (its first group seq 0, its second group seq 0, ..., its first group seq 1, ...), awaiting each
// send before the next, so the send order of a group is its sequence. Each message has the body
// `{group}:{seq}`, the tag `fifo`, and the properties {group, seq}, like tests/clients/python/produce_fifo.py.
// Prints {sent: {group: [message ids in send order]}, errors: [{group, seq, error, code, name}]}.

const { rocketmq, parseArgs, baseOptions, describeError, emit, shutdownWithin, run } = require('./_common');

function groupName(g) {
  return `group-${String(g).padStart(3, '0')}`;
}

run(async () => {
  const { positional: [ address, topic ], options } = parseArgs(process.argv.slice(2));
  const groups = Number(options.groups ?? 50);
  const perGroup = Number(options['per-group'] ?? 200);
  const producers = Number(options.producers ?? 4);
  if (!address || !topic || ![ groups, perGroup, producers ].every(n => Number.isInteger(n) && n > 0)) {
    throw new Error('usage: produce_fifo.js ADDRESS TOPIC [--groups G] [--per-group N] [--producers P]');
  }

  const sent = {};
  for (let g = 0; g < groups; g++) sent[groupName(g)] = [];
  const errors = [];

  async function produce(index) {
    const producer = new rocketmq.Producer({ ...baseOptions(address), topics: [ topic ] });
    await producer.startup();
    try {
      const mine = [];
      for (let g = index; g < groups; g += producers) mine.push(groupName(g));
      for (let seq = 0; seq < perGroup; seq++) {
        for (const group of mine) {
          const message = {
            topic,
            body: Buffer.from(`${group}:${seq}`),
            tag: 'fifo',
            messageGroup: group,
            properties: new Map([ [ 'group', group ], [ 'seq', String(seq) ] ]),
          };
          try {
            const receipt = await producer.send(message); // awaited: the group's send order is its sequence
            sent[group].push(receipt.messageId);
          } catch (err) {
            errors.push({ group, seq, ...describeError(err) });
          }
        }
      }
    } finally {
      await shutdownWithin(producer, 15000);
    }
  }

  await Promise.all(Array.from({ length: producers }, (_, index) => produce(index)));
  emit({ sent, errors });
});
