"""The server-side scripts: one Lua script per change of a queue, run atomically by the node that
holds the queue's hash slot (key layout: :mod:`storage.redis.layout`).

Every queue script gets the queue's meta key as KEYS[1] and derives its other keys from it (they
share its hash tag, hence its node). A queue whose meta key is missing is an empty queue: it is
made on first write, so creating a topic writes only the catalog. Scripts answer with a table whose
first item says what happened (``OK`` or the name of the refusal), so no reply is an exception.

The local functions the queue scripts share are in :mod:`storage.redis.prelude_lua`, the
consumption scripts in :mod:`storage.redis.consume_lua`; every script is importable from here.
"""

from __future__ import annotations

from storage.redis.consume_lua import ACK as ACK
from storage.redis.consume_lua import CHANGE_INVISIBILITY as CHANGE_INVISIBILITY
from storage.redis.consume_lua import FINISH_DEAD_LETTER as FINISH_DEAD_LETTER
from storage.redis.consume_lua import PEEK as PEEK
from storage.redis.consume_lua import POP as POP
from storage.redis.consume_lua import REVIVE as REVIVE
from storage.redis.consume_lua import TAKE_FOR_DEAD_LETTER as TAKE_FOR_DEAD_LETTER
from storage.redis.prelude_lua import PRELUDE
from storage.redis.query_lua import CONSUME_STATE as _CONSUME_STATE

_PRELUDE = PRELUDE

APPEND = _PRELUDE + r"""
if not alive() then return {'noqueue'} end
-- ARGV: now, then per message: kind (s stored, t timer, h half), due, only group, entry, body
local now = tonumber(ARGV[1])
local out = {'OK'}
local i = 2
while i <= #ARGV do
  local kind, due, og, rest, body = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
  i = i + 5
  if kind == 's' then
    out[#out + 1] = put(now, og, rest, body)
  else
    local hid = redis.call('HINCRBY', KEYS[1], 'hid', 1)
    redis.call('HSET', P .. 'hd', hid, now .. '|' .. #rest .. '|' .. rest .. body)
    if kind == 't' then
      redis.call('ZADD', P .. 'tm', due, hid)
    else
      redis.call('ZADD', P .. 'hx', due, hid)
      redis.call('HSET', P .. 'hc', hid, 0)
    end
    out[#out + 1] = hid
  end
end
return out
"""

READ = r"""
-- ARGV: offsets; per offset its entry and body (false when gone)
local P = string.sub(KEYS[1], 1, -5)
local out = {}
for i = 1, #ARGV do
  out[#out + 1] = redis.call('HGET', P .. 'e', ARGV[i]) or ''
  out[#out + 1] = redis.call('HGET', P .. 'b', ARGV[i]) or ''
end
return out
"""

FIRE = _PRELUDE + r"""
if not alive() then return {'noqueue'} end
-- ARGV: now, limit, kind (tm timers / hx half messages to commit), held id (hx only), commit
-- timers: append the due ones; half messages: end one transaction
local now = tonumber(ARGV[1])
local out = {'OK'}
local function release(hid, append)
  local raw = redis.call('HGET', P .. 'hd', hid)
  redis.call('HDEL', P .. 'hd', hid)
  redis.call('HDEL', P .. 'hc', hid)
  local _, n, rest = string.match(raw, '^(%d+)|(%d+)|(.*)$')
  n = tonumber(n)
  local body = string.sub(rest, n + 1)
  local offset = -1
  if append then offset = put(now, '', string.sub(rest, 1, n), body) end
  return offset, string.match(body, '^([^\n]*)')
end
if ARGV[3] == 'tm' then
  local due = redis.call('ZRANGEBYSCORE', P .. 'tm', '-inf', now, 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[2]))
  for i = 1, #due, 2 do
    redis.call('ZREM', P .. 'tm', due[i])
    local offset, mid = release(due[i], true)
    out[#out + 1] = offset; out[#out + 1] = mid; out[#out + 1] = due[i + 1]
  end
  return out
end
if not redis.call('ZSCORE', P .. 'hx', ARGV[4]) then return {'missing'} end
redis.call('ZREM', P .. 'hx', ARGV[4])
local offset, mid = release(ARGV[4], ARGV[5] == '1')
return {'OK', offset, mid}
"""

RECALL = r"""
-- ARGV: held id, due: cancel a timer not yet fired; its message id
local P = string.sub(KEYS[1], 1, -5)
local due = redis.call('ZSCORE', P .. 'tm', ARGV[1])
if not due or tonumber(due) ~= tonumber(ARGV[2]) then return {'missing'} end
local raw = redis.call('HGET', P .. 'hd', ARGV[1])
redis.call('ZREM', P .. 'tm', ARGV[1])
redis.call('HDEL', P .. 'hd', ARGV[1])
local _, n, rest = string.match(raw, '^(%d+)|(%d+)|(.*)$')
return {'OK', string.match(string.sub(rest, tonumber(n) + 1), '^([^\n]*)')}
"""

RESCHEDULE_CHECK = r"""
-- ARGV: held id, next check, checks
local P = string.sub(KEYS[1], 1, -5)
if not redis.call('ZSCORE', P .. 'hx', ARGV[1]) then return {'missing'} end
redis.call('ZADD', P .. 'hx', ARGV[2], ARGV[1])
redis.call('HSET', P .. 'hc', ARGV[1], ARGV[3])
return {'OK'}
"""

RESET = _PRELUDE + r"""
if not alive() then return {'noqueue'} end
-- ARGV: gid, from_beginning, created_ms, to (earliest / latest / epoch ms)
local gid = ARGV[1]
progress(gid, ARGV[2], ARGV[3], true)
local base, e = meta()
local to = ARGV[4]
local nxt = e
if to == 'earliest' then nxt = base elseif to ~= 'latest' then nxt = offset_at(base, e, tonumber(to)) end
redis.call('HSET', P .. 'p:' .. gid, 'next', nxt)
redis.call('DEL', P .. 'r:' .. gid, P .. 'w:' .. gid)
local f = redis.call('HGETALL', P .. 'f:' .. gid)
for i = 1, #f, 2 do
  local v, a, g, d = parse_inflight(f[i + 1])
  put_inflight(gid, f[i], v, a, g, d, true)
end
return {'OK'}
"""

DELETE_EXPIRED = _PRELUDE + r"""
-- ARGV: cutoff: drop messages stored before it; how many
local base, e = meta()
local upto = offset_at(base, e, tonumber(ARGV[1]))
for off = base, upto - 1 do
  local entry, body = redis.call('HGET', P .. 'e', off), redis.call('HGET', P .. 'b', off)
  if entry and body then index_drop(off, entry, body) end
  redis.call('HDEL', P .. 'tr', off)
  redis.call('HDEL', P .. 'e', off)
  redis.call('HDEL', P .. 'b', off)
end
if upto > base then redis.call('HSET', KEYS[1], 'base', upto) end
return {'OK', upto - base}
"""

PROGRESS = _PRELUDE + r"""
-- ARGV: gid, from_beginning, created_ms: base, end, committed, next, inflight, retry_ready,
-- retrying, dead_lettered, oldest ready ms (-1: none), oldest inflight ms (-1), waiting, known (1/0)
local gid = ARGV[1]
local known = redis.call('EXISTS', P .. 'p:' .. gid)
local raw_next = progress(gid, ARGV[2], ARGV[3], false)
local base, e = meta()
local nxt = math.max(raw_next, base)
local committed = raw_next
local inflight, retrying, oldest_inflight = 0, 0, -1
local f = redis.call('HGETALL', P .. 'f:' .. gid)
for i = 1, #f, 2 do
  local v, a, g, d, dropped = parse_inflight(f[i + 1])
  if not dropped then
    inflight = inflight + 1
    committed = math.min(committed, tonumber(f[i]))
    if a > 1 then retrying = retrying + 1 end
    if oldest_inflight < 0 or d < oldest_inflight then oldest_inflight = d end
  end
end
local pending, retry_ready, oldest_ready = 0, 0, -1
for _, key in ipairs({P .. 'r:' .. gid, P .. 'w:' .. gid}) do
  local r = redis.call('HGETALL', key)
  for i = 1, #r, 2 do
    pending = pending + 1
    committed = math.min(committed, tonumber(r[i]))
    if tonumber(r[i + 1]) > 0 then retry_ready = retry_ready + 1 end
    local entry = redis.call('HGET', P .. 'e', r[i])
    if entry then
      local t = store_ms(entry)
      if oldest_ready < 0 or t < oldest_ready then oldest_ready = t end
    end
  end
end
if nxt < e then
  local t = store_ms(redis.call('HGET', P .. 'e', nxt))
  if oldest_ready < 0 or t < oldest_ready then oldest_ready = t end
end
local dl = num(redis.call('HGET', P .. 'p:' .. gid, 'dl'))
return {'OK', base, e, math.max(committed, base), nxt, inflight, retry_ready, retry_ready + retrying, dl,
        oldest_ready, oldest_inflight, pending - retry_ready, known}
"""

DROP_GROUP = r"""
-- ARGV: gid: forget the group's progress in this queue
local P = string.sub(KEYS[1], 1, -5)
local gid = ARGV[1]
local f = redis.call('HKEYS', P .. 'f:' .. gid)
for _, off in ipairs(f) do redis.call('ZREM', P .. 'inv', gid .. ':' .. off) end
redis.call('DEL', P .. 'p:' .. gid, P .. 'f:' .. gid, P .. 'r:' .. gid, P .. 'w:' .. gid)
redis.call('SREM', P .. 'grp', gid)
return {'OK'}
"""

MAKE_QUEUES = r"""
redis.call('HSET', KEYS[1], 'base', 0, 'end', 0, 'last', 0, 'gen', 0, 'hid', 0)
return {'OK'}
"""

DROP_QUEUE = r"""
-- drop every key of the queue
local P = string.sub(KEYS[1], 1, -5)
for _, gid in ipairs(redis.call('SMEMBERS', P .. 'grp')) do
  redis.call('DEL', P .. 'p:' .. gid, P .. 'f:' .. gid, P .. 'r:' .. gid, P .. 'w:' .. gid)
end
redis.call('DEL', KEYS[1], P .. 'e', P .. 'b', P .. 'grp', P .. 'inv', P .. 'tm', P .. 'hx', P .. 'hd', P .. 'hc')
redis.call('DEL', P .. 'xi', P .. 'xk', P .. 'xt', P .. 'tr')
return {'OK'}
"""

CREATE = r"""
-- KEYS: catalog, seq. ARGV: kind (t / g), name, config JSON without its id: the new id
if redis.call('HEXISTS', KEYS[1], ARGV[1] .. ':' .. ARGV[2]) == 1 then return {'exists'} end
local id = redis.call('HINCRBY', KEYS[2], ARGV[1], 1)
local config = cjson.decode(ARGV[3])
config['id'] = id
redis.call('HSET', KEYS[1], ARGV[1] .. ':' .. ARGV[2], cjson.encode(config))
return {'OK', id}
"""

REPLACE = r"""
-- KEYS: catalog. ARGV: field, config JSON, new (1: only if absent, 0: only if present)
local present = redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1
if ARGV[3] == '1' and present then return {'exists'} end
if ARGV[3] == '0' and not present then return {'missing'} end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return {'OK'}
"""

ACQUIRE_LEASE = r"""
-- KEYS: lease. ARGV: holder, ttl ms, now ms: take it if free or run out, extend it if ours. The
-- value is "<until ms>|<holder>"; the key's own TTL only clears leases nobody renews any more.
local now = tonumber(ARGV[3])
local value = redis.call('GET', KEYS[1])
if value then
  local until_ms, holder = string.match(value, '^(%d+)|(.*)$')
  if holder ~= ARGV[1] and tonumber(until_ms) > now then return 0 end
end
redis.call('SET', KEYS[1], (now + tonumber(ARGV[2])) .. '|' .. ARGV[1], 'PX', tonumber(ARGV[2]) + 60000)
return 1
"""

RELEASE_LEASE = r"""
local value = redis.call('GET', KEYS[1])
if value and string.match(value, '^%d+|(.*)$') == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
"""

CONSUME_STATE = _PRELUDE + _CONSUME_STATE
