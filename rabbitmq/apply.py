"""Apply rabbitmq/definitions.json to a running RabbitMQ, idempotently, and say what changed.

``python rabbitmq/apply.py [--amqp-url URL] [--management-url URL] [--vhost NAME] [--dry-run]
[--deployment NAME] [--topic-exchange NAME]``

Run by ``make up`` (scripts/up.sh) and by compose.yaml's ``rabbitmq-setup`` service; standard
library only, so it runs anywhere Python 3.11 does. It talks to the management plugin's HTTP
API: reads what the vhost has (``GET /api/definitions/{vhost}``), compares it with the file and
uploads only what is missing or different (``POST /api/definitions/{vhost}``), which merges:
nothing else on the broker is touched, nothing is ever deleted.

- exchanges, queues and bindings that are missing are created;
- policies that are missing are created, and those that differ are updated (a policy can
  change on a live broker);
- an exchange or queue that exists with other properties is a *conflict*: RabbitMQ cannot
  change them in place (and would ignore the upload), so it is reported with both versions
  and left alone; the script then exits with 1. Deleting a queue loses its messages: that is
  the operator's decision, never this script's.

The file holds the default deployment's names (``stompgate.persist``...). ``--deployment``
(else ``STOMPGATE_DEPLOYMENT``) renames them for another deployment (``blue.persist``, policy
``blue-dead-letters``...), ``--topic-exchange`` (else ``STOMPGATE_TOPIC_EXCHANGE``) binds the
workers' queues to another topic exchange, which is then declared too (durable, topic).

Where: the vhost, user and password come from the AMQP URL (``--amqp-url``, else
``STOMPGATE_AMQP_URL``, the gateway's and the workers' setting, else RabbitMQ's local
default), the management API from ``--management-url`` (default: the AMQP host, port 15672;
``amqps://`` gives ``https://...:15671``). Exit codes: 0 done (or nothing to do), 1 conflicts,
2 the broker or the vhost cannot be reached or refused the upload.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFINITIONS = Path(__file__).with_name("definitions.json")
DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
TAG = "rabbitmq"

#: What identifies each kind of object, and which of its properties must match.
KINDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "exchanges": (("name",), ("type", "durable", "auto_delete", "internal", "arguments")),
    "queues": (("name",), ("durable", "auto_delete", "arguments")),
    "bindings": (
        ("source", "destination", "destination_type", "routing_key", "arguments"),
        (),
    ),
    "policies": (("name",), ("pattern", "apply-to", "priority", "definition")),
}
#: Objects whose properties may change on a live broker (uploading overwrites them).
MUTABLE = frozenset({"policies"})


class ApplyError(Exception):
    """The broker cannot be reached, the vhost does not exist, or an upload was refused."""


@dataclass(frozen=True, slots=True)
class Target:
    management_url: str
    vhost: str
    user: str
    password: str = field(repr=False)

    @classmethod
    def from_urls(
        cls, amqp_url: str, management_url: str | None = None, vhost: str | None = None
    ) -> Target:
        amqp = urllib.parse.urlsplit(amqp_url)
        if amqp.scheme not in ("amqp", "amqps"):
            raise ApplyError(f"not an AMQP URL: {amqp.scheme}://...")
        path = amqp.path[1:] if amqp.path.startswith("/") else amqp.path
        if management_url is None:
            scheme, port = ("https", 15671) if amqp.scheme == "amqps" else ("http", 15672)
            management_url = f"{scheme}://{amqp.hostname or '127.0.0.1'}:{port}"
        mgmt = urllib.parse.urlsplit(management_url)
        user = urllib.parse.unquote(mgmt.username or amqp.username or "guest")
        password = urllib.parse.unquote(mgmt.password or amqp.password or "guest")
        host = mgmt.hostname or "127.0.0.1"
        netloc = f"[{host}]" if ":" in host else host
        if mgmt.port:
            netloc += f":{mgmt.port}"
        base = urllib.parse.urlunsplit((mgmt.scheme, netloc, mgmt.path.rstrip("/"), "", ""))
        chosen = vhost if vhost is not None else (urllib.parse.unquote(path) or "/")
        return cls(base, chosen, user, password)


class ManagementApi:
    """The few calls of RabbitMQ's management HTTP API this script makes."""

    def __init__(self, target: Target, timeout: float = 30.0) -> None:
        self.target = target
        self.timeout = timeout
        token = base64.b64encode(f"{target.user}:{target.password}".encode()).decode()
        self._auth = f"Basic {token}"

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        url = f"{self.target.management_url}/api{path}"
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method=method)  # noqa: S310
        request.add_header("Authorization", self._auth)
        request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                raw = response.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:500]
            raise ApplyError(f"{method} {url}: HTTP {exc.code} {detail}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise ApplyError(
                f"cannot reach RabbitMQ's management API at {url} ({exc}); is the "
                "rabbitmq_management plugin enabled (make services enables it)?"
            ) from None
        return json.loads(raw) if raw else None

    def vhost_path(self) -> str:
        return "/definitions/" + urllib.parse.quote(self.target.vhost, safe="")

    def definitions(self) -> dict[str, Any]:
        try:
            self._call("GET", "/vhosts/" + urllib.parse.quote(self.target.vhost, safe=""))
        except ApplyError as exc:
            if "HTTP 404" in str(exc):
                raise ApplyError(
                    f"vhost {self.target.vhost!r} does not exist on the broker: create it "
                    f"(rabbitmqctl add_vhost {self.target.vhost}) or name another"
                ) from None
            raise
        result: dict[str, Any] = self._call("GET", self.vhost_path())
        return result

    def upload(self, definitions: Mapping[str, Any]) -> None:
        self._call("POST", self.vhost_path(), dict(definitions))


def _key(kind: str, item: Mapping[str, Any]) -> tuple[str, ...]:
    return tuple(json.dumps(item.get(k), sort_keys=True) for k in KINDS[kind][0])


def _props(kind: str, item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: item.get(k) for k in KINDS[kind][1]}


def describe(kind: str, item: Mapping[str, Any]) -> str:
    if kind == "bindings":
        return (
            f"binding {item['source']} -> {item['destination_type']} {item['destination']}"
            f" ({item['routing_key']!r})"
        )
    name = f"{kind[:-1].replace('policie', 'policy')} {item['name']}"
    if kind == "queues":
        arguments = item.get("arguments") or {}
        return f"{name} ({arguments.get('x-queue-type', 'classic')})"
    return name


@dataclass(slots=True)
class Plan:
    """What applying the wanted definitions to what the broker has would do."""

    upload: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    unchanged: int = 0


def plan(wanted: Mapping[str, Any], current: Mapping[str, Any]) -> Plan:
    result = Plan()
    for kind in KINDS:
        have = {_key(kind, item): item for item in current.get(kind) or ()}
        for item in wanted.get(kind) or ():
            existing = have.get(_key(kind, item))
            if existing is None:
                result.upload.setdefault(kind, []).append(dict(item))
                result.created.append(describe(kind, item))
            elif _props(kind, existing) == _props(kind, item):
                result.unchanged += 1
            elif kind in MUTABLE:
                result.upload.setdefault(kind, []).append(dict(item))
                result.updated.append(
                    f"{describe(kind, item)}: {_props(kind, existing)} -> {_props(kind, item)}"
                )
            else:
                result.conflicts.append(
                    f"{kind[:-1]} {item['name']} exists with {_props(kind, existing)}; the"
                    f" definitions want {_props(kind, item)}. RabbitMQ cannot change it in"
                    " place: left as it is (delete it, losing its messages, or change the"
                    " definitions)"
                )
    return result


def load(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ApplyError(f"{path}: not a JSON object")
    unknown = set(data) - set(KINDS) - {"rabbit_version", "rabbitmq_version", "parameters"}
    if unknown:
        raise ApplyError(f"{path}: unexpected keys {sorted(unknown)}")
    return data


DEFAULT_DEPLOYMENT = "stompgate"
DEFAULT_TOPIC_EXCHANGE = "amq.topic"
_DEPLOYMENT = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?")  # chatstate.deployment's rule


def for_deployment(
    data: Mapping[str, Any], deployment: str, topic_exchange: str = DEFAULT_TOPIC_EXCHANGE
) -> dict[str, Any]:
    """The definitions of the default deployment, renamed for ``deployment`` and bound to
    ``topic_exchange`` (declared, durable topic, unless ``amq.topic``)."""
    if not _DEPLOYMENT.fullmatch(deployment):
        raise ValueError(f"--deployment must be 1-32 of a-z, 0-9 and '-', got {deployment!r}")
    if topic_exchange.startswith("amq.") and topic_exchange != DEFAULT_TOPIC_EXCHANGE:
        raise ValueError(
            f"--topic-exchange: only amq.topic of the amq. ones, got {topic_exchange!r}"
        )
    old, new = DEFAULT_DEPLOYMENT + ".", deployment + "."

    def name(value: Any) -> Any:
        if isinstance(value, str) and value.startswith(old):
            return new + value[len(old) :]
        if value == DEFAULT_TOPIC_EXCHANGE:
            return topic_exchange
        return value

    out: dict[str, Any] = json.loads(json.dumps(data))
    for exchange in out.get("exchanges", []):
        exchange["name"] = name(exchange["name"])
    for queue in out.get("queues", []):
        queue["name"] = name(queue["name"])
        arguments = queue.get("arguments", {})
        if "x-dead-letter-routing-key" in arguments:
            arguments["x-dead-letter-routing-key"] = name(arguments["x-dead-letter-routing-key"])
    for binding in out.get("bindings", []):
        binding["source"] = name(binding["source"])
        binding["destination"] = name(binding["destination"])
    for policy in out.get("policies", []):
        if policy["name"].startswith(DEFAULT_DEPLOYMENT + "-"):
            policy["name"] = deployment + policy["name"][len(DEFAULT_DEPLOYMENT) :]
        escaped = "^" + re.escape(DEFAULT_DEPLOYMENT) + "\\."
        if policy["pattern"].startswith(escaped):
            policy["pattern"] = (
                "^" + re.escape(deployment) + "\\." + policy["pattern"][len(escaped) :]
            )
    if topic_exchange != DEFAULT_TOPIC_EXCHANGE:
        out.setdefault("exchanges", []).append(
            {
                "name": topic_exchange,
                "type": "topic",
                "durable": True,
                "auto_delete": False,
                "internal": False,
                "arguments": {},
            }
        )
    return out


def apply(api: ManagementApi, wanted: Mapping[str, Any], *, dry_run: bool = False) -> Plan:
    """Upload what is missing or changed; raises ApplyError."""
    todo = plan(wanted, api.definitions())
    if todo.upload and not dry_run:
        api.upload(todo.upload)
        left = plan(wanted, api.definitions())
        missing = left.created + left.updated
        if missing:
            raise ApplyError(f"the broker did not take: {'; '.join(missing)}")
    return todo


def report(todo: Plan, target: Target, *, dry_run: bool) -> list[str]:
    where = f"vhost {target.vhost!r} at {target.management_url}"
    verb = ("would create", "would update") if dry_run else ("created", "updated")
    lines = [f"{verb[0]} {what}" for what in todo.created]
    lines += [f"{verb[1]} {what}" for what in todo.updated]
    lines += [f"CONFLICT: {what}" for what in todo.conflicts]
    if not todo.created and not todo.updated and not todo.conflicts:
        lines.append(f"{where} has every definition already ({todo.unchanged}); nothing changed")
    else:
        lines.append(f"{where}: {todo.unchanged} definition(s) already there, unchanged")
    return lines


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    env = os.environ if environ is None else environ
    parser = argparse.ArgumentParser(prog="rabbitmq/apply.py", description=__doc__.split("\n")[0])
    parser.add_argument("--amqp-url", default=env.get("STOMPGATE_AMQP_URL") or DEFAULT_AMQP_URL)
    parser.add_argument("--management-url", default=None)
    parser.add_argument("--vhost", default=None, help="default: the AMQP URL's vhost")
    parser.add_argument("--definitions", type=Path, default=DEFINITIONS)
    parser.add_argument("--dry-run", action="store_true", help="say what would change, only")
    parser.add_argument(
        "--deployment",
        default=env.get("STOMPGATE_DEPLOYMENT") or DEFAULT_DEPLOYMENT,
        help="the deployment whose queues to declare (default stompgate)",
    )
    parser.add_argument(
        "--topic-exchange",
        default=env.get("STOMPGATE_TOPIC_EXCHANGE") or DEFAULT_TOPIC_EXCHANGE,
        help="the rooms' topic exchange (default amq.topic)",
    )
    args = parser.parse_args(argv)
    try:
        target = Target.from_urls(args.amqp_url, args.management_url, args.vhost)
        wanted = for_deployment(load(args.definitions), args.deployment, args.topic_exchange)
        todo = apply(ManagementApi(target), wanted, dry_run=args.dry_run)
    except (ApplyError, OSError, ValueError) as exc:
        print(f"{TAG}: {exc}", file=sys.stderr)
        return 2
    for line in report(todo, target, dry_run=args.dry_run):
        print(f"{TAG}: {line}", file=sys.stderr)
    return 1 if todo.conflicts else 0


if __name__ == "__main__":
    sys.exit(main())
