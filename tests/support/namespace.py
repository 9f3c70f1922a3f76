"""Test gateways and workers of one run share the default deployment's lease namespace.

The start-up check (`chatstate.deployment`) ties a vhost's topic exchange to ONE node-id
lease namespace (Redis server and key prefix). The tests of a run take turns on shared vhosts,
each with a Redis prefix of its own: to the check they are many deployments, and it would
refuse all but the first. They never issue ids at once, so each test prefix is declared part
of the default deployment's namespace: it gets that namespace's token (expiring in an hour if
the test leaves it behind). Tests of the check itself use vhosts and prefixes of their own
and never call this.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import secrets
from collections.abc import Mapping, Sequence

import redis

from chatstate.client import redis_client
from chatstate.deployment import DEFAULT_DEPLOYMENT, default_redis_prefix, namespace_key

__all__ = ["share_default_namespace", "share_for_process"]

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


def share_default_namespace(redis_url: str, prefix: str) -> None:
    """Give `prefix` in `redis_url` (any URL form the gateway takes: a private server, a
    Sentinel set, a cluster) the default deployment's lease-namespace token, which lives in
    the shared Redis of the run (`DEFAULT_REDIS_URL`)."""
    default = default_redis_prefix(DEFAULT_DEPLOYMENT)
    if prefix == default and redis_url == DEFAULT_REDIS_URL:
        return
    shared = redis.Redis.from_url(DEFAULT_REDIS_URL)
    try:
        key = namespace_key(default)
        shared.set(key, secrets.token_hex(16), nx=True)
        token = shared.get(key)
        assert isinstance(token, bytes)
    finally:
        shared.close()
    # The project's own client reads every URL form; it is asyncio's, and a test may call
    # this from inside a running loop: so on a thread of its own.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, _put(redis_url, namespace_key(prefix), token)).result()


async def _put(redis_url: str, key: str, token: bytes) -> None:
    client = redis_client(redis_url, name="stompgate-test-namespace", max_connections=0)
    try:
        await client.set(key, token, ex=3600)
    finally:
        await client.aclose()


def share_for_process(env: Mapping[str, str], args: Sequence[str] = ()) -> None:
    """`share_default_namespace` for a gateway or worker process started with `env` (over
    this process's environment) and command-line `args`."""
    merged = {**os.environ, **env}
    redis_url = _flag(args, "--redis-url") or merged.get("STOMPGATE_REDIS_URL") or DEFAULT_REDIS_URL
    deployment = _flag(args, "--deployment") or merged.get("STOMPGATE_DEPLOYMENT")
    prefix = _flag(args, "--redis-prefix") or merged.get("STOMPGATE_REDIS_PREFIX")
    if deployment not in (None, DEFAULT_DEPLOYMENT):
        return  # another deployment: a namespace of its own, as the test wants
    share_default_namespace(redis_url, prefix or default_redis_prefix(DEFAULT_DEPLOYMENT))


def _flag(args: Sequence[str], name: str) -> str | None:
    for i, arg in enumerate(args):
        if arg == name and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None
