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

import os
import secrets
from collections.abc import Mapping, Sequence

import redis

from chatstate.deployment import DEFAULT_DEPLOYMENT, default_redis_prefix, namespace_key

__all__ = ["share_default_namespace", "share_for_process"]

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


def share_default_namespace(redis_url: str, prefix: str) -> None:
    """Give `prefix` the default deployment's lease-namespace token in `redis_url`."""
    default = default_redis_prefix(DEFAULT_DEPLOYMENT)
    if prefix == default:
        return
    client = redis.Redis.from_url(redis_url)
    try:
        key = namespace_key(default)
        client.set(key, secrets.token_hex(16), nx=True)
        token = client.get(key)
        assert isinstance(token, bytes)
        client.set(namespace_key(prefix), token, ex=3600)
    finally:
        client.close()


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
