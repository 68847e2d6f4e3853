'use strict';
// Shared by the Node.js client programs. Each program runs the real rocketmq-client-nodejs against the
// server, then prints ONE JSON document as its last stdout line (tests/serverproc.py reads it) and exits.
// The client logs to ~/logs/rocketmq/rocketmq_client_nodejs.log.

// Fail loudly (exit 2) when the npm package is not installed: the pytest side turns that into a failure.
let rocketmq;
try {
  rocketmq = require('rocketmq-client-nodejs');
} catch (err) {
  process.stderr.write(`rocketmq-client-nodejs is not installed: run \`npm ci\` in ${__dirname}\n${err}\n`);
  process.exit(2);
}

/** Split argv into positionals and --options: `--flag` -> true, `--name value` -> 'value'. */
function parseArgs(argv, booleanFlags = []) {
  const positional = [];
  const options = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith('--')) {
      positional.push(arg);
      continue;
    }
    const key = arg.slice(2);
    if (booleanFlags.includes(key)) {
      options[key] = true;
    } else {
      if (i + 1 >= argv.length) throw new Error(`option ${arg} needs a value`);
      options[key] = argv[++i];
    }
  }
  return { positional, options };
}

/** Options every client gets: plaintext (the default; TLS with RMQ_TEST_TLS=1, trusting the certificate in
 *  GRPC_DEFAULT_SSL_ROOTS_FILE_PATH), generous timeouts for a busy 2-core machine. */
function baseOptions(address) {
  return { endpoints: address, namespace: '', requestTimeout: 10000, sslEnabled: process.env.RMQ_TEST_TLS === '1' };
}

function toMillis(date) {
  return date instanceof Date ? date.getTime() : null;
}

/** Everything a consumer can see of a received MessageView. */
function describe(message) {
  return {
    message_id: message.messageId,
    topic: message.topic,
    body: Buffer.from(message.body).toString('base64'),
    tag: message.tag ?? null,
    keys: [ ...message.keys ].sort(),
    properties: Object.fromEntries(message.properties),
    delivery_attempt: message.deliveryAttempt ?? null,
    // MessageView only sets `corrupted` when the body digest does not match.
    corrupted: message.corrupted === true,
    born_timestamp: toMillis(message.bornTimestamp),
    born_host: message.bornHost,
    message_group: message.messageGroup ?? null,
    delivery_timestamp: toMillis(message.deliveryTimestamp),
    transport_delivery_timestamp: toMillis(message.transportDeliveryTimestamp),
    queue_offset: message.offset ?? null,
    receipt_handle: message.receiptHandle,
  };
}

/** How an error looks in the JSON output; `code` is the RocketMQ status code of a ClientException. */
function describeError(err) {
  return { error: String(err && err.message ? err.message : err), code: err && err.code !== undefined ? err.code : null,
    name: err && err.name ? err.name : null };
}

/** Print the result as the last stdout line and exit: the client keeps timers and streams alive. */
function emit(result) {
  process.stdout.write(JSON.stringify(result) + '\n', () => process.exit(0));
}

/** Shut a client down, but give up after `ms` (a PushConsumer waits for its long polls to end). */
async function shutdownWithin(client, ms) {
  let timer;
  const timeout = new Promise(resolve => { timer = setTimeout(() => resolve('timeout'), ms); });
  try {
    return await Promise.race([ client.shutdown().then(() => 'ok', err => `error: ${err}`), timeout ]);
  } finally {
    clearTimeout(timer);
  }
}

function sleep(ms) {
  return new Promise(resolve => setTimeout(resolve, ms));
}

/** Run main(); any uncaught failure prints a stack trace and exits non-zero so the test fails with it. */
function run(main) {
  main().catch(err => {
    process.stderr.write(`${err && err.stack ? err.stack : err}\n`);
    process.exit(1);
  });
}

module.exports = { rocketmq, parseArgs, baseOptions, describe, describeError, emit, shutdownWithin, sleep, run };
