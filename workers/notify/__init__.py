"""Push notifications for the people who are not there (`python -m workers notify`).

- worker.py: `build_app`, the three consumers and what they are wired to.
- notifier.py: `Notifier`, the rules (who, when, through what).
- collapse.py: `Collapser`, one notification per user per room per window (Redis, Lua).
- queues.py: the worker's queues; `NotifyQueues` publishes the window and send jobs.
- ports.py: `Members`, `Presence`, `Unread`, the protocols it reads rooms and users through,
  and their Redis-backed implementations.
- providers.py: the `PushProvider` interface, `Target`, the provider errors.
- webpush.py, webhook.py, fcm.py, apns.py: the providers; http.py: their HTTP plumbing.
- gate.py: `ProviderGate`, a provider behind concurrency, rate, pause and circuit breaker.
- settings.py: `NotifySettings` from `STOMPGATE_NOTIFY_*`.

Subscriptions and mutes are in the store (`store.PushStore`); users manage them through the
gateway's HTTP API (`/api/me/push-subscriptions`, `/api/me/mutes`).
"""

from workers.notify.providers import PushProvider, Target
from workers.notify.settings import NotifySettings
from workers.notify.worker import build_app

__all__ = ["NotifySettings", "PushProvider", "Target", "build_app"]
