'use strict';
// lite_flow.js ADDRESS TOPIC GROUP STEP... [--max-wait S]
//
// Lite topics (RocketMQ 5.5) with the real Node.js client: a Producer sends LITE messages (liteTopic) and a
// LitePushConsumer bound to TOPIC changes its lite subscriptions while messages flow. Steps, in order:
//   sub:NAME  subscribeLite(NAME)      unsub:NAME  unsubscribeLite(NAME)
//   send:NAME:N  send N messages to lite topic NAME (bodies NAME-<i>, counted per lite topic)
//   recv:N    wait until N more messages were consumed      quiet:S  wait S seconds, expecting nothing
// Prints {steps: [{step, errors, received: [{body, lite_topic, topic}]}]}.

const { rocketmq, parseArgs, baseOptions, describeError, emit, shutdownWithin, sleep, run } = require('./_common');

run(async () => {
  const { positional: [ address, topic, group, ...steps ], options } = parseArgs(process.argv.slice(2));
  const maxWaitMs = Number(options['max-wait'] ?? 40) * 1000;
  const consumed = [];
  const producer = new rocketmq.Producer({ ...baseOptions(address), topics: [ topic ] });
  await producer.startup();
  const consumer = new rocketmq.LitePushConsumerImpl({
    ...baseOptions(address),
    consumerGroup: group,
    bindTopic: topic,
    messageListener: {
      consume(message) {
        consumed.push({ body: Buffer.from(message.body).toString(), lite_topic: message.liteTopic ?? null,
          topic: message.topic });
        return rocketmq.ConsumeResult.SUCCESS;
      },
    },
  });
  await consumer.startup();
  await sleep(2000); // the lite subscription quota arrives with the server's settings, after startup
  const counts = {};
  const records = [];
  for (const step of steps) {
    const [ kind, ...rest ] = step.split(':');
    const record = { step, errors: [], received: [] };
    records.push(record);
    try {
      if (kind === 'sub') {
        await consumer.subscribeLite(rest[0]);
      } else if (kind === 'unsub') {
        await consumer.unsubscribeLite(rest[0]);
      } else if (kind === 'send') {
        const [ name, count ] = rest;
        for (let i = 0; i < Number(count); i++) {
          const index = counts[name] ?? 0;
          counts[name] = index + 1;
          try {
            await producer.send({ topic, liteTopic: name, body: Buffer.from(`${name}-${index}`) });
          } catch (err) {
            record.errors.push(describeError(err));
          }
        }
      } else if (kind === 'recv' || kind === 'quiet') {
        const want = kind === 'recv' ? Number(rest[0]) : 0;
        const deadline = Date.now() + (kind === 'recv' ? maxWaitMs : Number(rest[0]) * 1000);
        while (Date.now() < deadline && (kind === 'quiet' || record.received.length < want)) {
          await sleep(200);
          record.received.push(...consumed.splice(0));
        }
      }
    } catch (err) {
      record.errors.push(describeError(err));
    }
  }
  await shutdownWithin(consumer, 40000);
  await producer.shutdown();
  emit({ steps: records });
});
