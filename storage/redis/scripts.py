"""The server-side scripts: one Lua script per change of a queue, run atomically by the node that
holds the queue's hash slot (key layout: :mod:`storage.redis.layout`).

Every queue script gets the queue's meta key as KEYS[1] and derives its other keys from it (they
share its hash tag, hence its node). A queue whose meta key is missing is an empty queue: it is
made on first write, so creating a topic writes only the catalog. Scripts answer with a table whose
first item says what happened (``OK`` or the name of the refusal), so no reply is an exception.
"""

from __future__ import annotations

from storage.redis.query_lua import CONSUME_STATE as _CONSUME_STATE
from storage.redis.query_lua import INDEX_LUA

_PRELUDE = r"""
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

POP = _PRELUDE + r"""
if not alive() then return {'noqueue'} end
-- ARGV: gid, from_beginning, created_ms, now, visible_at, max, fifo, scan_limit (-1: none),
--       filter kind (n none, t tags, d decisions), then tags, or start offset and a string of 0/1
local gid, fb, created, now, vis = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
local max, fifo, scan_limit, fkind = tonumber(ARGV[6]), ARGV[7] == '1', tonumber(ARGV[8]), ARGV[9]
local tags, dstart, dstr = {}, 0, ''
if fkind == 't' then for i = 10, #ARGV do tags[ARGV[i]] = true end end
if fkind == 'd' then dstart, dstr = tonumber(ARGV[10]), ARGV[11] end
local nxt = progress(gid, fb, created, true)
local base, e, last, gen = meta()
local out, count, more = {}, 0, 0
local function deliver(off, attempt, entry)
  gen = gen + 1
  put_inflight(gid, off, vis, attempt, gen, now, false)
  out[#out + 1] = off; out[#out + 1] = attempt; out[#out + 1] = gen
  out[#out + 1] = entry; out[#out + 1] = redis.call('HGET', P .. 'b', off)
  count = count + 1
end
local busy = {}
if fifo then
  local f = redis.call('HGETALL', P .. 'f:' .. gid)
  for i = 1, #f, 2 do
    local _, _, _, _, dropped = parse_inflight(f[i + 1])
    local entry = redis.call('HGET', P .. 'e', f[i])
    if not dropped and entry then
      local _, grp = tag_and_group(entry)
      if grp then busy[grp] = true end
    end
  end
end
-- a group that switched between FIFO and not keeps what it had pending, in order
local pkey, okey = P .. 'r:' .. gid, P .. 'w:' .. gid
if fifo then pkey, okey = okey, pkey end
local moved = redis.call('HGETALL', okey)
for i = 1, #moved, 2 do redis.call('HSET', pkey, moved[i], moved[i + 1]) end
redis.call('DEL', okey)
local pend = redis.call('HGETALL', pkey)
local offs = {}
for i = 1, #pend, 2 do offs[#offs + 1] = tonumber(pend[i]) end
table.sort(offs)
for _, off in ipairs(offs) do
  if count >= max then break end
  local entry = redis.call('HGET', P .. 'e', off)
  local held = false
  if entry and fifo then
    local _, grp = tag_and_group(entry)
    held = grp and busy[grp]
  end
  if not held then
    local attempts = tonumber(redis.call('HGET', pkey, off))
    redis.call('HDEL', pkey, off)
    if entry then deliver(off, attempts + 1, entry) end
  end
end
local examined = 0
while count < max and nxt < e do
  if scan_limit >= 0 and examined >= scan_limit then more = 1; break end
  local off = math.max(nxt, base)
  local decision = nil
  if fkind == 'd' then
    if off < dstart or off >= dstart + #dstr then more = 1; break end
    decision = string.sub(dstr, off - dstart + 1, off - dstart + 1) == '1'
  end
  examined = examined + 1
  nxt = off + 1
  local entry = redis.call('HGET', P .. 'e', off)
  local og = only_group(entry)
  if og == '' or og == gid then
    local ok, tag, grp = true, nil, nil
    if fifo or fkind == 't' then tag, grp = tag_and_group(entry) end
    if fkind == 't' then ok = tag ~= nil and tags[tag] == true end
    if fkind == 'd' then ok = decision end
    if ok then
      if fifo and grp and busy[grp] then
        redis.call('HSET', P .. 'w:' .. gid, off, 0)
      else
        deliver(off, 1, entry)
      end
    end
  end
end
redis.call('HSET', P .. 'p:' .. gid, 'next', nxt)
redis.call('HSET', KEYS[1], 'gen', gen)
table.insert(out, 1, more)
table.insert(out, 1, 'OK')
return out
"""

PEEK = _PRELUDE + r"""
-- ARGV: gid, from_beginning, created_ms, count: where the group's scan of new messages starts and
-- the entries from there (for a filter the caller evaluates)
local nxt = progress(ARGV[1], ARGV[2], ARGV[3], false)
local base, e = meta()
local start = math.max(nxt, base)
local out = {start}
for off = start, math.min(e, start + tonumber(ARGV[4])) - 1 do
  out[#out + 1] = redis.call('HGET', P .. 'e', off) or ''
end
return out
"""

ACK = _PRELUDE + r"""
-- ARGV: gid, offset, generation, now
local rec, why = check(ARGV[1], ARGV[2], ARGV[3], ARGV[4])
if not rec then return {why} end
drop_inflight(ARGV[1], ARGV[2])
return {'OK'}
"""

CHANGE_INVISIBILITY = _PRELUDE + r"""
-- ARGV: gid, offset, generation, now, visible_at, renew, suspend (the attempt does not count)
local rec, why = check(ARGV[1], ARGV[2], ARGV[3], ARGV[4])
if not rec then return {why} end
local g = rec[3]
if ARGV[6] ~= '1' then g = redis.call('HINCRBY', KEYS[1], 'gen', 1) end
local attempt = rec[2]
if ARGV[7] == '1' then attempt = math.max(attempt - 1, 0) end
put_inflight(ARGV[1], ARGV[2], tonumber(ARGV[5]), attempt, g, rec[4], rec[5])
return {'OK', g}
"""

TAKE_FOR_DEAD_LETTER = _PRELUDE + r"""
-- ARGV: gid, offset, generation, now: a valid delivery's attempt, entry and body (nothing changes)
local rec, why = check(ARGV[1], ARGV[2], ARGV[3], ARGV[4])
if not rec then return {why} end
local entry = redis.call('HGET', P .. 'e', ARGV[2])
if not entry then
  drop_inflight(ARGV[1], ARGV[2])
  return {'gone'}
end
return {'OK', rec[2], entry, redis.call('HGET', P .. 'b', ARGV[2])}
"""

FINISH_DEAD_LETTER = _PRELUDE + r"""
-- ARGV: gid, offset, generation: the copy is in the dead-letter topic; end the delivery if it is
-- still the one copied
local rec = redis.call('HGET', P .. 'f:' .. ARGV[1], ARGV[2])
if not rec then return {'unknown'} end
local _, _, g = parse_inflight(rec)
if g ~= tonumber(ARGV[3]) then return {'superseded'} end
drop_inflight(ARGV[1], ARGV[2])
redis.call('HINCRBY', P .. 'p:' .. ARGV[1], 'dl', 1)
return {'OK'}
"""

REVIVE = _PRELUDE + r"""
-- ARGV: now, limit, then per group: gid, fifo (1/0), max attempts (-1: no limit); per delivery
-- handled: kind (r revived, d to dead-letter, g gone), gid, offset, attempt, visible_at, generation,
-- entry and body (d only)
-- expired deliveries move to retry-ready; those out of attempts are handed back for dead-lettering
local now, limit = tonumber(ARGV[1]), tonumber(ARGV[2])
local groups = {}
for i = 3, #ARGV, 3 do groups[ARGV[i]] = {ARGV[i + 1] == '1', tonumber(ARGV[i + 2])} end
local due = redis.call('ZRANGEBYSCORE', P .. 'inv', '-inf', now, 'WITHSCORES', 'LIMIT', 0, limit)
local out = {'OK'}
for i = 1, #due, 2 do
  local gid, off = string.match(due[i], '^(%d+):(%d+)$')
  local rec = redis.call('HGET', P .. 'f:' .. gid, off)
  local g = groups[gid]
  local item = nil
  if not rec or not g then
    drop_inflight(gid, off)
  else
    local v, a, gen, d, dropped = parse_inflight(rec)
    if dropped then
      drop_inflight(gid, off)
    elseif g[2] >= 0 and a >= g[2] then
      local entry = redis.call('HGET', P .. 'e', off)
      if entry then
        item = {'d', gid, off, a, v, gen, entry, redis.call('HGET', P .. 'b', off)}
      else
        drop_inflight(gid, off)
        item = {'g', gid, off, a, v, gen, '', ''}
      end
    else
      drop_inflight(gid, off)
      redis.call('HSET', P .. (g[1] and 'w:' or 'r:') .. gid, off, a)
      item = {'r', gid, off, a, v, gen, '', ''}
    end
  end
  if item then for _, x in ipairs(item) do out[#out + 1] = x end end
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
