"""One HTTP request with aiohttp, the reply read whole: what every provider's adapter starts from.

`fetch(...)` returns an `HttpReply` whatever the status; a network failure or a timeout
raises `UnreachableError` at once, which each provider family turns into its own
"unavailable" error.
What a status means is the provider's business (its documented errors), not this module's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from workers.resilience.retry_after import parse_retry_after

#: Bytes of a reply body quoted in an error message.
_QUOTE = 200


class UnreachableError(Exception):
    """No reply: connection refused or reset, DNS, TLS, or no answer within the timeout."""


class UnreadableReplyError(ValueError):
    """The reply's body is not the JSON it should be."""


@dataclass(frozen=True, slots=True)
class HttpReply:
    status: int
    headers: Mapping[str, str]
    body: bytes

    def loads(self) -> Any:
        """The body as JSON, or `UnreadableReplyError`."""
        try:
            return orjson.loads(self.body)
        except orjson.JSONDecodeError:
            raise UnreadableReplyError(
                f"HTTP {self.status} with a body that is not JSON: {self.quote()}"
            ) from None

    def text_at(self, *path: str) -> str | None:
        """The string at `path` in a JSON object body (`text_at("error", "message")`), or None
        when the body is not JSON or holds no string there."""
        try:
            node: Any = orjson.loads(self.body)
        except orjson.JSONDecodeError:
            return None
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        return node if isinstance(node, str) else None

    def quote(self) -> str:
        text = self.body[:_QUOTE].decode("utf-8", "replace")
        return text + ("..." if len(self.body) > _QUOTE else "")

    @property
    def retry_after(self) -> float | None:
        return parse_retry_after(self.headers.get("Retry-After"))


async def fetch(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    timeout: float,  # noqa: ASYNC109 - a per-request aiohttp timeout, not a cancel scope
    **kwargs: Any,
) -> HttpReply:
    """One request; the whole reply, whatever its status. `UnreachableError` without one."""
    try:
        async with session.request(
            method, url, timeout=aiohttp.ClientTimeout(total=timeout), **kwargs
        ) as response:
            body = await response.read()
            return HttpReply(response.status, dict(response.headers), body)
    except TimeoutError:
        raise UnreachableError(f"no reply within {timeout:g} s") from None
    except aiohttp.ClientError as exc:
        raise UnreachableError(f"{type(exc).__name__}: {exc}") from None
