"""Lua scripts for the chat layer's atomic Redis steps (sources only)."""

from __future__ import annotations

RESERVE_POST = """
-- KEYS: client key, recent key, room seq key, unstored key, inflight key, poster's read key,
--       the node's last-id key
-- ARGV: pending ttl ms, candidate id (19 digits), event head, event middle, event tail,
--       recent limit, recent ttl s, track unstored ('1'/'0'), Snowflake epoch (Unix ms)
-- Picks the post's id and takes its room ordinal in one step, so no other post can come in
-- between: the id is the candidate (the node's generator issued it at the node's clock)
-- unless the room's newest cached id or the node's last id is at or above it; then it is the
-- smallest id of the candidate's node above both (same millisecond if it can, else the next
-- one). So ids rise with the room ordinal whatever the clocks of the nodes, a node's ids stay
-- unique across its rooms (every one passes its last-id key), and a post never loses a race.
-- Ids are 63-bit: Lua's doubles hold 53, so they stay 19-digit strings here, with digit
-- arithmetic for the little that is needed.
-- The event is head .. id .. middle .. sent_at .. tail (sent_at: the id's Unix ms).
-- Returns {1, ordinal, unstored count, id}, {0, existing client key value}, or {3} when the
-- room has no counter (Redis lost it, or the room never had a post): the caller sets it from
-- the store and reserves again. Posting moves the poster's read pointer to the post (the
-- poster has read everything up to their own message).
local existing = redis.call('GET', KEYS[1])
if existing then return {0, existing} end
if redis.call('EXISTS', KEYS[3]) == 0 then return {3} end
local function divmod(id, d)  -- quotient and remainder of a 19-digit id by d <= 2^22
  local q, r = 0, 0
  for i = 1, 19 do
    r = r * 10 + string.byte(id, i) - 48
    local digit = math.floor(r / d)
    q, r = q * 10 + digit, r - digit * d
  end
  return q, r
end
local function add(id, delta)  -- a 19-digit id plus a small non-negative integer
  local hi, lo = tonumber(string.sub(id, 1, 10)), tonumber(string.sub(id, 11, 19)) + delta
  local carry = math.floor(lo / 1000000000)
  return string.format('%010d%09d', hi + carry, lo - carry * 1000000000)
end
local id = ARGV[2]
local above = redis.call('GET', KEYS[7]) or ''
local newest = redis.call('ZRANGE', KEYS[2], -1, -1)
if #newest > 0 and string.sub(newest[1], 1, 19) > above then
  above = string.sub(newest[1], 1, 19)
end
if above >= id then
  local _, low = divmod(above, 4194304)
  local _, mine = divmod(id, 4194304)
  mine = math.floor(mine / 4096) * 4096
  if low >= mine and low < mine + 4095 then
    id = add(above, 1)  -- the same millisecond and node: the next sequence number
  elseif low < mine then
    id = add(above, mine - low)  -- the same millisecond, a higher node
  else
    id = add(above, 4194304 + mine - low)  -- the next millisecond
  end
end
redis.call('SET', KEYS[7], id, 'EX', ARGV[7])
local bare = string.match(id, '^0*(%d+)$')
local sent_at = divmod(id, 4194304) + tonumber(ARGV[9])
local event = ARGV[3] .. bare .. ARGV[4] .. string.format('%d', sent_at) .. ARGV[5]
redis.call('SET', KEYS[1], 'p' .. bare, 'PX', ARGV[1])
local ordinal = redis.call('INCR', KEYS[3])
redis.call('ZADD', KEYS[2], 0, id .. ':' .. ordinal .. ':' .. event)
local read = redis.call('HGET', KEYS[6], 'id')
if not read or string.rep('0', 19 - #read) .. read < id then
  redis.call('HSET', KEYS[6], 'id', bare, 'seq', ordinal)
end
local stop = -(tonumber(ARGV[6]) + 1)
local unstored = 0
if ARGV[8] == '1' then
  -- What leaves the cache must be found in the store before history below the cache is
  -- served (see gateway/chat/unstored.py); until confirmed, the post may never be published.
  redis.call('HSET', KEYS[5], id, KEYS[1])
  redis.call('EXPIRE', KEYS[5], ARGV[7])
  for _, member in ipairs(redis.call('ZRANGE', KEYS[2], 0, stop)) do
    redis.call('ZADD', KEYS[4], 0, string.sub(member, 1, 19))
  end
  redis.call('EXPIRE', KEYS[4], ARGV[7])
  unstored = redis.call('ZCARD', KEYS[4])
end
redis.call('ZREMRANGEBYRANK', KEYS[2], 0, stop)
redis.call('EXPIRE', KEYS[2], ARGV[7])
return {1, ordinal, unstored, id}
"""

ABORT_POST = """
-- KEYS: client key, recent key, unstored key, inflight key, holes key
-- ARGV: pending value, cache member, id (19 digits)
-- A retry that took the post over (and confirmed it: the key holds the bare id) published
-- this very message: it stays in the cache (and in the unstored set if trimmed). Otherwise
-- the message was never published: out of the cache, nothing for the store to catch up, and
-- its room ordinal is a hole that unread counts skip.
local current = redis.call('GET', KEYS[1])
if current == ARGV[1] then redis.call('DEL', KEYS[1]) end
if current == ARGV[1] or not current then
  redis.call('ZREM', KEYS[2], ARGV[2])
  redis.call('ZREM', KEYS[3], ARGV[3])
  redis.call('HDEL', KEYS[4], ARGV[3])
  redis.call('ZADD', KEYS[5], 0, ARGV[3])
end
return 1
"""

TAKEOVER_CONFIRM = """
-- KEYS: client key, recent key, unstored key, inflight key, holes key
-- ARGV: pending value, done value, ttl s, cache member ('' if none), id (19 digits),
--       recent ttl s, track unstored ('1'/'0')
-- A retry republished a post whose first attempt never confirmed: mark it done unless
-- something else owns the key now, and put the message back in the cache if the first
-- attempt's abort took it out (only if it still belongs among the newest: the cache must
-- stay a suffix of the room's messages). Published now: if the cache does not hold it, the
-- store must have it before history below the cache is served; and it is no hole.
redis.call('HDEL', KEYS[4], ARGV[5])
redis.call('ZREM', KEYS[5], ARGV[5])
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
-- KEYS: unstored key, inflight key, holes key, rejected key.  ARGV: ids (19 digits) the store
-- did not return.
-- Returns those to wait for. An id whose post was never confirmed and can no longer be (its
-- pending reservation expired or was replaced) is dead, and so is an id the persist worker
-- rejected (dead-lettered: its id is stored as another message): it leaves the set, is not
-- returned, and becomes a hole of the room's ordinals. An id gone from the set already is
-- returned: it may have been found stored by a read later than the caller's (the caller
-- retries; the next read does not see it).
local outstanding = {}
for _, id in ipairs(ARGV) do
  local dead = false
  if redis.call('ZSCORE', KEYS[1], id) then
    local client_key = redis.call('HGET', KEYS[2], id)
    if redis.call('ZSCORE', KEYS[4], id) then
      dead = true
    elseif client_key then
      local bare = string.match(id, '^0*(%d+)$')
      local current = redis.call('GET', client_key)
      dead = current ~= 'p' .. bare and current ~= bare
    end
  end
  if dead then
    redis.call('ZREM', KEYS[1], id)
    redis.call('HDEL', KEYS[2], id)
    redis.call('ZADD', KEYS[3], 0, id)
  else
    table.insert(outstanding, id)
  end
end
return outstanding
"""

MARK_READ = """
-- KEYS: read key, recent key, room seq key, holes key
-- ARGV: id (19 digits), mode ('read' or 'warm'), the id's ordinal from the store ('' if not
--       known)
-- A read pointer is {id, seq}: seq is how many room ordinals belong to ids <= id (ids rise
-- with the ordinal), so the messages after it are room seq - seq - holes above id.
-- 'read' moves the pointer forward (never back; a pointer past the newest cached message is
-- set to that message); 'warm' sets a pointer the cache lost (from the store) unless one is
-- there. Returns {moved (0/1), pointer id, pointer seq, room seq, holes above the pointer,
-- newest cached id ('' if none)}, or {-1}: the room has no counter; {-2}: 'read' found no
-- pointer (warm it first);
-- {-3}: the ordinal of id is needed from the store (no cached message at or below it).
local room_seq = redis.call('GET', KEYS[3])
if not room_seq then return {-1} end
room_seq = tonumber(room_seq)
local function above(id)
  return redis.call('ZLEXCOUNT', KEYS[4], '(' .. id, '+')
end
local current = redis.call('HGET', KEYS[1], 'id')
if not current and ARGV[2] == 'read' then return {-2} end
local target = ARGV[1]
local newest = redis.call('ZRANGE', KEYS[2], -1, -1)
local last = ''
if #newest > 0 then
  last = string.match(newest[1], '^0*(%d+):')
  if ARGV[2] == 'read' and target > string.sub(newest[1], 1, 19) then
    target = string.sub(newest[1], 1, 19)
  end
end
if current then
  local padded = string.rep('0', 19 - #current) .. current
  if ARGV[2] == 'warm' or padded >= target then
    local seq = redis.call('HGET', KEYS[1], 'seq') or '0'
    return {0, current, seq, room_seq, above(padded), last}
  end
end
local seq
local below = redis.call('ZREVRANGEBYLEX', KEYS[2], '(' .. target .. ';', '-', 'LIMIT', 0, 1)
if #below > 0 then
  local id = string.sub(below[1], 1, 19)
  seq = tonumber(string.match(below[1], '^%d+:(%d+):'))
  seq = seq + redis.call('ZLEXCOUNT', KEYS[4], '(' .. id, '[' .. target)
elseif room_seq == 0 then
  seq = 0
elseif ARGV[3] ~= '' then
  seq = tonumber(ARGV[3])
else
  return {-3}
end
if seq > room_seq then seq = room_seq end
local pointer = string.match(target, '^0*(%d+)$')
redis.call('HSET', KEYS[1], 'id', pointer, 'seq', seq)
return {1, pointer, seq, room_seq, above(target), last}
"""

REBUILD_SET = """
-- KEYS: a cache set, its version counter.  ARGV: the version read before the store was,
--       ttl s, members...
-- Rebuild the set (with the marker member '') from the store's answer, unless a change
-- bumped the version meanwhile: then what was read may be stale, and the changed set (or
-- the next rebuild) is right. Returns 1 if written.
if (redis.call('GET', KEYS[2]) or '0') ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('SADD', KEYS[1], '', unpack(ARGV, 3))
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 1
"""

CHANGE_MEMBERS = """
-- KEYS: roster set, roster version, then per user: the user's rooms set, its version
-- ARGV: 'add' or 'rem', room, ttl s, users (in the order of KEYS)
-- A membership change the store has already made, applied to the caches that exist (a
-- missing one is rebuilt from the store when next read); every version is bumped so no
-- rebuild in flight writes back what it read before the change.
local op = ARGV[1] == 'add' and 'SADD' or 'SREM'
redis.call('INCR', KEYS[2])
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call(op, KEYS[1], unpack(ARGV, 4))
  redis.call('EXPIRE', KEYS[1], ARGV[3])
end
for i = 3, #KEYS, 2 do
  redis.call('INCR', KEYS[i + 1])
  if redis.call('EXISTS', KEYS[i]) == 1 then
    redis.call(op, KEYS[i], ARGV[2])
    redis.call('EXPIRE', KEYS[i], ARGV[3])
  end
end
return 1
"""
