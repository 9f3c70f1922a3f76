"""How a process connects to Redis: one factory for a lone server, Sentinel and Cluster URLs;
a client over a bounded pool, named in ``CLIENT LIST``.

URL forms (`parse_redis_url`)
-----------------------------
- ``redis://[[user]:password@]host[:port][/db]``, ``rediss://...`` (TLS), ``unix://path``: a
  lone server, as redis-py reads them.
- ``redis+sentinel://[[user]:password@]host:port[,host:port...]/<service>[/<db>]``: the
  primary of Sentinel service ``<service>``, found through the listed sentinels; after a
  failover the pool reconnects to the new primary. The credentials are the Redis servers';
  sentinels that need their own take ``?sentinel_password=...`` (and ``sentinel_username``).
  ``rediss+sentinel://`` speaks TLS to the servers.
- ``redis+cluster://[[user]:password@]host:port[,host:port...]``: a Redis Cluster, any of
  whose nodes are listed (database 0 only, the only one a cluster has); ``rediss+cluster://``
  speaks TLS.

Cluster mode keeps each multi-key command and Lua script inside one hash slot by requiring
every key prefix to carry a hash tag (``{stompgate}:``, say): all keys under one prefix live
in one slot (see `check_key_prefixes`). Settings refuse a cluster URL with an untagged prefix.

Bounded pools
-------------
redis-py's default pool opens one more connection whenever every open one is busy and never
closes the idle ones, so a burst of concurrent commands (a storm of CONNECTs, each counting
its user in Redis) leaves one connection per concurrent command open for the life of the
process. Every Redis client the processes make comes from :func:`redis_client` instead: a
blocking pool of at most ``max_connections`` connections (to the primary, for Sentinel),
where a command that finds them all busy waits for one (at most ``timeout`` seconds, then it
fails as a Redis ``ConnectionError``, which callers already handle as Redis being
unavailable). A Cluster client bounds each node's pool to ``max_connections``; a command that
finds its node's pool full fails at once (redis-py's cluster pools do not wait).

Each connection is named (``CLIENT SETNAME``) so operators and tests can count a node's
connections with ``CLIENT LIST``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final, cast
from urllib.parse import parse_qs, unquote, urlsplit

from redis.asyncio import BlockingConnectionPool, ConnectionPool, Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool

__all__ = [
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_TIMEOUT",
    "RedisTarget",
    "check_key_prefixes",
    "client_name",
    "hash_tag",
    "parse_redis_url",
    "redis_client",
]

DEFAULT_MAX_CONNECTIONS: Final = 16
DEFAULT_TIMEOUT: Final = 5.0

_UNSAFE: Final = re.compile(r"[^!-~]")  # CLIENT SETNAME takes no spaces or newlines

SINGLE: Final = "single"
SENTINEL: Final = "sentinel"
CLUSTER: Final = "cluster"

_SCHEMES: Final = {
    "redis": SINGLE,
    "rediss": SINGLE,
    "unix": SINGLE,
    "redis+sentinel": SENTINEL,
    "rediss+sentinel": SENTINEL,
    "redis+cluster": CLUSTER,
    "rediss+cluster": CLUSTER,
}


def client_name(*parts: str) -> str:
    """``stompgate:<part>:<part>...``, with anything Redis refuses in a name replaced."""
    return _UNSAFE.sub("_", ":".join(("stompgate", *parts)))


@dataclass(frozen=True, slots=True)
class RedisTarget:
    """What a Redis URL names (see the module docstring for the forms)."""

    kind: str
    """``single``, ``sentinel`` or ``cluster``."""
    url: str
    hosts: tuple[tuple[str, int], ...] = ()
    service: str = ""
    db: int = 0
    username: str | None = None
    password: str | None = None
    tls: bool = False
    sentinel_auth: dict[str, str] = field(default_factory=dict)


def _hosts(netloc: str, url: str) -> tuple[tuple[str, int], ...]:
    hosts: list[tuple[str, int]] = []
    for item in netloc.split(","):
        host, sep, port = item.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"Redis URL {_redact(url)!r}: {item!r} is not host:port")
        hosts.append((host.strip("[]"), int(port)))
    return tuple(hosts)


def _redact(url: str) -> str:
    return re.sub(r"(//[^/@]*:)[^/@]*@", r"\1***@", url)


def parse_redis_url(url: str) -> RedisTarget:
    """The target of ``url``; `ValueError` (naming the problem) for a URL it cannot use."""
    scheme, sep, _ = url.partition("://")
    kind = _SCHEMES.get(scheme.lower()) if sep else None
    if kind is None:
        forms = ", ".join(f"{s}://" for s in _SCHEMES)
        raise ValueError(f"Redis URL {_redact(url)!r}: the scheme must be one of {forms}")
    if kind == SINGLE:
        return RedisTarget(SINGLE, url)
    parts = urlsplit("redis://" + url.partition("://")[2])
    userinfo, at, netloc = parts.netloc.rpartition("@")
    if not netloc:
        raise ValueError(f"Redis URL {_redact(url)!r}: no host:port")
    username = password = None
    if at:
        user, colon, secret = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if colon else None
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    sentinel_auth = {
        k.removeprefix("sentinel_"): v
        for k, v in query.items()
        if k in ("sentinel_password", "sentinel_username")
    }
    unknown = set(query) - {"sentinel_password", "sentinel_username"}
    if unknown or (sentinel_auth and kind != SENTINEL):
        bad = ", ".join(sorted(unknown or sentinel_auth))
        raise ValueError(f"Redis URL {_redact(url)!r}: unknown query parameter(s) {bad}")
    path = [unquote(p) for p in parts.path.split("/") if p]
    hosts = _hosts(netloc, url)
    tls = scheme.lower().startswith("rediss")
    if kind == SENTINEL:
        if not path or len(path) > 2 or (len(path) == 2 and not path[1].isdigit()):
            raise ValueError(
                f"Redis URL {_redact(url)!r}: a Sentinel URL ends in /<service>[/<db>]"
            )
        db = int(path[1]) if len(path) == 2 else 0
        return RedisTarget(
            SENTINEL, url, hosts, path[0], db, username, password, tls, sentinel_auth
        )
    if path not in ([], ["0"]):
        raise ValueError(
            f"Redis URL {_redact(url)!r}: a Redis Cluster has database 0 only (no path)"
        )
    return RedisTarget(CLUSTER, url, hosts, "", 0, username, password, tls)


_TAG: Final = re.compile(r"\{([^}]+)\}")


def hash_tag(prefix: str) -> str | None:
    """The hash tag Redis Cluster hashes keys under ``prefix`` by (the text of the first
    ``{...}`` with something inside), or None when keys would hash by their whole name."""
    start = prefix.find("{")
    if start < 0:
        return None
    end = prefix.find("}", start + 1)
    if end <= start + 1:
        return None
    return prefix[start + 1 : end]


def check_key_prefixes(url: str, prefixes: Sequence[tuple[str, str]]) -> None:
    """`ValueError` unless ``url`` can be used with these key prefixes ((setting, prefix)
    pairs): for a cluster, every prefix must carry a hash tag, the same one for all (their
    scripts mix keys of both), so every multi-key command and script stays in one slot."""
    target = parse_redis_url(url)
    if target.kind != CLUSTER:
        return
    tags = {setting: hash_tag(prefix) for setting, prefix in prefixes}
    untagged = [f"{s} ({p!r})" for s, p in prefixes if tags[s] is None]
    if untagged:
        raise ValueError(
            "a Redis Cluster URL needs key prefixes with a hash tag, e.g. '{stompgate}:', so "
            "that multi-key commands and scripts stay in one slot: " + ", ".join(untagged)
        )
    if len(set(tags.values())) > 1:
        listed = ", ".join(f"{s} ({p!r})" for s, p in prefixes)
        raise ValueError(f"with a Redis Cluster these prefixes need one hash tag: {listed}")


class BlockingSentinelPool(SentinelConnectionPool, BlockingConnectionPool):
    """Sentinel's pool (connections go to the service's current primary) with the blocking
    pool's bound: at most ``max_connections``, a command waits ``timeout`` s for one."""


class SentinelRedis(Redis):
    """The primary's client; ``aclose()`` closes the connections to the sentinels too."""

    owned_sentinel: Sentinel | None = None

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        await super().aclose(close_connection_pool)
        if self.owned_sentinel is not None:
            for client in self.owned_sentinel.sentinels:
                await client.aclose()


def redis_client(
    url: str,
    *,
    name: str,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
    timeout: float = DEFAULT_TIMEOUT,
) -> Redis:
    """A client for ``url`` (any form of the module docstring) whose pool opens at most
    ``max_connections`` connections (0: no bound, redis-py's own pool), each named ``name``.
    A command waits up to ``timeout`` seconds for a free connection (0: as long as it
    takes). ``aclose()`` closes the pool.

    A cluster URL gives a `RedisCluster`, typed as `Redis`: it answers the commands, scripts,
    pipelines and pub/sub the project uses in the same way (tests/chatstate/test_ha.py runs
    them against a private cluster)."""
    if max_connections < 0 or timeout < 0:
        raise ValueError("max_connections and timeout must not be negative")
    target = parse_redis_url(url)
    if target.kind == CLUSTER:
        return _cluster(target, name, max_connections)
    if target.kind == SENTINEL:
        return _sentinel(target, name, max_connections, timeout)
    pool: ConnectionPool
    if max_connections:
        pool = BlockingConnectionPool.from_url(
            url, max_connections=max_connections, timeout=timeout or None, client_name=name
        )
    else:
        pool = ConnectionPool.from_url(url, client_name=name)
    return Redis.from_pool(pool)


def _auth(target: RedisTarget) -> dict[str, Any]:
    auth: dict[str, Any] = {}
    if target.username is not None:
        auth["username"] = target.username
    if target.password is not None:
        auth["password"] = target.password
    return auth


def _sentinel(target: RedisTarget, name: str, max_connections: int, timeout: float) -> Redis:
    sentinel_kwargs: dict[str, Any] = {"socket_timeout": DEFAULT_TIMEOUT}
    sentinel_kwargs.update(target.sentinel_auth)
    if target.tls:
        sentinel_kwargs["ssl"] = True
    sentinel = Sentinel(list(target.hosts), sentinel_kwargs=sentinel_kwargs)
    kwargs: dict[str, Any] = {"db": target.db, "client_name": name, **_auth(target)}
    if target.tls:
        kwargs["ssl"] = True
    if max_connections:
        kwargs.update(
            connection_pool_class=BlockingSentinelPool,
            max_connections=max_connections,
            timeout=timeout or None,
        )
    client = cast(SentinelRedis, sentinel.master_for(target.service, SentinelRedis, **kwargs))
    client.owned_sentinel = sentinel
    return client


def _cluster(target: RedisTarget, name: str, max_connections: int) -> Redis:
    kwargs: dict[str, Any] = {"client_name": name, **_auth(target)}
    if max_connections:
        kwargs["max_connections"] = max_connections
    if target.tls:
        kwargs["ssl"] = True
    nodes = [ClusterNode(host, port) for host, port in target.hosts]
    return cast(Redis, RedisCluster(startup_nodes=nodes, **kwargs))
