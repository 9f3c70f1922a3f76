"""Lua scripts for the chat layer's atomic Redis steps (sources only)."""

from __future__ import annotations

RESERVE_POST = """
-- KEYS: client key, recent key, room seq key
-- ARGV: pending value, pending ttl ms, id (19 digits), event, recent limit, recent ttl s
local existing = redis.call('GET', KEYS[1])
if existing then return {0, existing} end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
local ordinal = redis.call('INCR', KEYS[3])
redis.call('ZADD', KEYS[2], 0, ARGV[3] .. ':' .. ordinal .. ':' .. ARGV[4])
redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -(tonumber(ARGV[5]) + 1))
redis.call('EXPIRE', KEYS[2], ARGV[6])
return {1, ordinal}
"""

ABORT_POST = """
-- KEYS: client key, recent key.  ARGV: pending value, cache member
-- A retry that took the post over (and confirmed it: the key holds the bare id) published
-- this very message: it stays in the cache.
local current = redis.call('GET', KEYS[1])
if current == ARGV[1] then redis.call('DEL', KEYS[1]) end
if current == ARGV[1] or not current then redis.call('ZREM', KEYS[2], ARGV[2]) end
return 1
"""

TAKEOVER_CONFIRM = """
-- KEYS: client key, recent key.
-- ARGV: pending value, done value, ttl s, cache member ('' if none), id (19 digits)
-- A retry republished a post whose first attempt never confirmed: mark it done unless
-- something else owns the key now, and put the message back in the cache if the first
-- attempt's abort took it out (only if it still belongs among the newest: the cache must
-- stay a suffix of the room's messages).
local current = redis.call('GET', KEYS[1])
if current and current ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
if ARGV[4] ~= '' then
  local oldest = redis.call('ZRANGE', KEYS[2], 0, 0)
  if #oldest == 0 or string.sub(oldest[1], 1, 19) < ARGV[5] then
    redis.call('ZADD', KEYS[2], 0, ARGV[4])
  end
end
return 1
"""

CONFIRM_POST = """
-- KEYS: client key.  ARGV: pending value, done value, ttl s
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
  return 1
end
return 0
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
