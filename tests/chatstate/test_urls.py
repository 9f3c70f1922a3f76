"""Redis URL forms (issue 18, item 6): a lone server, Sentinel and Cluster through one factory;
a cluster URL with key prefixes that would split a script's keys over slots is refused."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from redis.asyncio.cluster import RedisCluster

from chatstate.client import (
    check_key_prefixes,
    client_name,
    hash_tag,
    parse_redis_url,
    redis_client,
)
from gateway.settings import Settings
from tests.support.private_redis import PrivateCluster, PrivateSentinel
from workers.framework import RedisIdempotency
from workers.notify.collapse import Collapser, Latest
from workers.notify.settings import NotifySettings
from workers.translate.cache import TranslationCache
from workers.translate.providers import Translation
from workers.translate.settings import TranslateSettings


def test_sentinel_url() -> None:
    t = parse_redis_url("redis+sentinel://:s%40cret@h1:26379,h2:26380/mymaster/2")
    assert (t.kind, t.hosts, t.service, t.db, t.password) == (
        "sentinel",
        (("h1", 26379), ("h2", 26380)),
        "mymaster",
        2,
        "s@cret",
    )
    t = parse_redis_url("redis+sentinel://h1:26379/mymaster?sentinel_password=x")
    assert (t.db, t.sentinel_auth, t.tls) == (0, {"password": "x"}, False)
    assert parse_redis_url("rediss+sentinel://h:1/m").tls


def test_cluster_url() -> None:
    t = parse_redis_url("redis+cluster://u:p@h1:7000,h2:7001")
    assert (t.kind, t.hosts, t.username, t.password) == (
        "cluster",
        (("h1", 7000), ("h2", 7001)),
        "u",
        "p",
    )
    assert parse_redis_url("redis://localhost:6379/0").kind == "single"
    assert parse_redis_url("unix:///run/redis.sock").kind == "single"


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("http://h:1", "the scheme must be one of"),
        ("localhost:6379", "the scheme must be one of"),
        ("redis+sentinel://h:1", "ends in /<service>"),
        ("redis+sentinel://h:1/m/x", "ends in /<service>"),
        ("redis+sentinel://h/m", "is not host:port"),
        ("redis+cluster://h:1/3", "database 0 only"),
        ("redis+cluster://h:1?sentinel_password=x", "unknown query parameter"),
        ("redis+sentinel://:pw@h:99999/m", "is not host:port"),
    ],
)
def test_bad_urls_are_refused_clearly(url: str, error: str) -> None:
    with pytest.raises(ValueError, match=error) as caught:
        parse_redis_url(url)
    assert "pw@" not in str(caught.value)  # passwords are not echoed


def test_hash_tags() -> None:
    assert hash_tag("{stompgate}:") == "stompgate"
    assert hash_tag("app:{x}:") == "x"
    assert hash_tag("stompgate:") is None
    assert hash_tag("{}:x") is None


def test_cluster_needs_one_hash_tag_for_every_prefix() -> None:
    cluster = "redis+cluster://h:7000"
    check_key_prefixes(cluster, [("a", "{sg}:"), ("b", "{sg}:m:")])
    check_key_prefixes("redis://h:1/0", [("a", "stompgate:")])  # not a cluster: anything
    with pytest.raises(ValueError, match="hash tag"):
        check_key_prefixes(cluster, [("a", "stompgate:")])
    with pytest.raises(ValueError, match="one hash tag"):
        check_key_prefixes(cluster, [("a", "{sg}:"), ("b", "{other}:")])


def test_settings_refuse_a_cluster_url_with_untagged_prefixes() -> None:
    cluster = "redis+cluster://127.0.0.1:7000"
    with pytest.raises(ValueError, match=r"--redis-url: .*hash tag"):
        Settings(redis_url=cluster)
    Settings(redis_url=cluster, redis_prefix="{sg}:")
    with pytest.raises(ValueError, match="ends in /<service>"):
        Settings(redis_url="redis+sentinel://127.0.0.1:26379")
    env = {"STOMPGATE_REDIS_URL": cluster, "STOMPGATE_REDIS_PREFIX": "{sg}:"}
    with pytest.raises(ValueError, match="STOMPGATE_MEMBERSHIP_PREFIX"):
        NotifySettings.from_env(env)
    NotifySettings.from_env({**env, "STOMPGATE_MEMBERSHIP_PREFIX": "{sg}:roster:"})
    with pytest.raises(ValueError, match="STOMPGATE_REDIS_PREFIX"):
        TranslateSettings.from_env({"STOMPGATE_REDIS_URL": cluster})
    TranslateSettings.from_env(env)


@pytest.fixture(scope="module")
def sentinel_set() -> Iterator[PrivateSentinel]:
    with PrivateSentinel() as servers:
        yield servers


async def test_a_sentinel_client_is_bounded_and_named(sentinel_set: PrivateSentinel) -> None:
    client = redis_client(sentinel_set.url, name="stompgate:test:sentinel", max_connections=2)
    try:
        await asyncio.gather(*(client.blpop(["stompgate-test:none"], 0.05) for _ in range(10)))
        named = [
            c for c in await client.client_list() if c.get("name") == "stompgate:test:sentinel"
        ]
        assert 1 <= len(named) <= 2
        assert await client.set("k", "v")
    finally:
        await client.aclose()


async def test_a_cluster_url_makes_a_cluster_client() -> None:
    client: object = redis_client("redis+cluster://127.0.0.1:7000", name="n")
    assert isinstance(client, RedisCluster)
    await client.aclose()


# -- the workers' Redis uses on a cluster ----------------------------------------------------


@pytest.fixture(scope="module")
def cluster() -> Iterator[PrivateCluster]:
    with PrivateCluster() as servers:
        yield servers


async def test_the_workers_redis_uses_on_a_cluster(cluster: PrivateCluster) -> None:
    """Idempotency (MGET, pipelined SETs), the translation cache, and the notify worker's
    collapse windows (Lua scripts, also inside a pipeline) under a hash-tagged prefix."""
    prefix = "{w}:"
    client = redis_client(cluster.url, name=client_name("test", "workers"))
    try:
        guard = RedisIdempotency(client, prefix=f"{prefix}notify:sent:")
        await guard.mark(["a", "b"])
        assert await guard.seen(["a", "b", "c"]) == {"a", "b"}
        cache = TranslationCache(client, prefix=prefix, ttl=60)
        done = Translation("hola", "en", "es", "apertium")
        await cache.put_many(["hello"], [done])
        [hit, miss] = await cache.get_many(["hello", "bye"], "en", "es")
        assert (hit and hit.text, miss) == ("hola", None)
        collapse = Collapser(client, prefix)
        latest = Latest(42, "alice", "hi", 1)
        [(user, token)] = await collapse.note(["bob"], "r1", latest)
        assert user == "bob"
        assert await collapse.peek("bob", "r1", token) == latest
        assert await collapse.commit("bob", "r1", token, latest) is None
    finally:
        await client.aclose()
