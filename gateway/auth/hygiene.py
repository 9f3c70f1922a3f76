"""Destination hygiene and sender stamping: what runs on every SUBSCRIBE and SEND first.

``check_destination`` runs before a name reaches the ACL, the relay's prefix parser, a routing
key or a queue name.  Checks, in order (the first failure wins, so messages that echo the
destination only ever echo names made of the allowed characters):

1. not empty;
2. at most ``max_length`` bytes of UTF-8 (RabbitMQ caps routing keys and queue names at 255);
3. only allowed characters: ASCII letters and digits, ``- _ . : @``, ``/`` as the separator,
   and ``*`` / ``#`` (wildcards, SUBSCRIBE only);
4. starts with ``/``;
5. no empty segment: nothing empty between ``/`` or between ``.`` (``/topic/a..b``,
   ``/queue//x``, a trailing ``/`` or ``.``);
6. wildcards: never in SEND; in SUBSCRIBE only in the routing-key part of ``/topic/<key>`` and
   ``/exchange/<name>/<key>``, and only as whole dot-separated words (``room.*``, ``#``).

Whether a wildcard SUBSCRIBE is *allowed* is the ACL's decision (``wildcards = true`` on the
matching rule); hygiene only says whether it is well-formed.  The relay keeps its own parser
for the prefixes and their meaning.

``strip_spoofed_headers`` removes every header a client could use to pass itself off as
someone else and stamps the authenticated user; the gateway calls it on every SEND.
"""

from __future__ import annotations

import string
from collections.abc import Iterable

from gateway.auth.errors import DestinationRejected

__all__ = [
    "ALLOWED_CHARACTERS",
    "DEFAULT_MAX_LENGTH",
    "SPOOFABLE_HEADERS",
    "DestinationRejected",
    "check_destination",
    "strip_spoofed_headers",
]

DEFAULT_MAX_LENGTH = 255
ALLOWED_CHARACTERS = frozenset(string.ascii_letters + string.digits + "-_.:@/*#")
_WILDCARDS = frozenset("*#")
_PATTERN_PREFIXES = ("/topic/", "/exchange/")

# Identity headers a client may not set.  Compared case-insensitively.  ``authorization`` is
# here too: a bearer token in a SEND would otherwise be relayed to every subscriber.
SPOOFABLE_HEADERS = frozenset(
    {
        "sender",
        "sender-id",
        "user",
        "user-id",
        "user-name",
        "from",
        "x-sender",
        "x-user",
        "x-user-id",
        "jms-user-id",
        "authorization",
        "login",
        "passcode",
    }
)
_SPOOFABLE_PREFIXES = ("stompgate-", "x-stompgate-")


#: The allowed characters without the wildcards: a name made of these alone needs no
#: wildcard rules, and is as many UTF-8 bytes long as it has characters.
_PLAIN_CHARACTERS = ALLOWED_CHARACTERS - _WILDCARDS


def check_destination(
    destination: str, *, for_send: bool, max_length: int = DEFAULT_MAX_LENGTH
) -> None:
    """Raise ``DestinationRejected`` with the reason if ``destination`` is not a safe name."""
    # Fast path, every SEND and SUBSCRIBE: a plain, well-formed name passes with a few
    # C-level scans. Anything else (a wildcard, a bad character, an empty segment, too long)
    # takes the full check below, which says what is wrong.
    if (
        destination[:1] == "/"
        and len(destination) <= max_length
        and _PLAIN_CHARACTERS.issuperset(destination)
        and "//" not in destination
        and ".." not in destination
        and "/." not in destination
        and "./" not in destination
        and destination[-1] not in "/."
    ):
        return
    _check_destination(destination, for_send=for_send, max_length=max_length)


def _check_destination(destination: str, *, for_send: bool, max_length: int) -> None:
    if not destination:
        raise DestinationRejected("destination is empty")
    size = len(destination.encode("utf-8", "surrogatepass"))
    if size > max_length:
        raise DestinationRejected(f"destination too long: {size} bytes > {max_length}")
    for position, char in enumerate(destination):
        if char not in ALLOWED_CHARACTERS:
            raise DestinationRejected(
                f"destination has a forbidden character {char!r} at position {position}"
            )
    if not destination.startswith("/"):
        raise DestinationRejected(f"destination must start with '/': '{destination}'")
    for segment in destination[1:].split("/"):
        if segment == "" or "" in segment.split("."):
            raise DestinationRejected(f"destination '{destination}' has an empty segment")
    if not any(char in _WILDCARDS for char in destination):
        return
    if for_send:
        raise DestinationRejected(
            f"wildcards are not allowed in SEND destinations: '{destination}'"
        )
    key = _routing_key(destination)
    if key is None or any(char in _WILDCARDS for char in destination[: -len(key)]):
        raise DestinationRejected(
            "wildcards are only allowed in the routing key of /topic/ and /exchange/ "
            f"subscriptions: '{destination}'"
        )
    for word in key.split("."):
        if word not in _WILDCARDS and any(char in _WILDCARDS for char in word):
            raise DestinationRejected(f"wildcard must be a whole word: '{destination}'")


def _routing_key(destination: str) -> str | None:
    """The routing-key part of a /topic/ or /exchange/<name>/ destination, else None."""
    if destination.startswith("/topic/"):
        return destination[len("/topic/") :]
    if destination.startswith("/exchange/"):
        _name, sep, key = destination[len("/exchange/") :].partition("/")
        return key if sep else None
    return None


def strip_spoofed_headers(
    headers: Iterable[tuple[str, str]],
    user: str,
    *,
    sender_header: str = "sender",
) -> tuple[tuple[str, str], ...]:
    """``headers`` without client-supplied identity headers, with ``sender_header: user`` first.

    Removed (case-insensitive): ``SPOOFABLE_HEADERS``, any ``stompgate-*``/``x-stompgate-*``
    header, and ``sender_header`` itself.  The order of the other headers is kept.
    """
    own = sender_header.lower()
    kept = [(sender_header, user)]
    for header in headers:  # every SEND: one loop, no call per header
        lowered = header[0].lower()
        if not (
            lowered in SPOOFABLE_HEADERS
            or lowered == own
            or lowered.startswith(_SPOOFABLE_PREFIXES)
        ):
            kept.append(header)
    return tuple(kept)
