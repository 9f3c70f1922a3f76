"""Durable subscriptions for their users: list and cancel them over STOMP and over HTTP.

A user may have up to ``STOMPGATE_MAX_DURABLE_SUBSCRIPTIONS`` durable subscriptions (50 by
default; see :mod:`gateway.relay.durable`). Besides an UNSUBSCRIBE with ``durable:true`` on the
subscription itself, they can be seen and cancelled from anywhere:

STOMP (request and reply; allowed by the default ACL rules):

* SUBSCRIBE to ``/user/queue/durable-subscriptions`` (answers go there, to every session of
  the user that subscribed to it; each answer carries the request's ``correlation-id``);
* SEND to ``/app/durable-subscriptions/list``: the answer is the listing below;
* SEND to ``/app/durable-subscriptions/delete`` with a header ``queue:<queue>``: the queue is
  deleted with what it held, and the answer is ``{"queue": "<queue>", "deleted": true}``
  (``false``: the user has no durable subscription with that queue).

A RECEIPT for either SEND comes after the work is done (the answer may arrive before or after
it).

HTTP (authenticated like a CONNECT, as the history API: ``Authorization: Bearer <token>``, or
HTTP Basic with a dev login in development mode):

* ``GET /api/durable-subscriptions``: ``200`` and the listing;
* ``DELETE /api/durable-subscriptions/<queue>``: ``200`` and ``{"queue": ..., "deleted":
  true}``, or ``404`` when the user has no such durable subscription.

The listing, as JSON: ``{"user": ..., "namespace": "stompgate.u.<user key>.", "limit": 50,
"subscriptions": [{"queue": ..., "id": ..., "destination": ..., "created": <ms>,
"messages": <ready in the queue, or null if the broker could not say>}, ...]}``;
``namespace`` is the prefix of the queue names the user may give with ``x-queue-name``.
A broker or Redis outage is ``ERROR Durable subscriptions unavailable`` over STOMP and ``503``
over HTTP.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Final

from aiohttp import web

from gateway.access import Identity
from gateway.auth.queue_policy import user_namespace
from gateway.errors import ClientError, ErrorMessage
from gateway.relay.destinations import UserQueue
from gateway.relay.durable import DurableError, DurableSubscriptions
from gateway.stomp import ProtocolMessage

__all__ = ["APP_PREFIX", "REPLY_QUEUE", "DurableApi"]

#: SENDs to destinations under this prefix are the API's.
APP_PREFIX: Final = "/app/durable-subscriptions/"
#: Answers go to the user's ``/user/queue/<this>``.
REPLY_QUEUE: Final = "durable-subscriptions"

Publish = Callable[[str, Sequence[tuple[str, str]], bytes], Awaitable[None]]
Authenticate = Callable[[web.Request], Awaitable[Identity]]


class DurableApi:
    """The durable-subscriptions API of one node; ``publish(destination, headers, body)``
    sends an answer through the relay, on the node's own account."""

    def __init__(
        self, subscriptions: DurableSubscriptions, publish: Publish, deployment: str = "stompgate"
    ) -> None:
        self._deployment = deployment
        self._subscriptions = subscriptions
        self._publish = publish

    # -- STOMP -------------------------------------------------------------------------------

    def handles(self, destination: str) -> bool:
        return destination.startswith(APP_PREFIX)

    async def handle_send(
        self, user: str, destination: str, headers: Sequence[tuple[str, str]], body: bytes
    ) -> None:
        """Carry out a SEND to an ``/app/durable-subscriptions/...`` destination and answer
        on the user's ``/user/queue/durable-subscriptions``."""
        first: dict[str, str] = {}
        for name, value in headers:
            first.setdefault(name, value)
        action = destination[len(APP_PREFIX) :]
        answer: Mapping[str, Any]
        if action == "list":
            answer = await self.listing(user)
        elif action == "delete":
            queue = first.get("queue")
            if not queue:
                raise ClientError(
                    ProtocolMessage.MISSING_HEADER,
                    f"a SEND to {destination} needs a 'queue' header: the queue of the "
                    "durable subscription to delete (as listed by "
                    f"{APP_PREFIX}list)",
                    reason="durable_api",
                )
            answer = {"queue": queue, "deleted": await self._subscriptions.delete(user, queue)}
        else:
            raise ClientError(
                ErrorMessage.UNKNOWN_DESTINATION,
                f"'{destination[:120]}' is not a destination of the durable-subscriptions "
                f"API: use {APP_PREFIX}list or {APP_PREFIX}delete",
                reason="durable_api",
            )
        reply = [("content-type", "application/json")]
        correlation = first.get("correlation-id")
        if correlation is not None:
            reply.append(("correlation-id", correlation))
        await self._publish(str(UserQueue(REPLY_QUEUE, user)), reply, json.dumps(answer).encode())

    async def listing(self, user: str) -> dict[str, Any]:
        infos = await self._subscriptions.list(user)
        return {
            "user": user,
            "namespace": user_namespace(user, self._deployment),
            "limit": self._subscriptions.registry.limit,
            "subscriptions": [info.as_json() for info in infos],
        }

    # -- HTTP --------------------------------------------------------------------------------

    def routes(self, authenticate: Authenticate) -> list[web.RouteDef]:
        """``GET /api/durable-subscriptions`` and ``DELETE /api/durable-subscriptions/<q>``,
        for the user ``authenticate`` finds (it raises ``web.HTTPUnauthorized``)."""

        async def listing(request: web.Request) -> web.Response:
            identity = await authenticate(request)
            return await _answer(self.listing(identity.user))

        async def delete(request: web.Request) -> web.Response:
            identity = await authenticate(request)
            queue = request.match_info["queue"]
            return await _answer(self._deleted(identity.user, queue))

        return [
            web.get("/api/durable-subscriptions", listing),
            web.delete("/api/durable-subscriptions/{queue:.+}", delete),
        ]

    async def _deleted(self, user: str, queue: str) -> dict[str, Any]:
        if not await self._subscriptions.delete(user, queue):
            raise web.HTTPNotFound(
                text=json.dumps({"error": f"user '{user}' has no durable subscription '{queue}'"}),
                content_type="application/json",
            )
        return {"queue": queue, "deleted": True}


async def _answer(work: Awaitable[Mapping[str, Any]]) -> web.Response:
    try:
        return web.json_response(await work)
    except DurableError as exc:
        return web.json_response(
            {"error": exc.message, "detail": exc.detail}, status=503, headers={"Retry-After": "5"}
        )
