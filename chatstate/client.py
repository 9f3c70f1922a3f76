"""How a process connects to Redis: a client over a bounded pool, named in ``CLIENT LIST``.

redis-py's default pool opens one more connection whenever every open one is busy and never
closes the idle ones, so a burst of concurrent commands (a storm of CONNECTs, each counting
its user in Redis) leaves one connection per concurrent command open for the life of the
process. Every Redis client the gateway makes comes from :func:`redis_client` instead: a
``BlockingConnectionPool`` of at most ``max_connections`` connections, where a command that
finds them all busy waits for one (at most ``timeout`` seconds, then it fails as a Redis
``ConnectionError``, which callers already handle as Redis being unavailable).

Each connection is named (``CLIENT SETNAME``) so operators and tests can count a node's
connections with ``CLIENT LIST``.
"""

from __future__ import annotations

import re
from typing import Final

from redis.asyncio import BlockingConnectionPool, ConnectionPool, Redis

__all__ = ["DEFAULT_MAX_CONNECTIONS", "DEFAULT_TIMEOUT", "client_name", "redis_client"]

DEFAULT_MAX_CONNECTIONS: Final = 16
DEFAULT_TIMEOUT: Final = 5.0

_UNSAFE: Final = re.compile(r"[^!-~]")  # CLIENT SETNAME takes no spaces or newlines


def client_name(*parts: str) -> str:
    """``stompgate:<part>:<part>...``, with anything Redis refuses in a name replaced."""
    return _UNSAFE.sub("_", ":".join(("stompgate", *parts)))


def redis_client(
    url: str,
    *,
    name: str,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
    timeout: float = DEFAULT_TIMEOUT,
) -> Redis:
    """A client for ``url`` whose pool opens at most ``max_connections`` connections (0: no
    bound, redis-py's own pool), each named ``name``. A command waits up to ``timeout``
    seconds for a free connection (0: as long as it takes). ``aclose()`` closes the pool."""
    if max_connections < 0 or timeout < 0:
        raise ValueError("max_connections and timeout must not be negative")
    pool: ConnectionPool
    if max_connections:
        pool = BlockingConnectionPool.from_url(
            url, max_connections=max_connections, timeout=timeout or None, client_name=name
        )
    else:
        pool = ConnectionPool.from_url(url, client_name=name)
    return Redis.from_pool(pool)
