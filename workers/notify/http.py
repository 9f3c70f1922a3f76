"""HTTP plumbing of the aiohttp-based push providers (Web Push, webhook, FCM).

`post(...)` is one request with its reply read whole (`workers.resilience.http.fetch`); no
reply at all is `Unavailable`. `fail(reply, ...)` raises what a status means to any push
service once the provider has handled the ones its service documents: 429 is `RateLimited`
(with `Retry-After`), 401/403 are our credentials refused, 5xx (and anything unexpected) is
`Unavailable`, any other 4xx is `Rejected`.
"""

from __future__ import annotations

from typing import Any, NoReturn

import aiohttp

from workers.notify.providers import RateLimited, Rejected, Unavailable
from workers.resilience.http import HttpReply, UnreachableError, fetch


async def post(
    session: aiohttp.ClientSession,
    provider: str,
    url: str,
    *,
    timeout: float,  # noqa: ASYNC109 - a per-request aiohttp timeout, not a cancel scope
    **kwargs: Any,
) -> HttpReply:
    try:
        return await fetch(session, "POST", url, timeout=timeout, **kwargs)
    except UnreachableError as exc:
        raise Unavailable(provider, str(exc)) from None


def fail(reply: HttpReply, provider: str, detail: str = "") -> NoReturn:
    what = f"HTTP {reply.status}: {detail or reply.quote()}"
    if reply.status == 429:
        raise RateLimited(provider, what, reply.retry_after)
    if reply.status in (401, 403):
        raise Unavailable(provider, what, credentials=True)
    if 400 <= reply.status < 500:
        raise Rejected(provider, what)
    raise Unavailable(provider, what, reply.retry_after)
