'use strict';
// push_fail.js ADDRESS TOPIC GROUP --expect N [--max-wait S] [--linger S] [--shutdown-wait S]
//
// A PushConsumer whose listener always fails (it returns ConsumeResult.FAILURE; a thrown error is turned into
// FAILURE by the client too). The client then nacks each delivery with ChangeInvisibleDuration and the delay its
// retry policy (sent by the server in the Telemetry settings) gives for that attempt.
// Records per message id each delivery's deliveryAttempt and the time since start (monotonic seconds); stops
// once N deliveries in total were seen (or --max-wait passed), lingers (default 2 s) to catch extra deliveries,
// then shuts down (bounded by --shutdown-wait, default 25 s: a PushConsumer waits for its long polls).
// Also records, without changing them, the ChangeInvisibleDuration requests the client sends (its nacks) and
// the retry policy the client holds after the server's settings.
// Prints {deliveries: {id: [[attempt, t_s]...]}, messages: {id: fields of the first delivery},
//         nacks: [{message_id, invisible_ms, t_s}], retry_policy, reached_expect_s, shutdown}.

const { rocketmq, parseArgs, baseOptions, describe, emit, shutdownWithin, sleep, run } = require('./_common');
const { performance } = require('node:perf_hooks');

/** What the client made of the server's backoff policy: as a protobuf, and the delays it computes. */
function describeRetryPolicy(policy, upTo) {
  if (!policy) return null;
  const proto = policy.toProtobuf().toObject();
  const delays = [];
  for (let attempt = 1; attempt <= upTo; attempt++) delays.push(policy.getNextAttemptDelay(attempt));
  return {
    max_attempts: policy.getMaxAttempts(),
    exponential: proto.exponentialBackoff ?? null,
    // getNextAttemptDelay(attempt) for attempt = 1..upTo, exactly as the client computes it.
    next_attempt_delays: delays,
  };
}

run(async () => {
  const { positional: [ address, topic, group ], options } = parseArgs(process.argv.slice(2));
  const expect = Number(options.expect);
  if (!address || !topic || !group || !Number.isInteger(expect) || expect < 1) {
    throw new Error('usage: push_fail.js ADDRESS TOPIC GROUP --expect N [--max-wait S] [--linger S]');
  }
  const maxWaitMs = Number(options['max-wait'] ?? 120) * 1000;
  const lingerMs = Number(options.linger ?? 2) * 1000;
  const shutdownMs = Number(options['shutdown-wait'] ?? 25) * 1000;

  const origin = performance.now();
  const since = () => Math.round(performance.now() - origin) / 1000;
  const deliveries = {};
  const messages = {};
  const nacks = [];
  let total = 0;

  const consumer = new rocketmq.PushConsumer({
    ...baseOptions(address),
    consumerGroup: group,
    subscriptions: new Map([ [ topic, '*' ] ]),
    messageListener: {
      consume(message) {
        const id = message.messageId;
        (deliveries[id] ??= []).push([ message.deliveryAttempt ?? null, since() ]);
        total++;
        if (!messages[id]) {
          const { receipt_handle, ...fields } = describe(message); // eslint-disable-line no-unused-vars
          messages[id] = fields;
        }
        return rocketmq.ConsumeResult.FAILURE;
      },
    },
  });
  // Observe (never alter) the nacks: ProcessQueue calls this method of the consumer for each one.
  const changeInvisibleDuration = consumer.changeInvisibleDurationViaRpc.bind(consumer);
  consumer.changeInvisibleDurationViaRpc = (endpoints, request, timeout) => {
    const duration = request.getInvisibleDuration();
    nacks.push({
      message_id: request.getMessageId(),
      invisible_ms: duration.getSeconds() * 1000 + duration.getNanos() / 1e6,
      t_s: since(),
    });
    return changeInvisibleDuration(endpoints, request, timeout);
  };

  await consumer.startup();

  const deadline = origin + maxWaitMs;
  while (total < expect && performance.now() < deadline) {
    await sleep(50);
  }
  const reached = total >= expect ? since() : null;
  await sleep(lingerMs);
  const retryPolicy = describeRetryPolicy(consumer.getRetryPolicy(), 6);
  // Snapshot now: what arrives while shutting down is not part of the observation window.
  const result = { deliveries: structuredClone(deliveries), messages, nacks: [ ...nacks ], retry_policy: retryPolicy,
    reached_expect_s: reached };
  result.shutdown = await shutdownWithin(consumer, shutdownMs);
  emit(result);
});
