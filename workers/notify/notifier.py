"""The notify worker's decisions: who hears of a message, when, through what.

- `on_message(message)`: the room's members other than the sender who are not online are
  noted for the room's collapse window (collapse.py); a window that opens schedules a job.
- `on_due(job)`: the window is over. Nothing goes out when the user came online, read the
  room up to the latest message, or muted the room meanwhile, or has nowhere to receive it;
  otherwise one push.notification.v1 (the latest message's preview, the unread count) is
  queued once per target: each of the user's subscriptions whose provider is configured,
  and the deployment's webhook. Then the window closes (or passes to a newer message).
- `on_send(notification, body, target)`: one target through its provider's gate. A gone
  subscription is removed; a refused notification is dead-lettered at once; anything else
  that fails is raised, so the framework retries it with backoff, then dead-letters it.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Mapping

import msgspec
from prometheus_client import CollectorRegistry, Counter

from schemas.models import ChatMessage, PushNotification
from store.push import PushStore
from workers.framework import DeadLetter
from workers.notify.collapse import Collapser, Latest
from workers.notify.gate import ProviderGate
from workers.notify.ports import Members, Presence, Unread
from workers.notify.providers import (
    WEBHOOK,
    ProviderError,
    Rejected,
    SubscriptionGone,
    Target,
)
from workers.notify.queues import DueJob, NotifyQueues

log = logging.getLogger("stompgate.workers.notify")

MAX_TITLE = 200
MAX_BODY = 1000
_encode = msgspec.json.Encoder().encode


def preview(text: str, chars: int) -> str:
    """The first `chars` characters of a message (with an ellipsis when cut), at most 1000."""
    chars = min(chars, MAX_BODY - 1)
    if chars <= 0:
        return ""
    return text if len(text) <= chars else text[:chars].rstrip() + "\u2026"


class NotifyMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.skipped = Counter(
            "stompgate_notify_skipped",
            "Notifications not sent, by reason (online, read, muted, no_target, stale).",
            ["reason"],
            registry=registry,
        )
        self.sent = Counter(
            "stompgate_notify_sent", "Notifications a provider accepted.", ["provider"],
            registry=registry,
        )  # fmt: skip
        self.gone = Counter(
            "stompgate_notify_subscriptions_removed",
            "Subscriptions removed because the provider reported them gone.",
            ["provider"],
            registry=registry,
        )
        self.errors = Counter(
            "stompgate_notify_provider_errors",
            "Failed sends, by provider and error (retried unless rejected).",
            ["provider", "error"],
            registry=registry,
        )


class Notifier:
    def __init__(
        self,
        *,
        members: Members,
        presence: Presence,
        unread: Unread,
        store: PushStore,
        collapser: Collapser,
        queues: NotifyQueues,
        gates: Mapping[str, ProviderGate],
        webhook_url: str | None,
        preview_chars: int,
        metrics: NotifyMetrics,
    ) -> None:
        self.members = members
        self.presence = presence
        self.unread = unread
        self.store = store
        self.collapser = collapser
        self.queues = queues
        self.gates = dict(gates)
        self.webhook_url = webhook_url
        self.preview_chars = preview_chars
        self.metrics = metrics

    async def on_message(self, message: ChatMessage) -> None:
        candidates = sorted(await self.members.members_of(message.room) - {message.sender})
        if not candidates:
            return
        online = await asyncio.gather(*(self.presence.is_online(u) for u in candidates))
        away = [user for user, here in zip(candidates, online, strict=True) if not here]
        if len(away) < len(candidates):
            self.metrics.skipped.labels(reason="online").inc(len(candidates) - len(away))
        latest = Latest(
            int(message.id),
            message.sender,
            preview(message.text, self.preview_chars),
            message.sent_at,
        )
        for user, token in await self.collapser.note(away, message.room, latest):
            await self.queues.schedule(DueJob(user, message.room, token))

    async def on_due(self, job: DueJob) -> None:
        latest = await self.collapser.peek(job.user, job.room, job.token)
        if latest is None:
            self.metrics.skipped.labels(reason="stale").inc()
            return
        reason = await self._why_not(job.user, job.room, latest)
        if reason is None:
            targets = await self._targets(job.user)
            if targets:
                await self._queue(job, latest, targets)
            else:
                reason = "no_target"
        if reason is not None:
            self.metrics.skipped.labels(reason=reason).inc()
            log.debug("no notification to %s for room %s: %s", job.user, job.room, reason)
        again = await self.collapser.commit(job.user, job.room, job.token, latest)
        if again is not None:
            await self.queues.schedule(DueJob(job.user, job.room, again))

    async def on_send(self, notification: PushNotification, body: bytes, target_id: str) -> None:
        target = await self._target(notification.user, target_id)
        if target is None:
            self.metrics.skipped.labels(reason="no_target").inc()
            return
        gate = self.gates[target.kind]
        try:
            await gate.send(target, notification, body)
        except SubscriptionGone as exc:
            self.metrics.gone.labels(provider=gate.name).inc()
            if target.kind != WEBHOOK:
                await self.store.delete_subscription(target.id)
            log.info("removed %s subscription %s of %s: %s", gate.name, target.id,
                     notification.user, exc.message)  # fmt: skip
            return
        except Rejected as exc:
            self.metrics.errors.labels(provider=gate.name, error="rejected").inc()
            raise DeadLetter(str(exc)) from exc
        except ProviderError as exc:
            error = type(exc).__name__.lower()
            self.metrics.errors.labels(provider=gate.name, error=error).inc()
            raise
        self.metrics.sent.labels(provider=gate.name).inc()

    # -- helpers --------------------------------------------------------------------------

    async def _why_not(self, user: str, room: str, latest: Latest) -> str | None:
        if await self.presence.is_online(user):
            return "online"
        last_read = await self.unread.last_read(user, room)
        if last_read is not None and last_read >= latest.message_id:
            return "read"
        if await self.store.is_muted(user, room):
            return "muted"
        return None

    async def _targets(self, user: str) -> list[Target]:
        targets = [
            Target(s.id, s.kind, s.address, s.p256dh, s.auth)
            for s in await self.store.subscriptions(user)
            if s.kind in self.gates
        ]
        webhook = self._webhook()
        return [*targets, webhook] if webhook is not None else targets

    async def _target(self, user: str, target_id: str) -> Target | None:
        if target_id == WEBHOOK:
            return self._webhook()
        s = await self.store.subscription(target_id)
        if s is None or s.user != user or s.kind not in self.gates:
            return None  # removed (or its provider switched off) since it was queued
        return Target(s.id, s.kind, s.address, s.p256dh, s.auth)

    def _webhook(self) -> Target | None:
        if self.webhook_url is None or WEBHOOK not in self.gates:
            return None
        return Target(WEBHOOK, WEBHOOK, self.webhook_url)

    async def _queue(self, job: DueJob, latest: Latest, targets: list[Target]) -> None:
        unread = await self.unread.unread(job.user, job.room)
        notification = PushNotification(
            v=1,
            type="notification",
            user=job.user,
            room=job.room,
            message_id=str(latest.message_id),
            title=latest.sender[:MAX_TITLE],
            body=latest.text[:MAX_BODY],
            sent_at=latest.sent_at,
            data={"unread": unread, "sender": latest.sender[:256]},
        )
        body = _encode(notification)
        user_hash = hashlib.blake2b(job.user.encode(), digest_size=8).hexdigest()
        for target in targets:  # the key (an AMQP message id: short) makes a resend a repeat
            await self.queues.send(body, target.id, f"{latest.message_id}:{target.id}:{user_hash}")
