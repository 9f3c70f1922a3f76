"""Destination ACLs: a rules file (TOML) decides who may SUBSCRIBE to or SEND where.

Theory of operation
-------------------
Permissions are additive and the default is deny: a SUBSCRIBE or SEND is allowed when *some*
rule allows it, and refused otherwise.  A rule *applies* to a frame when its ``actions`` list
the frame's action and its ``pattern`` matches the destination; it *allows* the frame when all
of its conditions hold.  Conditions within a rule are ANDed; to say "A or B", write two rules.

Rule keys (``[[rule]]`` tables; unknown keys are an error, so a typo never weakens a rule):

- ``pattern``   destination glob.  ``{name}`` captures one word (no ``/`` or ``.``), ``*``
                matches one unnamed word, ``**`` matches the rest (one or more characters,
                ``/`` and ``.`` included).  Everything else is literal.
- ``actions``   ``["subscribe"]``, ``["send"]``, ``["queue"]`` or several.  ``queue`` rules are
                about broker queues a frame uses by name rather than about destinations: their
                pattern is matched against ``/queue/<queue name>`` (see "Queues" below).
- ``roles``     any-of: the identity needs at least one of these roles (token roles claim).
- ``rooms``     template, e.g. ``"{room}"``: the value must be in the token's rooms claim.
- ``member_of`` Redis set key template, e.g. ``"room:{room}:members"``: the user must be a
                member (SISMEMBER through ``MembershipLookup``, which adds its key prefix).
                ``"roster:{room}"`` is the rooms API's membership (`gateway.chat.membership`),
                rebuilt from the store when Redis has lost it.
- ``claims``    table claim -> template: the claim must equal the value, or contain it when the
                claim is a list.
- ``user``      template: the identity's user must equal it (e.g. ``"{owner}"``).
- ``wildcards`` bool, default false: may a SUBSCRIBE through this rule use ``*``/``#``?
- ``reason``    template for the denial reason when this rule is the one reported.

Templates may use the pattern's placeholders and ``{user}``.  When no rule allows a frame, the
reason reported is that of the first rule that applied (rules are read in file order), or
"no rule allows it" when none applied.  Messages look like
``SEND to /topic/room.7 denied: not a member of room 7``.

Cheap checks run first: every rule's static conditions are evaluated before any Redis lookup,
and a membership lookup only runs for a rule whose other conditions already hold.  Redis
errors and a missing ``MembershipLookup`` deny (fail closed).

Identities from development mode (``identity.dev``) are allowed everything.

Queues
------
A SUBSCRIBE or SEND may use broker queues besides its destination: ``x-queue-name`` names one,
``/queue/`` and ``/amq/queue/`` destinations name one, a dead-letter target may be one.  Each
user owns a namespace of queue names (``gateway.auth.queue_policy``); reaching any other queue
by ``x-queue-name``, or a reserved one (``stompgate.*``, ``amq.*``, the operator's list) by
any means, takes a rule with ``actions = ["queue"]`` whose pattern matches
``/queue/<queue name>`` (``**`` for names with dots), e.g. ``pattern = "/queue/reports.**"``.

Call ``check_destination`` (hygiene) before ``Acl.check``: ACL messages echo the destination.
"""

from __future__ import annotations

import logging
import re
import string
import time
import tomllib
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

from gateway.auth.errors import AccessDenied
from gateway.auth.hygiene import ALLOWED_CHARACTERS
from gateway.auth.identity import Identity

__all__ = ["Acl", "Action", "MembershipFallback", "MembershipLookup", "Rule"]

log = logging.getLogger("stompgate.auth")

Action = Literal["send", "subscribe", "queue"]
_ACTIONS: frozenset[str] = frozenset({"send", "subscribe", "queue"})
_VERBS = {"send": "SEND to", "subscribe": "SUBSCRIBE to", "queue": "use of"}
_RULE_KEYS = frozenset(
    {"pattern", "actions", "roles", "rooms", "member_of", "claims", "user", "wildcards", "reason"}
)
_TOKEN = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}|\*\*|\*")
_FORMATTER = string.Formatter()


def _compile(pattern: str) -> tuple[re.Pattern[str], tuple[str, ...]]:
    if not pattern.startswith("/"):
        raise ValueError(f"ACL pattern must start with '/': {pattern!r}")
    parts: list[str] = []
    names: list[str] = []
    position = 0
    for match in _TOKEN.finditer(pattern):
        literal = pattern[position : match.start()]
        if "{" in literal or "}" in literal:
            raise ValueError(f"ACL pattern has a malformed placeholder: {pattern!r}")
        parts.append(re.escape(literal))
        name = match.group(1)
        if name is not None:
            if name in names or name == "user":
                raise ValueError(f"ACL pattern placeholder {{{name}}} is repeated or reserved")
            names.append(name)
            parts.append(f"(?P<{name}>[^/.]+)")
        elif match.group(0) == "**":
            parts.append(".+")
        else:
            parts.append("[^/.]+")
        position = match.end()
    tail = pattern[position:]
    if "{" in tail or "}" in tail:
        raise ValueError(f"ACL pattern has a malformed placeholder: {pattern!r}")
    parts.append(re.escape(tail))
    return re.compile("".join(parts)), tuple(names)


def _template_fields(template: str) -> list[str]:
    try:
        return [name for _text, name, _spec, _conv in _FORMATTER.parse(template) if name]
    except ValueError:
        raise ValueError(f"ACL template is malformed: {template!r}") from None


def _render(template: str, values: Mapping[str, str]) -> str:
    return template.format_map(values)


@dataclass(frozen=True, slots=True)
class Rule:
    """One ACL rule; see the module docstring for the meaning of each field."""

    pattern: str
    actions: frozenset[str]
    roles: frozenset[str] = frozenset()
    rooms: str | None = None
    member_of: str | None = None
    claims: tuple[tuple[str, str], ...] = ()
    user: str | None = None
    wildcards: bool = False
    reason: str | None = None
    regex: re.Pattern[str] = field(init=False, repr=False, compare=False)
    placeholders: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.actions or not self.actions <= _ACTIONS:
            raise ValueError(
                f"ACL rule {self.pattern!r}: actions must be 'send', 'subscribe' and/or 'queue'"
            )
        regex, names = _compile(self.pattern)
        object.__setattr__(self, "regex", regex)
        object.__setattr__(self, "placeholders", names)
        known = {*names, "user"}
        templates = [self.rooms, self.member_of, self.user, self.reason]
        templates += [value for _claim, value in self.claims]
        for template in templates:
            if template is None:
                continue
            for name in _template_fields(template):
                if name not in known:
                    raise ValueError(
                        f"ACL rule {self.pattern!r}: template {template!r} uses {{{name}}}, "
                        "which the pattern does not define"
                    )

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> Rule:
        unknown = set(data) - _RULE_KEYS
        pattern = data.get("pattern")
        if not isinstance(pattern, str):
            raise ValueError("ACL rule needs a 'pattern' string")
        if unknown:
            raise ValueError(f"ACL rule {pattern!r}: unknown key(s) {', '.join(sorted(unknown))}")
        actions = data.get("actions")
        if isinstance(actions, str):
            actions = [actions]
        if not isinstance(actions, list) or not all(isinstance(a, str) for a in actions):
            raise ValueError(f"ACL rule {pattern!r}: 'actions' must be a list of strings")
        roles = data.get("roles", [])
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise ValueError(f"ACL rule {pattern!r}: 'roles' must be a list of strings")
        claims = data.get("claims", {})
        if not isinstance(claims, Mapping) or not all(isinstance(v, str) for v in claims.values()):
            raise ValueError(f"ACL rule {pattern!r}: 'claims' must be a table of strings")
        wildcards = data.get("wildcards", False)
        if not isinstance(wildcards, bool):
            raise ValueError(f"ACL rule {pattern!r}: 'wildcards' must be true or false")
        strings: dict[str, str | None] = {}
        for key in ("rooms", "member_of", "user", "reason"):
            value = data.get(key)
            if value is not None and not isinstance(value, str):
                raise ValueError(f"ACL rule {pattern!r}: {key!r} must be a string")
            strings[key] = value
        return cls(
            pattern=pattern,
            actions=frozenset(a.lower() for a in actions),
            roles=frozenset(roles),
            rooms=strings["rooms"],
            member_of=strings["member_of"],
            claims=tuple(sorted(claims.items())),
            user=strings["user"],
            wildcards=wildcards,
            reason=strings["reason"],
        )

    def match(self, action: str, destination: str) -> dict[str, str] | None:
        """The placeholder values (plus ``user`` filled by the caller) if the rule applies."""
        if action not in self.actions:
            return None
        found = self.regex.fullmatch(destination)
        return None if found is None else found.groupdict()

    def static_failure(
        self, identity: Identity, values: Mapping[str, str], wildcard: bool
    ) -> str | None:
        """The reason this rule refuses, checking everything except Redis membership."""
        if wildcard and not self.wildcards:
            return "wildcard subscriptions are not allowed here"
        if self.roles and not (self.roles & identity.roles):
            names = ", ".join(sorted(self.roles))
            return (
                f"requires role {names}"
                if len(self.roles) == 1
                else f"requires one of roles {names}"
            )
        if self.rooms is not None:
            room = _render(self.rooms, values)
            if room not in identity.rooms:
                return self.membership_reason(self.rooms, values)
        for claim, template in self.claims:
            expected = _render(template, values)
            actual = identity.claims.get(claim)
            ok = (
                any(str(item) == expected for item in actual)
                if isinstance(actual, list)
                else actual is not None and str(actual) == expected
            )
            if not ok:
                return f"claim {claim} does not match"
        if self.user is not None and identity.user != _render(self.user, values):
            return "reserved for another user"
        return None

    def membership_reason(self, template: str, values: Mapping[str, str]) -> str:
        """ "not a member of room 7" for a template with the single placeholder {room}."""
        fields = [name for name in _template_fields(template) if name != "user"]
        if len(fields) == 1:
            return f"not a member of {fields[0]} {values[fields[0]]}"
        return f"not a member of {_render(template, values)}"


class MembershipFallback(Protocol):
    """Where the members of some sets come from when Redis has lost the set (the chat's room
    rosters, rebuilt from the message store's rooms)."""

    def handles(self, key: str) -> bool:
        """Whether ``key`` (without the prefix) is one of its sets."""
        ...

    async def is_member(self, key: str, user: str) -> bool:
        """The answer when the set is missing from Redis (it may rebuild the set)."""
        ...


class MembershipLookup:
    """Is a user in a Redis set?  ``SISMEMBER <key_prefix><key> <user>`` with a small cache.

    Answers (yes and no) are cached for ``cache_ttl`` seconds (0 disables the cache), at most
    ``max_entries`` of them, oldest evicted first.  So a membership change takes effect within
    ``cache_ttl`` seconds on every node; call ``invalidate`` to make it immediate locally (an
    answer still on its way when ``invalidate`` runs is not cached).

    For a key the ``fallback`` handles, a missing set is not an answer: the fallback gives
    it (the set's existence is read in the same round trip as the membership).
    """

    def __init__(
        self,
        redis: Redis,
        key_prefix: str = "",
        *,
        cache_ttl: float = 2.0,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
        fallback: MembershipFallback | None = None,
    ) -> None:
        self._redis = redis
        self.key_prefix = key_prefix
        self._ttl = cache_ttl
        self._max = max_entries
        self._clock = clock
        self._fallback = fallback
        self._generation = 0  # bumped by invalidate()
        self._cache: OrderedDict[tuple[str, str], tuple[float, bool]] = OrderedDict()

    async def is_member(self, key: str, user: str) -> bool:
        cache_key = (key, user)
        now = self._clock()
        if self._ttl > 0:
            hit = self._cache.get(cache_key)
            if hit is not None and hit[0] > now:
                return hit[1]
        generation = self._generation
        fallback = self._fallback
        if fallback is not None and fallback.handles(key):
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.sismember(self.key_prefix + key, user)
                pipe.exists(self.key_prefix + key)
                member, exists = await pipe.execute()
            answer = bool(member) or (not exists and await fallback.is_member(key, user))
        else:
            answer = bool(await self._redis.sismember(self.key_prefix + key, user))
        if self._ttl > 0 and generation == self._generation:
            self._cache[cache_key] = (now + self._ttl, answer)
            self._cache.move_to_end(cache_key)
            while len(self._cache) > self._max:
                self._cache.popitem(last=False)
        return answer

    def invalidate(self, key: str | None = None, user: str | None = None) -> None:
        """Forget cached answers for ``key`` and/or ``user`` (everything if both are None)."""
        self._generation += 1
        if key is None and user is None:
            self._cache.clear()
            return
        for cached in [
            c
            for c in self._cache
            if (key is None or c[0] == key) and (user is None or c[1] == user)
        ]:
            del self._cache[cached]


_UNCHECKED = "room membership cannot be checked right now (Redis unavailable); retry shortly"


def _shown(destination: str) -> str:
    """The destination as echoed in a denial: only hygiene-approved characters, bounded."""
    cleaned = "".join(ch if ch in ALLOWED_CHARACTERS else "?" for ch in destination[:255])
    return cleaned + ("..." if len(destination) > 255 else "")


class Acl:
    """An ordered list of rules; ``check`` raises ``AccessDenied`` or returns."""

    def __init__(self, rules: tuple[Rule, ...] | list[Rule]) -> None:
        self.rules: tuple[Rule, ...] = tuple(rules)

    @classmethod
    def from_toml(cls, text: str) -> Acl:
        data = tomllib.loads(text)
        unknown = set(data) - {"rule", "version"}
        if unknown:
            raise ValueError(f"ACL file: unknown top-level key(s) {', '.join(sorted(unknown))}")
        version = data.get("version", 1)
        if version != 1:
            raise ValueError(f"ACL file: unsupported version {version!r} (expected 1)")
        rules = data.get("rule", [])
        if not isinstance(rules, list) or not all(isinstance(r, dict) for r in rules):
            raise ValueError("ACL file: rules are [[rule]] tables")
        return cls([Rule.from_mapping(item) for item in rules])

    @classmethod
    def from_file(cls, path: str | Path) -> Acl:
        text = Path(path).read_text(encoding="utf-8")
        try:
            acl = cls.from_toml(text)
        except (tomllib.TOMLDecodeError, ValueError) as exc:
            raise ValueError(f"{path}: {exc}") from None
        log.info("loaded %d ACL rule(s) from %s", len(acl.rules), path)
        return acl

    @classmethod
    def default(cls) -> Acl:
        """The rules used when no rules file is configured (documented in docs/security.md)."""
        return cls.from_toml(DEFAULT_RULES)

    async def check(
        self,
        identity: Identity,
        action: Action,
        destination: str,
        *,
        membership: MembershipLookup | None = None,
    ) -> None:
        """Return if ``identity`` may ``action`` on ``destination``; else raise AccessDenied."""
        if identity.dev:
            return
        if action not in _ACTIONS:
            raise ValueError(f"unknown ACL action {action!r}")
        wildcard = action != "queue" and ("*" in destination or "#" in destination)
        applied: list[tuple[Rule, dict[str, str], str | None]] = []
        for rule in self.rules:
            captured = rule.match(action, destination)
            if captured is None:
                continue
            values = {**captured, "user": identity.user}
            failure = rule.static_failure(identity, values, wildcard)
            if failure is None and rule.member_of is None:
                return
            applied.append((rule, values, failure))
        reasons: list[str] = []
        for rule, values, failure in applied:
            if failure is None:
                assert rule.member_of is not None
                failure = await self._membership(rule, rule.member_of, values, identity, membership)
                if failure is None:
                    return
                if failure == _UNCHECKED:  # not the rule's "not a member": say what happened
                    reasons.append(failure)
                    continue
            reasons.append(self._reason(rule, failure, values))
        reason = reasons[0] if reasons else "no rule allows it"
        raise AccessDenied(f"{_VERBS[action]} {_shown(destination)} denied: {reason}")

    @staticmethod
    async def _membership(
        rule: Rule,
        template: str,
        values: Mapping[str, str],
        identity: Identity,
        membership: MembershipLookup | None,
    ) -> str | None:
        """None if the user is in the rule's Redis set, else the reason."""
        if membership is None:
            return "room membership cannot be checked"
        key = _render(template, values)
        try:
            if await membership.is_member(key, identity.user):
                return None
        except RedisError as exc:
            log.error("membership lookup of %s failed: %s", key, exc)
            return _UNCHECKED
        return rule.membership_reason(template, values)

    @staticmethod
    def _reason(rule: Rule, failure: str, values: Mapping[str, str]) -> str:
        return failure if rule.reason is None else _render(rule.reason, values)


DEFAULT_RULES = """
version = 1

# Every user may subscribe to their own queues (/user/queue/... reaches all of their sessions).
[[rule]]
pattern = "/user/queue/**"
actions = ["subscribe"]

# Rooms listed in the token's rooms claim: subscribe to the room topic, post through /app.
[[rule]]
pattern = "/topic/room.{room}"
actions = ["subscribe"]
rooms = "{room}"

[[rule]]
pattern = "/app/rooms/{room}/**"
actions = ["send"]
rooms = "{room}"

# ... or the room's roster: the members of rooms made through the rooms API (cached in Redis,
# rebuilt from the message store's rooms when Redis has lost it).
[[rule]]
pattern = "/topic/room.{room}"
actions = ["subscribe"]
member_of = "roster:{room}"

[[rule]]
pattern = "/app/rooms/{room}/**"
actions = ["send"]
member_of = "roster:{room}"

# Everyone may list and delete their own durable subscriptions (answered on
# /user/queue/durable-subscriptions).
[[rule]]
pattern = "/app/durable-subscriptions/**"
actions = ["send"]

# Everyone may ask for presence and set their own invisible mode (a room's presence, at
# /app/rooms/{room}/presence, follows the room's rules above).
[[rule]]
pattern = "/app/presence/**"
actions = ["send"]
"""
