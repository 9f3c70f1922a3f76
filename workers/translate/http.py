"""HTTP plumbing the providers share: one request, the reply read whole, errors classified.

A provider calls `send(...)` (`workers.resilience.http.fetch`), gets an `HttpReply` whatever
the status (a network failure or a timeout is a `ProviderUnavailableError` at once), handles
the statuses its service documents, and hands the rest to `fail` (or `raise_for_status`),
which applies what every service means by them: 429 is "slow down" (with `Retry-After`), 5xx
is "down for now".
"""

from __future__ import annotations

from typing import Any, NoReturn

import aiohttp

from workers.resilience.http import HttpReply, UnreachableError, UnreadableReplyError, fetch
from workers.translate.providers import ProviderUnavailableError, RateLimitedError

__all__ = ["HttpReply", "fail", "json_body", "raise_for_status", "send"]


def json_body(reply: HttpReply, provider: str) -> Any:
    """The body as JSON; an unreadable body means the service is not itself."""
    try:
        return reply.loads()
    except UnreadableReplyError as exc:
        raise ProviderUnavailableError(provider, str(exc)) from None


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
        return await fetch(session, method, url, timeout=timeout, **kwargs)
    except UnreachableError as exc:
        raise ProviderUnavailableError(provider, str(exc)) from None


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
