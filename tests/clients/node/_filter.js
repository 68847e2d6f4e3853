'use strict';
// Subscription filters and client-log capture for the consumer programs (simple_consume.js, push_consume.js).
//
// The Node client's subscriptions map takes either a tag expression string or a FilterExpression; the filter
// type (TAG or SQL) is the protobuf enum, which the package's index does not export, so it comes from the
// generated proto module the package ships.

const util = require('node:util');
const { rocketmq } = require('./_common');
const { FilterType } = require('rocketmq-client-nodejs/proto/apache/rocketmq/v2/definition_pb');

/** The subscription for --tag EXPR (default '*') or --sql EXPR (a SQL92 FilterExpression). */
function subscription(options) {
  if (options.sql !== undefined && options.tag !== undefined) throw new Error('give --tag or --sql, not both');
  if (options.sql !== undefined) return new rocketmq.FilterExpression(options.sql, FilterType.SQL);
  return new rocketmq.FilterExpression(options.tag ?? '*');
}

/** The client's default logger (~/logs/rocketmq/rocketmq_client_nodejs.log), keeping a copy of what it logs at
 * warn and error level, so a program can report what the client complained of: the first line of the first
 * `limit` such entries in `lines` ({level, message}), how many there were in `total`. */
function recordingLogger(limit = 50) {
  const inner = rocketmq.getDefaultLogger();
  const lines = [];
  const logger = {
    lines,
    total: 0,
    info: (...args) => inner.info(...args),
    debug: (...args) => inner.debug(...args),
    warn: keep('warn'),
    error: keep('error'),
    close: (...args) => inner.close?.(...args),
  };
  function keep(level) {
    return (...args) => {
      logger.total++;
      if (lines.length < limit) lines.push({ level, message: util.format(...args).split('\n')[0] });
      inner[level](...args);
    };
  }
  return logger;
}

/** startup(), given up after `ms`: null when it succeeded, else {error, code} (code: the RocketMQ status code of
 * the ClientException it failed with, if any) or {error: 'timeout', code: null}. (The client waits for the
 * server's answer to its first settings without a time limit.) */
async function startupWithin(client, ms) {
  let timer;
  const timeout = new Promise(resolve => { timer = setTimeout(() => resolve({ error: 'timeout', code: null }), ms); });
  try {
    return await Promise.race([
      client.startup().then(() => null, err => ({
        error: String(err && err.message ? err.message : err),
        code: err && err.cause && err.cause.code !== undefined ? err.cause.code : null,
      })),
      timeout,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

module.exports = { FilterType, subscription, recordingLogger, startupWithin };
