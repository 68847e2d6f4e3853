"""The Lua prelude of the Redis Cluster store's queue scripts: the local functions they share.

Every queue script that starts with it gets the queue's meta key as KEYS[1]; ``P`` is the prefix
of the queue's other keys (see :mod:`storage.redis.scripts`).
"""

from __future__ import annotations

from storage.redis.query_lua import INDEX_LUA

PRELUDE = r"""
local P = string.sub(KEYS[1], 1, -5)
local function num(x) return tonumber(x) or 0 end
local function meta()
  local m = redis.call('HMGET', KEYS[1], 'base', 'end', 'last', 'gen', 'hid')
  return num(m[1]), num(m[2]), num(m[3]), num(m[4]), num(m[5])
end
local function store_ms(entry) return tonumber(string.match(entry, '^(%d+)|')) end
local function only_group(entry) return string.match(entry, '^%d+|([^|]*)|') end
local function tag_and_group(entry)
  local rest = string.match(entry, '^%d+|[^|]*|(.*)$')
  local t = cjson.decode(rest)
  local tag, grp = t[1], t[2]
  if tag == cjson.null then tag = nil end
  if grp == cjson.null then grp = nil end
  return tag, grp
end
local function offset_at(base, e, ms)
  local lo, hi = base, e
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    local entry = redis.call('HGET', P .. 'e', mid)
    if entry and store_ms(entry) < ms then lo = mid + 1 else hi = mid end
  end
  return lo
end
-- the group's progress hash, made on first use (start: the queue's first message, or the first
-- stored at or after the group's creation)
local function progress(gid, from_beginning, created_ms, create)
  local key = P .. 'p:' .. gid
  local nxt = redis.call('HGET', key, 'next')
  if nxt then return tonumber(nxt) end
  local base, e = meta()
  local start = base
  if from_beginning ~= '1' then start = offset_at(base, e, tonumber(created_ms)) end
  if create then
    redis.call('HSET', key, 'next', start, 'dl', 0)
    redis.call('SADD', P .. 'grp', gid)
  end
  return start
end
local function parse_inflight(rec)
  local v, a, g, d, x = string.match(rec, '^(%d+)|(%d+)|(%d+)|(%d+)|(%d)$')
  return tonumber(v), tonumber(a), tonumber(g), tonumber(d), x == '1'
end
local function put_inflight(gid, off, v, a, g, d, x)
  redis.call('HSET', P .. 'f:' .. gid, off, v .. '|' .. a .. '|' .. g .. '|' .. d .. '|' .. (x and '1' or '0'))
  redis.call('ZADD', P .. 'inv', v, gid .. ':' .. off)
end
""" + INDEX_LUA + r"""
-- append one message to the queue (and index it): its offset
local function put(now, og, rest, body)
  local base, e, last = meta()
  local t = math.max(now, last)
  redis.call('HSET', P .. 'e', e, t .. '|' .. og .. '|' .. rest)
  redis.call('HSET', P .. 'b', e, body)
  index_put(e, rest, body)
  redis.call('HSET', KEYS[1], 'base', base, 'end', e + 1, 'last', t)
  return e
end
-- check a receipt: the in-flight record, or a refusal
local function check(gid, off, gen, now)
  local rec = redis.call('HGET', P .. 'f:' .. gid, off)
  if not rec then return nil, 'unknown' end
  local v, a, g, d, x = parse_inflight(rec)
  if g ~= tonumber(gen) then return nil, 'superseded' end
  if v <= tonumber(now) then return nil, 'expired' end
  return {v, a, g, d, x}
end
local function alive() return redis.call('EXISTS', KEYS[1]) == 1 end
local function drop_inflight(gid, off)
  redis.call('HDEL', P .. 'f:' .. gid, off)
  redis.call('ZREM', P .. 'inv', gid .. ':' .. off)
end
"""
