"""AMQP URLs as the gateway and the workers are given them: one URL, or several
comma-separated (the nodes of a RabbitMQ cluster), and the AMQP heart-beat folded into each.

`source` names the setting in error texts (``--amqp-url`` for the gateway,
``STOMPGATE_AMQP_URL`` for the workers), so both read the same and say where it came from.
"""

from __future__ import annotations

import re

from yarl import URL

__all__ = ["split_amqp_urls", "with_heartbeat"]

_URL_SEPARATOR = re.compile(r"\s*,\s*(?=[a-z][a-z0-9+.-]*://)", re.IGNORECASE)


def split_amqp_urls(value: str, source: str = "--amqp-url") -> tuple[str, ...]:
    """The AMQP URLs of ``value``: one URL, or several separated by commas (the nodes of a
    cluster). A comma splits only where a URL (``scheme://``) follows, so a comma inside a
    password stays. Raises ValueError for an empty list or a URL that is not
    ``amqp://host...`` or ``amqps://host...`` (its password never shown)."""
    urls = tuple(u for u in _URL_SEPARATOR.split(value.strip()) if u)
    if not urls:
        raise ValueError(f"{source} must name at least one AMQP URL")
    for url in urls:
        scheme, sep, rest = url.partition("://")
        if not sep or scheme.lower() not in ("amqp", "amqps") or not rest.strip("/"):
            shown = url if "@" not in url else f"{scheme}://...@{url.rpartition('@')[2]}"
            raise ValueError(f"{source}: not an amqp:// or amqps:// URL with a host: {shown!r}")
    return urls


def with_heartbeat(
    value: str, seconds: int, source: str = "--amqp-url", heartbeat_source: str = "--amqp-heartbeat"
) -> str:
    """``value`` (one AMQP URL or several, comma-separated) with ``heartbeat=seconds`` in each
    URL's query (aiormq, aio-pika and the node's wire read it there). A URL that already says
    ``heartbeat=`` something else is a ValueError: the interval is given once."""
    return ",".join(
        _one_with_heartbeat(url, seconds, heartbeat_source)
        for url in split_amqp_urls(value, source)
    )


def _one_with_heartbeat(url: str, seconds: int, heartbeat_source: str) -> str:
    parsed = URL(url)
    given = parsed.query.get("heartbeat")
    if given is not None:
        if given.strip() != str(seconds):
            raise ValueError(
                f"the AMQP URL says heartbeat={given} and {heartbeat_source} {seconds}:"
                " give the interval once"
            )
        return url
    return str(parsed.update_query(heartbeat=str(seconds)))
