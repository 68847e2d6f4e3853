"""The Redis Cluster store's consumption scripts: pop, peek, ack, change of invisibility, dead
letters, revival (part of :mod:`storage.redis.scripts`, which re-exports them).
"""

from __future__ import annotations

from storage.redis.prelude_lua import PRELUDE as _PRELUDE

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
