"""Lua for the Redis store's message query indexes (storage/query_contract.py), shared by the queue
scripts of :mod:`storage.redis.scripts`: ``put`` indexes every message it appends, in the same
script, and retention unindexes what it removes. Per queue Q (same hash slot)::

    Q xi   zset   "<message id>\\0<offset, 20 digits>", all scores 0
    Q xk   zset   "<key>\\0<offset, 20 digits>", all scores 0: read backwards by lex range
    Q xt   zset   "<tag>\\0<offset, 20 digits>"

Keys come from the entry's properties (``\\u0000keys`` in its JSON, NUL-separated); an entry with
neither a tag nor keys is not decoded.
"""

from __future__ import annotations

INDEX_LUA = r"""
local function index_parts(rest, body)
  local id = string.match(body, '^([^\n]*)\n')
  local tag, keys = nil, {}
  if string.sub(rest, 1, 5) ~= '[null' or string.find(rest, '\\u0000keys', 1, true) then
    local t = cjson.decode(rest)
    if t[1] ~= cjson.null then tag = t[1] end
    local props = t[3]
    local raw = nil
    if type(props) == 'table' then raw = props['\0keys'] end
    if type(raw) == 'string' then
      for k in string.gmatch(raw, '[^%z]+') do keys[#keys + 1] = k end
    end
  end
  return id, tag, keys
end
local function lex(value, off) return value .. '\0' .. string.format('%020d', off) end
local function index_put(off, rest, body)
  local id, tag, keys = index_parts(rest, body)
  redis.call('ZADD', P .. 'xi', 0, lex(id, off))
  if tag then redis.call('ZADD', P .. 'xt', 0, lex(tag, off)) end
  for _, k in ipairs(keys) do redis.call('ZADD', P .. 'xk', 0, lex(k, off)) end
end
local function index_drop(off, entry, body)
  local id, tag, keys = index_parts(string.match(entry, '^%d+|[^|]*|(.*)$'), body)
  redis.call('ZREM', P .. 'xi', lex(id, off))
  if tag then redis.call('ZREM', P .. 'xt', lex(tag, off)) end
  for _, k in ipairs(keys) do redis.call('ZREM', P .. 'xk', lex(k, off)) end
end
"""

INDEX_KEYS = ("xi", "xk", "xt")
"""Key suffixes of a queue's indexes (dropped with the queue)."""

QUERY = r"""
-- ARGV: kind (i id, k key, t tag, s store time), value, limit, since, until (-1: unbounded)
-- per message, newest first: offset, entry, body
local P = string.sub(KEYS[1], 1, -5)
local kind, value, limit = ARGV[1], ARGV[2], tonumber(ARGV[3])
local offsets = {}
if kind == 'i' or kind == 'k' or kind == 't' then
  local members = redis.call('ZREVRANGEBYLEX', P .. 'x' .. kind, '(' .. value .. '\1', '(' .. value .. '\0',
                             'LIMIT', 0, limit)
  for _, m in ipairs(members) do offsets[#offsets + 1] = tonumber(string.sub(m, #value + 2)) end
else
  local m = redis.call('HMGET', KEYS[1], 'base', 'end')
  local base, e = tonumber(m[1]) or 0, tonumber(m[2]) or 0
  local function at(ms)
    local lo, hi = base, e
    while lo < hi do
      local mid = math.floor((lo + hi) / 2)
      local entry = redis.call('HGET', P .. 'e', mid)
      if entry and tonumber(string.match(entry, '^(%d+)|')) < ms then lo = mid + 1 else hi = mid end
    end
    return lo
  end
  local lo, hi = base, e
  if tonumber(ARGV[4]) >= 0 then lo = at(tonumber(ARGV[4])) end
  if tonumber(ARGV[5]) >= 0 then hi = at(tonumber(ARGV[5])) end
  local off = hi - 1
  while off >= lo and #offsets < limit do
    offsets[#offsets + 1] = off
    off = off - 1
  end
end
local out = {}
for _, off in ipairs(offsets) do
  local entry = redis.call('HGET', P .. 'e', off)
  local body = redis.call('HGET', P .. 'b', off)
  if entry and body then
    out[#out + 1] = off; out[#out + 1] = entry; out[#out + 1] = body
  end
end
return out
"""

CONSUME_STATE = r"""
-- ARGV: gid, offset, from_beginning, created_ms: what, attempts
-- what: f in flight, r waiting redelivery, h held back (FIFO), n not consumed, o addressed to another group, c done
local gid, off = ARGV[1], tonumber(ARGV[2])
local rec = redis.call('HGET', P .. 'f:' .. gid, off)
if rec then
  local v, a, g, d, x = parse_inflight(rec)
  if not x then return {'f', a} end
end
local pending = redis.call('HGET', P .. 'r:' .. gid, off) or redis.call('HGET', P .. 'w:' .. gid, off)
if pending then
  if tonumber(pending) > 0 then return {'r', tonumber(pending)} end
  return {'h', 0}
end
local entry = redis.call('HGET', P .. 'e', off)
if entry then
  local og = only_group(entry)
  if og ~= '' and og ~= gid then return {'o', 0} end
end
local nxt = progress(gid, ARGV[3], ARGV[4], false)
if off >= nxt then return {'n', 0} end
return {'c', 0}
"""

RETRY_VIEW = r"""
-- ARGV: gid, limit, scan limit: per message waiting redelivery, in offset order: offset, attempts, entry, body
local P = string.sub(KEYS[1], 1, -5)
local gid, limit, scan = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local waiting = {}
for _, key in ipairs({P .. 'r:' .. gid, P .. 'w:' .. gid}) do
  local cursor, seen = '0', 0
  repeat
    local page = redis.call('HSCAN', key, cursor, 'COUNT', 256)
    cursor = page[1]
    for i = 1, #page[2], 2 do
      seen = seen + 1
      if tonumber(page[2][i + 1]) > 0 then waiting[#waiting + 1] = {tonumber(page[2][i]), page[2][i + 1]} end
    end
  until cursor == '0' or seen >= scan
end
table.sort(waiting, function(a, b) return a[1] < b[1] end)
local out = {}
for _, w in ipairs(waiting) do
  if #out >= 4 * limit then break end
  local entry = redis.call('HGET', P .. 'e', w[1])
  local body = redis.call('HGET', P .. 'b', w[1])
  if entry and body then
    out[#out + 1] = w[1]; out[#out + 1] = w[2]; out[#out + 1] = entry; out[#out + 1] = body
  end
end
return out
"""

TRACE_ADD = r"""
-- ARGV: offset, record, ...: append each record to its message's trace (messages gone: skipped)
local P = string.sub(KEYS[1], 1, -5)
for i = 1, #ARGV, 2 do
  if redis.call('HEXISTS', P .. 'e', ARGV[i]) == 1 then
    local old = redis.call('HGET', P .. 'tr', ARGV[i]) or ''
    redis.call('HSET', P .. 'tr', ARGV[i], old .. struct.pack('>I4', #ARGV[i + 1]) .. ARGV[i + 1])
  end
end
return {'OK'}
"""
