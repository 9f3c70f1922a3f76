"""HTTP plumbing the providers share: one request, the reply read whole, errors classified.

A provider calls `send(...)`, gets an `HttpReply` whatever the status (a network failure or a
timeout is a `ProviderUnavailableError` at once), handles the statuses its service documents,
and hands the rest to `fail` (or `raise_for_status`), which applies what every service means
by them: 429 is "slow down" (with `Retry-After`), 5xx is "down for now".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

import aiohttp
import orjson

from workers.resilience.retry_after import parse_retry_after
from workers.translate.providers import ProviderUnavailableError, RateLimitedError

#: Bytes of a reply body quoted in an error message.
_QUOTE = 200


@dataclass(frozen=True, slots=True)
class HttpReply:
    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self, provider: str) -> Any:
        """The body as JSON; an unreadable body means the service is not itself."""
        try:
            return orjson.loads(self.body)
        except orjson.JSONDecodeError:
            raise ProviderUnavailableError(
                provider, f"HTTP {self.status} with a body that is not JSON: {self.quote()}"
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


async def send(
    session: aiohttp.ClientSession,
    provider: str,
    method: str,
    url: str,
    *,
    timeout: float,  # noqa: ASYNC109 - a per-request aiohttp timeout, not a cancel scope
    **kwargs: Any,
) -> HttpReply:
    """One request; the whole reply, whatever its status. Network trouble and timeouts raise
    `ProviderUnavailableError`."""
    try:
        async with session.request(
            method, url, timeout=aiohttp.ClientTimeout(total=timeout), **kwargs
        ) as response:
            body = await response.read()
            return HttpReply(response.status, dict(response.headers), body)
    except TimeoutError:
        raise ProviderUnavailableError(provider, f"no reply within {timeout:g} s") from None
    except aiohttp.ClientError as exc:
        raise ProviderUnavailableError(provider, f"{type(exc).__name__}: {exc}") from None


def raise_for_status(reply: HttpReply, provider: str, detail: str = "") -> None:
    """Nothing for 2xx; otherwise what `fail` raises."""
    if not 200 <= reply.status < 300:
        fail(reply, provider, detail)


def fail(reply: HttpReply, provider: str, detail: str = "") -> NoReturn:
    """Raise what a non-2xx status means to any HTTP service: 429 rate-limited, anything else
    (5xx, and statuses the provider does not document) unavailable."""
    what = detail or reply.quote()
    if reply.status == 429:
        raise RateLimitedError(provider, f"HTTP 429: {what}", reply.retry_after)
    raise ProviderUnavailableError(provider, f"HTTP {reply.status}: {what}", reply.retry_after)
