"""The Lua steps of presence that write: every change of who is online is one atomic script
in Redis.

They start with `chatstate.presence.PRELUDE` (the arguments, Redis's time, the key layout and
the reading of a user's `state`, shared with the readers) and add the writing rules.

``evaluate(user)`` is the one rule: the user is *live* while one of their nodes is alive; the
status to show is online when live and not invisible. When it differs from the published one,
the change is published (returned to the caller, who sends the events) only once both of these
have passed: a grace since the last published change (at most one change per user per grace),
and, for going offline, a grace since the user was last live (a reload or a flaky network
never shows). Until then the user waits in the due set, where a sweep looks again. A dead
node's users were last live at its last renewal (its lease's end minus the lease).
"""

from __future__ import annotations

from chatstate.presence import PRELUDE

__all__ = ["INVISIBLE", "SYNC"]

_WRITES = """
local function evaluate(user)
  local ukey = user_key(user)
  local st = state(ukey)
  if st.live then redis.call('PERSIST', ukey) else redis.call('PEXPIRE', ukey, keep) end
  local want = 'offline'
  if st.live and not st.inv then want = 'online' end
  if want == st.pub then
    redis.call('ZREM', due, user)
    return
  end
  local earliest = st.at + grace
  if not st.live and st.last + grace > earliest then earliest = st.last + grace end
  if now < earliest then
    redis.call('ZADD', due, earliest, user)
    return
  end
  redis.call('HSET', ukey, 'pub', want, 'at', now)
  redis.call('ZREM', due, user)
  local seen = st.last
  if want == 'online' then
    seen = now
  elseif st.inv and st.inv < seen then
    seen = st.inv
  end
  out[#out + 1] = user
  out[#out + 1] = want
  out[#out + 1] = seen
  out[#out + 1] = now
end

local function drop_node(token, renewed)
  local set = node_key(token)
  local users = redis.call('SMEMBERS', set)
  redis.call('ZREM', nodes, token)
  redis.call('DEL', set)
  for _, user in ipairs(users) do
    local ukey = user_key(user)
    redis.call('HDEL', ukey, 'n:' .. token)
    local last = tonumber(redis.call('HGET', ukey, 'last') or '0')
    if last < renewed then redis.call('HSET', ukey, 'last', renewed) end
    evaluate(user)
  end
end
"""

SYNC = (
    PRELUDE
    + _WRITES
    + """
-- ARGV[5] token, ARGV[6] mode: 'tick' | 'full' (ARGV's joins are every local user) | 'retire'
-- ARGV[7..9] how many active users, joins, leaves follow from ARGV[11] on, in that order;
-- ARGV[10] how many due users to look at (0: no sweep). Returns the published changes
-- (user, status, last seen, at; flat), or {'resync'} when this node's lease had lapsed and
-- another node dropped its users: the caller sends them all again ('full').
local token, mode = ARGV[5], ARGV[6]
local na, nj, nl = tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
local sweep = tonumber(ARGV[10])
local mine = node_key(token)
local field = 'n:' .. token
local first = 11

if mode == 'retire' then
  drop_node(token, now)
  return out
end
if mode == 'full' then
  local listed = {}
  for k = first + na, first + na + nj - 1 do listed[ARGV[k]] = true end
  for _, user in ipairs(redis.call('SMEMBERS', mine)) do
    if not listed[user] then
      redis.call('SREM', mine, user)
      redis.call('HDEL', user_key(user), field)
      redis.call('HSET', user_key(user), 'last', now)
      evaluate(user)
    end
  end
elseif not redis.call('ZSCORE', nodes, token) then
  return {'resync'}
end
redis.call('ZADD', nodes, now + lease, token)

for k = first, first + na - 1 do
  redis.call('HSET', user_key(ARGV[k]), 'last', now)
end
for k = first + na, first + na + nj - 1 do
  local user = ARGV[k]
  redis.call('SADD', mine, user)
  redis.call('HSET', user_key(user), field, 1, 'last', now)
  evaluate(user)
end
for k = first + na + nj, first + na + nj + nl - 1 do
  local user = ARGV[k]
  redis.call('SREM', mine, user)
  redis.call('HDEL', user_key(user), field)
  redis.call('HSET', user_key(user), 'last', now)
  evaluate(user)
end

if sweep > 0 then
  local dead = redis.call('ZRANGEBYSCORE', nodes, '-inf', '(' .. now, 'WITHSCORES', 'LIMIT', 0, 1)
  if #dead == 2 then drop_node(dead[1], tonumber(dead[2]) - lease) end
  for _, user in ipairs(redis.call('ZRANGEBYSCORE', due, '-inf', now, 'LIMIT', 0, sweep)) do
    evaluate(user)
  end
end
return out
"""
)

INVISIBLE = (
    PRELUDE
    + _WRITES
    + """
-- ARGV[5] user, ARGV[6] '1': invisible from now on, '0': visible. Returns the published
-- changes, as SYNC does.
local user = ARGV[5]
local ukey = user_key(user)
if ARGV[6] == '1' then
  if redis.call('HEXISTS', ukey, 'inv') == 0 then redis.call('HSET', ukey, 'inv', now) end
else
  redis.call('HDEL', ukey, 'inv')
end
evaluate(user)
return out
"""
)
