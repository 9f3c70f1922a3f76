"""Lua scripts for the chat layer's atomic Redis steps (sources only)."""

from __future__ import annotations

RESERVE_POST = """
-- KEYS: client key, recent key, room seq key, unstored key, inflight key
-- ARGV: pending value, pending ttl ms, id (19 digits), event, recent limit, recent ttl s,
--       track unstored ('1'/'0')
-- Returns {1, ordinal, unstored count}, {0, existing client key value}, or {2, newest id}
-- when the room already has an id >= this one (another node's clock is ahead): ids rise
-- with the room ordinal, so the caller follows that id and reserves again with a new one.
local existing = redis.call('GET', KEYS[1])
if existing then return {0, existing} end
local newest = redis.call('ZRANGE', KEYS[2], -1, -1)
if #newest > 0 then
  local top = string.sub(newest[1], 1, 19)
  if top >= ARGV[3] then return {2, top} end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
local ordinal = redis.call('INCR', KEYS[3])
redis.call('ZADD', KEYS[2], 0, ARGV[3] .. ':' .. ordinal .. ':' .. ARGV[4])
local stop = -(tonumber(ARGV[5]) + 1)
local unstored = 0
if ARGV[7] == '1' then
  -- What leaves the cache must be found in the store before history below the cache is
  -- served (see gateway/chat/unstored.py); until confirmed, the post may never be published.
  redis.call('HSET', KEYS[5], ARGV[3], KEYS[1])
  redis.call('EXPIRE', KEYS[5], ARGV[6])
  for _, member in ipairs(redis.call('ZRANGE', KEYS[2], 0, stop)) do
    redis.call('ZADD', KEYS[4], 0, string.sub(member, 1, 19))
  end
  redis.call('EXPIRE', KEYS[4], ARGV[6])
  unstored = redis.call('ZCARD', KEYS[4])
end
redis.call('ZREMRANGEBYRANK', KEYS[2], 0, stop)
redis.call('EXPIRE', KEYS[2], ARGV[6])
return {1, ordinal, unstored}
"""

ABORT_POST = """
-- KEYS: client key, recent key, unstored key, inflight key
-- ARGV: pending value, cache member, id (19 digits)
-- A retry that took the post over (and confirmed it: the key holds the bare id) published
-- this very message: it stays in the cache (and in the unstored set if trimmed). Otherwise
-- the message was never published: out of the cache, and nothing for the store to catch up.
local current = redis.call('GET', KEYS[1])
if current == ARGV[1] then redis.call('DEL', KEYS[1]) end
if current == ARGV[1] or not current then
  redis.call('ZREM', KEYS[2], ARGV[2])
  redis.call('ZREM', KEYS[3], ARGV[3])
  redis.call('HDEL', KEYS[4], ARGV[3])
end
return 1
"""

TAKEOVER_CONFIRM = """
-- KEYS: client key, recent key, unstored key, inflight key
-- ARGV: pending value, done value, ttl s, cache member ('' if none), id (19 digits),
--       recent ttl s, track unstored ('1'/'0')
-- A retry republished a post whose first attempt never confirmed: mark it done unless
-- something else owns the key now, and put the message back in the cache if the first
-- attempt's abort took it out (only if it still belongs among the newest: the cache must
-- stay a suffix of the room's messages). Published now: if the cache does not hold it, the
-- store must have it before history below the cache is served.
redis.call('HDEL', KEYS[4], ARGV[5])
local result = 0
local current = redis.call('GET', KEYS[1])
if not current or current == ARGV[1] then
  result = 1
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
  if ARGV[4] ~= '' then
    local oldest = redis.call('ZRANGE', KEYS[2], 0, 0)
    if #oldest == 0 or string.sub(oldest[1], 1, 19) < ARGV[5] then
      redis.call('ZADD', KEYS[2], 0, ARGV[4])
    end
  end
end
if ARGV[7] == '1' then
  local cached = redis.call(
    'ZRANGEBYLEX', KEYS[2], '[' .. ARGV[5] .. ':', '(' .. ARGV[5] .. ';', 'LIMIT', 0, 1)
  if #cached == 0 then
    redis.call('ZADD', KEYS[3], 0, ARGV[5])
    redis.call('EXPIRE', KEYS[3], ARGV[6])
  end
end
return result
"""

CONFIRM_POST = """
-- KEYS: client key, inflight key.  ARGV: pending value, done value, ttl s, id (19 digits)
redis.call('HDEL', KEYS[2], ARGV[4])
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
  return 1
end
return 0
"""

RESOLVE_UNSTORED = """
-- KEYS: unstored key, inflight key.  ARGV: ids (19 digits) the store did not return.
-- Returns those to wait for. An id whose post was never confirmed and can no longer be (its
-- pending reservation expired or was replaced) is dead: it leaves the set and is not
-- returned. An id gone from the set already is returned: it may have been found stored by a
-- read later than the caller's (the caller retries; the next read does not see it).
local outstanding = {}
for _, id in ipairs(ARGV) do
  local dead = false
  if redis.call('ZSCORE', KEYS[1], id) then
    local client_key = redis.call('HGET', KEYS[2], id)
    if client_key then
      local bare = string.match(id, '^0*(%d+)$')
      local current = redis.call('GET', client_key)
      dead = current ~= 'p' .. bare and current ~= bare
    end
  end
  if dead then
    redis.call('ZREM', KEYS[1], id)
    redis.call('HDEL', KEYS[2], id)
  else
    table.insert(outstanding, id)
  end
end
return outstanding
"""

MARK_READ = """
-- KEYS: read key, recent key, room seq key.  ARGV: id (19 digits), id (decimal)
-- Returns {moved (0/1), pointer id, pointer ordinal, room seq}.
local room_seq = tonumber(redis.call('GET', KEYS[3]) or '0')
local current = redis.call('HGET', KEYS[1], 'id')
if current and string.rep('0', 19 - #current) .. current >= ARGV[1] then
  return {0, current, redis.call('HGET', KEYS[1], 'seq') or '0', room_seq}
end
local ordinal
local below = redis.call('ZREVRANGEBYLEX', KEYS[2], '(' .. ARGV[1] .. ';', '-', 'LIMIT', 0, 1)
if #below > 0 then
  ordinal = tonumber(string.match(below[1], '^%d+:(%d+):'))
else
  local oldest = redis.call('ZRANGE', KEYS[2], 0, 0)
  if #oldest > 0 then
    ordinal = tonumber(string.match(oldest[1], '^%d+:(%d+):')) - 1
  else
    ordinal = room_seq
  end
end
if ordinal > room_seq then ordinal = room_seq end
if ordinal < 0 then ordinal = 0 end
redis.call('HSET', KEYS[1], 'id', ARGV[2], 'seq', ordinal)
return {1, ARGV[2], ordinal, room_seq}
"""
