'use strict';
// runner.js SCENARIO --endpoint HOST:PORT [--tls default|on|off] [options]
//
// The shared client scenarios (tests/clients/SCENARIOS.md) with rocketmq-client-nodejs 1.0.8: one scenario per run,
// with the client's public API as its users use it; the result is the last stdout line (one JSON object).
// tests/clientmatrix.py runs it and the tests assert on what it prints. With `--tls on` the client verifies the
// server's certificate against grpc-js's roots, which the test points at its own certificate with
// GRPC_DEFAULT_SSL_ROOTS_FILE_PATH. Exit codes: 0 the scenario ran, 3 unsupported, anything else a crash.

const { TransactionResolution } = require('rocketmq-client-nodejs/proto/apache/rocketmq/v2/definition_pb');
const { rocketmq, parseArgs, describe, describeError, emit, shutdownWithin, sleep, run } = require('./_common');
const { subscription } = require('./_filter');

const LANGUAGE = 'node';
const DAY_MS = 86400000;
const LONG_POLL_MS = 5000; // a SimpleConsumer's await duration: how long one receive waits for messages
const RECEIVE_ERROR_PAUSE_MS = 200; // after a failed receive, so a refusing server is not asked in a busy loop
const SHUTDOWN_MS = 20000; // a PushConsumer's shutdown waits for its long polls: bounded
const DECISIONS = {
  commit: TransactionResolution.COMMIT,
  rollback: TransactionResolution.ROLLBACK,
  unknown: TransactionResolution.TRANSACTION_RESOLUTION_UNSPECIFIED,
};

/** Options the scenarios take, with their defaults; `true` marks a flag without a value. */
const SCENARIO_OPTIONS = {
  produce: { topic: null, count: null, mode: 'mixed', prefix: 'm', size: '100' },
  'produce-fifo': { topic: null, count: null, groups: null, prefix: 'm' },
  'produce-priority': { topic: null, specs: null },
  'produce-delay': { topic: null },
  'produce-transaction': { topic: null, linger: '15' },
  'simple-consume': { topic: null, group: null, expect: null, ack: true, 'invisible-s': '20', 'max-wait-s': '60',
    batch: '32', tag: undefined, sql: undefined, 'change-invisible-s': undefined },
  'push-consume': { topic: null, group: null, expect: null, fail: 'never', 'max-wait-s': '120', 'linger-s': '2',
    tag: undefined, sql: undefined },
};
const COMMON_OPTIONS = { endpoint: null, tls: 'default', 'access-key': undefined, 'secret-key': undefined,
  'request-timeout-ms': '10000' };

/** The scenario and its options (defaults filled in, `null` ones required); throws on anything unknown. */
function parseCommandLine(argv) {
  const scenario = argv[0];
  const known = SCENARIO_OPTIONS[scenario];
  if (!known) throw new Error(`usage: runner.js ${Object.keys(SCENARIO_OPTIONS).join('|')} --endpoint HOST:PORT ...`);
  const spec = { ...COMMON_OPTIONS, ...known };
  const flags = Object.keys(spec).filter(name => spec[name] === true);
  const { positional, options } = parseArgs(argv.slice(1), flags);
  if (positional.length > 0) throw new Error(`unexpected arguments: ${positional.join(' ')}`);
  for (const name of Object.keys(options)) {
    if (!(name in spec)) throw new Error(`${scenario} has no option --${name}`);
  }
  const result = {};
  for (const [ name, fallback ] of Object.entries(spec)) {
    if (options[name] !== undefined) result[name] = options[name];
    else if (fallback === null) throw new Error(`${scenario} needs --${name}`);
    else result[name] = fallback === true ? false : fallback;
  }
  if (![ 'default', 'on', 'off' ].includes(result.tls)) throw new Error('--tls: default, on or off');
  if (result.tag !== undefined && result.sql !== undefined) throw new Error('give --tag or --sql, not both');
  return { scenario, options: result };
}

/** What every client gets from the common options. The Node client's own default is plaintext. */
function clientOptions(options) {
  const base = {
    endpoints: options.endpoint,
    namespace: '',
    requestTimeout: Number(options['request-timeout-ms']),
    sslEnabled: options.tls === 'on',
  };
  if (options['access-key'] !== undefined) {
    base.sessionCredentials = { accessKey: options['access-key'], accessSecret: options['secret-key'] ?? '' };
  }
  return base;
}

/** Message `index` as SCENARIOS.md describes it (body, tag, keys, index and origin). */
function standardMessage(topic, index, prefix = 'm', size = 100) {
  const head = Buffer.from(`${prefix}-${index}:`);
  const pad = Buffer.from(Array.from({ length: 256 }, (_, b) => b));
  const body = Buffer.concat([ head, ...Array(Math.floor(size / 256) + 1).fill(pad) ])
    .subarray(0, Math.max(size, head.length));
  return {
    topic,
    body,
    tag: `tag-${index % 3}`,
    keys: [ `key-${index}`, `order-${Math.floor(index / 10)}` ],
    properties: new Map([ [ 'index', String(index) ], [ 'origin', LANGUAGE ] ]),
  };
}

function sentEntry(index, receipt, mode) {
  return { index, message_id: receipt.messageId, mode, offset: Number(receipt.offset) };
}

/** An error in the contract's shape; the status code of a ClientException, or (recallMessage in 1.0.8 throws a
 * plain Error) the one its text ends with. */
function contractError(err) {
  const described = describeError(err);
  if (described.code === null) {
    const match = /\(code: (\d+)\)\s*$/.exec(described.error);
    if (match) return { ...described, code: Number(match[1]), code_from: 'message' };
  }
  return described;
}

/** Run `fn`: null when it succeeded, else the error. */
async function attempt(fn) {
  try {
    await fn();
    return null;
  } catch (err) {
    return contractError(err);
  }
}

/** A received MessageView in the contract's shape, with the extra fields this client exposes. */
function received(message, atMs) {
  const fields = describe(message);
  return {
    message_id: fields.message_id,
    topic: fields.topic,
    body: fields.body,
    tag: fields.tag,
    keys: fields.keys,
    properties: fields.properties,
    delivery_attempt: fields.delivery_attempt,
    message_group: fields.message_group,
    delivery_timestamp_ms: fields.delivery_timestamp,
    born_timestamp_ms: fields.born_timestamp,
    born_host: fields.born_host,
    at_ms: atMs,
    corrupted: fields.corrupted,
    queue_offset: fields.queue_offset === null ? null : Number(fields.queue_offset),
    transport_delivery_timestamp_ms: fields.transport_delivery_timestamp,
    receipt_handle: fields.receipt_handle,
  };
}

async function startProducer(options, checker) {
  const producer = new rocketmq.Producer({ ...clientOptions(options), topics: [ options.topic ], checker });
  await producer.startup();
  return producer;
}

// -- producers ----------------------------------------------------------------------------------------------------

async function produce(options) {
  const count = Number(options.count);
  const size = Number(options.size);
  if (![ 'sync', 'async', 'mixed' ].includes(options.mode)) throw new Error('--mode: sync, async or mixed');
  const producer = await startProducer(options);
  const sent = [];
  const errors = [];
  const pending = [];
  for (let index = 0; index < count; index++) {
    const message = standardMessage(options.topic, index, options.prefix, size);
    const mode = options.mode === 'async' || (options.mode === 'mixed' && index % 2 === 1) ? 'async' : 'sync';
    // The API is asynchronous only: "sync" awaits each send before the next, "async" awaits them all at the end.
    const sending = producer.send(message).then(
      receipt => { sent.push(sentEntry(index, receipt, mode)); },
      err => { errors.push({ index, ...contractError(err) }); });
    if (mode === 'sync') await sending;
    else pending.push(sending);
  }
  await Promise.all(pending);
  await shutdownWithin(producer, SHUTDOWN_MS);
  sent.sort((a, b) => a.index - b.index);
  errors.sort((a, b) => a.index - b.index);
  return { sent, errors };
}

async function produceFifo(options) {
  const count = Number(options.count);
  const groups = Number(options.groups);
  const producer = await startProducer(options);
  const sent = [];
  const errors = [];
  for (let index = 0; index < count; index++) {
    const message = standardMessage(options.topic, index, options.prefix);
    const group = `mg-${index % groups}`;
    const seq = Math.floor(index / groups);
    message.messageGroup = group;
    message.properties.set('seq', String(seq));
    try {
      sent.push({ ...sentEntry(index, await producer.send(message), 'sync'), message_group: group, seq });
    } catch (err) {
      errors.push({ index, ...contractError(err) });
    }
  }
  await shutdownWithin(producer, SHUTDOWN_MS);
  return { sent, errors };
}

/** For each spec P:N in order, N messages of priority P (body p<P>-<i>, tag tag-<P>), one at a time. */
async function producePriority(options) {
  const producer = await startProducer(options);
  const sent = [];
  const errors = [];
  let index = 0;
  for (const spec of options.specs.split(',')) {
    const [ priority, count ] = spec.split(':').map(Number);
    for (let i = 0; i < count; i++, index++) {
      const message = { topic: options.topic, body: Buffer.from(`p${priority}-${i}`), tag: `tag-${priority}`,
        properties: new Map([ [ 'origin', LANGUAGE ] ]), priority };
      try {
        sent.push({ ...sentEntry(index, await producer.send(message), 'sync'), priority });
      } catch (err) {
        errors.push({ index, ...contractError(err) });
      }
    }
  }
  await shutdownWithin(producer, SHUTDOWN_MS);
  return { sent, errors };
}

async function produceDelay(options) {
  const producer = await startProducer(options);
  const now = Date.now();
  const plan = [ [ 'plus3', now + 3000 ], [ 'plus1', now + 1000 ], [ 'past', now - 5000 ],
    [ 'too-far', now + 41 * DAY_MS ], [ 'recalled', now + 5000 ] ];
  const sent = {};
  const errors = { 'too-far': null, 'recall-again': null };
  const result = { sent, errors, recall: null };
  for (const [ index, [ name, dueMs ] ] of plan.entries()) {
    const message = standardMessage(options.topic, index);
    message.properties.set('name', name);
    message.deliveryTimestamp = new Date(dueMs);
    let receipt;
    try {
      receipt = await producer.send(message);
    } catch (err) {
      if (name !== 'too-far') throw err;
      errors[name] = contractError(err);
      continue;
    }
    sent[name] = { due_ms: dueMs, message_id: receipt.messageId, recall_handle: receipt.recallHandle || null };
  }
  const handle = sent.recalled.recall_handle;
  try {
    result.recall = (await producer.recallMessage(options.topic, handle)).messageId;
  } catch (err) {
    errors.recall = contractError(err);
  }
  errors['recall-again'] = await attempt(() => producer.recallMessage(options.topic, handle));
  errors['recall-garbage'] = await attempt(() => producer.recallMessage(options.topic, 'not-a-handle'));
  await shutdownWithin(producer, SHUTDOWN_MS);
  return result;
}

async function produceTransaction(options) {
  const asked = [];
  const checker = {
    async check(messageView) {
      asked.push({ name: messageView.properties.get('name') ?? null, at_ms: Date.now() });
      return DECISIONS[messageView.properties.get('decide')];
    },
  };
  const producer = await startProducer(options, checker);
  const plan = [
    [ 'committed', 'rollback', 'commit' ], [ 'rolled-back', 'commit', 'rollback' ],
    [ 'checker-commits', 'commit', null ], [ 'checker-rolls-back', 'rollback', null ],
    [ 'checker-unsure', 'unknown', null ],
  ];
  const sent = {};
  const errors = { 'commit-again': null };
  for (const [ index, [ name, decide, action ] ] of plan.entries()) {
    const message = standardMessage(options.topic, index);
    message.properties.set('name', name);
    message.properties.set('decide', decide);
    const transaction = producer.beginTransaction();
    sent[name] = (await producer.send(message, transaction)).messageId;
    if (action === 'commit') {
      await transaction.commit();
      errors['commit-again'] = await attempt(() => transaction.commit());
    } else if (action === 'rollback') {
      await transaction.rollback();
    }
  }
  await sleep(Number(options.linger) * 1000); // online, answering the server's checks
  const result = { sent, asked: [ ...asked ], errors };
  await shutdownWithin(producer, SHUTDOWN_MS);
  return result;
}

// -- consumers ----------------------------------------------------------------------------------------------------

async function simpleConsume(options) {
  const expect = Number(options.expect);
  const invisibleMs = Number(options['invisible-s']) * 1000;
  const batch = Number(options.batch);
  const changeMs = options['change-invisible-s'] === undefined ? null : Number(options['change-invisible-s']) * 1000;
  const consumer = new rocketmq.SimpleConsumer({
    ...clientOptions(options),
    consumerGroup: options.group,
    subscriptions: new Map([ [ options.topic, subscription(options) ] ]),
    awaitDuration: LONG_POLL_MS,
  });
  await consumer.startup();
  const messages = [];
  const ackErrors = [];
  const receiveErrors = [];
  const deadline = Date.now() + Number(options['max-wait-s']) * 1000;
  while (messages.length < expect && Date.now() < deadline) {
    let batchReceived;
    try {
      batchReceived = await consumer.receive(Math.min(batch, expect - messages.length), invisibleMs);
    } catch (err) {
      receiveErrors.push(contractError(err));
      await sleep(RECEIVE_ERROR_PAUSE_MS);
      continue;
    }
    const atMs = Date.now();
    for (const message of batchReceived) {
      const entry = received(message, atMs);
      messages.push(entry);
      if (changeMs !== null) {
        const oldHandle = message.receiptHandle;
        try {
          await consumer.changeInvisibleDuration(message, changeMs); // replaces message.receiptHandle
        } catch (err) {
          ackErrors.push({ message_id: message.messageId, op: 'change-invisible-duration', ...contractError(err) });
          continue;
        }
        const newHandle = message.receiptHandle;
        message.receiptHandle = oldHandle;
        entry.old_handle_ack = await attempt(() => consumer.ack(message));
        message.receiptHandle = newHandle;
      }
      if (options.ack) {
        const failed = await attempt(() => consumer.ack(message));
        if (failed !== null) ackErrors.push({ message_id: message.messageId, ...failed });
      }
    }
  }
  await shutdownWithin(consumer, SHUTDOWN_MS);
  return { received: messages, ack_errors: ackErrors, receive_errors: receiveErrors };
}

/** Whether the listener fails this call, by --fail: never, always, first, index-mod-K. */
function failPolicy(spec) {
  if (spec === 'never') return () => false;
  if (spec === 'always') return () => true;
  if (spec === 'first') return (message, first) => first;
  const match = /^index-mod-(\d+)$/.exec(spec);
  if (!match) throw new Error(`--fail ${spec}: never, always, first or index-mod-K`);
  const k = Number(match[1]);
  return (message, first) => {
    const index = message.properties.get('index');
    return first && index !== undefined && Number(index) % k === 0;
  };
}

async function pushConsume(options) {
  const expect = Number(options.expect);
  const fails = failPolicy(options.fail);
  const events = [];
  const seen = new Set();
  let reached;
  const reachedExpect = new Promise(resolve => { reached = resolve; });
  const consumer = new rocketmq.PushConsumer({
    ...clientOptions(options),
    consumerGroup: options.group,
    subscriptions: new Map([ [ options.topic, subscription(options) ] ]),
    messageListener: {
      consume(message) {
        const atMs = Date.now();
        const first = !seen.has(message.messageId);
        seen.add(message.messageId);
        const fail = fails(message, first);
        const fields = received(message, atMs);
        events.push({
          message_id: message.messageId, attempt: fields.delivery_attempt, message_group: fields.message_group,
          properties: fields.properties, result: fail ? 'fail' : 'ok', at_ms: atMs,
          topic: fields.topic, body: fields.body, tag: fields.tag, keys: fields.keys, corrupted: fields.corrupted,
        });
        if (events.length >= expect) reached();
        return fail ? rocketmq.ConsumeResult.FAILURE : rocketmq.ConsumeResult.SUCCESS;
      },
    },
  });
  await consumer.startup();
  let timer;
  await Promise.race([ reachedExpect, new Promise(resolve => {
    timer = setTimeout(resolve, Number(options['max-wait-s']) * 1000);
  }) ]);
  clearTimeout(timer);
  await sleep(Number(options['linger-s']) * 1000); // extra deliveries would show up now
  const result = { events: [ ...events ] };
  result.shutdown = await shutdownWithin(consumer, SHUTDOWN_MS); // 'ok', 'timeout' or 'error: ...'
  return result;
}

const SCENARIOS = {
  produce,
  'produce-fifo': produceFifo,
  'produce-priority': producePriority,
  'produce-delay': produceDelay,
  'produce-transaction': produceTransaction,
  'simple-consume': simpleConsume,
  'push-consume': pushConsume,
};

run(async () => {
  const { scenario, options } = parseCommandLine(process.argv.slice(2));
  emit(await SCENARIOS[scenario](options));
});
