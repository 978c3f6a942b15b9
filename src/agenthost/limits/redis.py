"""Rate limits in Redis, shared by every worker and host: the same semantics as memory.py.

Each scope has a hash `ah:rl:{scope}` (window, requests, tokens; expires after two
windows) and a sorted set `ah:rl:{scope}:c` of running leases scored by expiry. One Lua
script checks every scope and then counts in all of them, atomically, on Redis's clock,
so workers on hosts with drifting clocks still share one window.
"""

from __future__ import annotations

from redis.asyncio import Redis

from agenthost.limits.base import Lease, RateLimiter, Scope, ScopeUsage, refusal

_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = math.floor(now / 60000)
local reset = (window + 1) * 60000 - now
local lease, tokens, ttl = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local n = #KEYS / 2
local counts = {}
for i = 1, n do
  local h, c = KEYS[2 * i - 1], KEYS[2 * i]
  local rpm, tpm, conc = tonumber(ARGV[3 * i + 1]), tonumber(ARGV[3 * i + 2]),
    tonumber(ARGV[3 * i + 3])
  local state = redis.call('HMGET', h, 'w', 'r', 't')
  local r, tk = 0, 0
  if tonumber(state[1]) == window then
    r, tk = tonumber(state[2]) or 0, tonumber(state[3]) or 0
  end
  redis.call('ZREMRANGEBYSCORE', c, '-inf', now)
  if rpm > 0 and r + 1 > rpm then return {0, i, 1, reset} end
  if tpm > 0 and tk + tokens > tpm then return {0, i, 2, reset} end
  if conc > 0 and redis.call('ZCARD', c) >= conc then return {0, i, 3, 1000} end
  counts[i] = {r, tk}
end
local out = {1, window, reset}
for i = 1, n do
  local h, c = KEYS[2 * i - 1], KEYS[2 * i]
  local r, tk = counts[i][1] + 1, counts[i][2] + tokens
  redis.call('HSET', h, 'w', window, 'r', r, 't', tk)
  redis.call('PEXPIRE', h, 120000)
  redis.call('ZADD', c, now + ttl, lease)
  redis.call('PEXPIRE', c, math.max(redis.call('PTTL', c), ttl))
  table.insert(out, r)
  table.insert(out, tk)
end
return out
"""

_RELEASE = """
local lease, window, delta = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
for i = 1, #KEYS / 2 do
  local h, c = KEYS[2 * i - 1], KEYS[2 * i]
  redis.call('ZREM', c, lease)
  if delta ~= 0 and tonumber(redis.call('HGET', h, 'w')) == window then
    local tk = tonumber(redis.call('HGET', h, 't')) or 0
    redis.call('HSET', h, 't', math.max(0, tk + delta))
  end
end
return 1
"""

_WHAT = {1: "requests", 2: "tokens", 3: "concurrent"}


def _keys(scopes: list[Scope]) -> list[str]:
    keys: list[str] = []
    for scope in scopes:
        base = f"ah:rl:{{{scope.name}}}"  # a hash tag keeps a scope's keys on one node
        keys += [base, base + ":c"]
    return keys


class RedisRateLimiter(RateLimiter):
    """The shared limiter; raises Redis errors for `FallbackRateLimiter` to handle."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._acquire = redis.register_script(_ACQUIRE)
        self._release = redis.register_script(_RELEASE)

    async def acquire(
        self, scopes: list[Scope], tokens: int, lease_id: str, lease_seconds: float
    ) -> Lease:
        args: list[str | int] = [lease_id, tokens, int(lease_seconds * 1000)]
        for scope in scopes:
            limit = scope.limit
            args += [
                limit.requests_per_minute or 0,
                limit.tokens_per_minute or 0,
                limit.concurrent_requests or 0,
            ]
        result = [int(x) for x in await self._acquire(keys=_keys(scopes), args=args)]
        if result[0] == 0:
            raise refusal(scopes[result[1] - 1], _WHAT[result[2]], result[3] / 1000)
        lease = Lease(lease_id, scopes, result[1], tokens, result[2] / 1000, backend=self)
        for index, scope in enumerate(scopes):
            requests, counted = result[3 + 2 * index], result[4 + 2 * index]
            lease.usages.append(ScopeUsage(scope, requests, counted))
        return lease

    async def release(self, lease: Lease, actual_tokens: int) -> None:
        args: list[str | int] = [lease.lease_id, lease.window, actual_tokens - lease.tokens]
        await self._release(keys=_keys(lease.scopes), args=args)
