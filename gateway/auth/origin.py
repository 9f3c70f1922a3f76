"""The WebSocket ``Origin`` allow-list: may a handshake from this page proceed?

Pure: no clock, no I/O.  The allowed origins and ``require_origin`` are ``AbuseLimits``
fields; a refusal is a ``Breach`` of kind ``origin``.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from gateway.auth.limits import Breach

__all__ = ["origin_allowed", "origin_rejection"]

_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def _split_origin(origin: str) -> tuple[str, str, int] | None:
    """(scheme, hostname, port) of an Origin (or allow-list entry), None if malformed."""
    try:
        parts = urlsplit(origin.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if scheme not in _DEFAULT_PORTS or not host or parts.path not in ("", "/"):
        return None
    return scheme, host, port if port is not None else _DEFAULT_PORTS[scheme]


def _split_host(host: str) -> tuple[str, int | None] | None:
    """(hostname, port or None) of a Host header."""
    try:
        parts = urlsplit(f"//{host.strip()}")
        port = parts.port
    except ValueError:
        return None
    name = (parts.hostname or "").lower()
    return (name, port) if name else None


def _entry_matches(entry: str, scheme: str, host: str, port: int) -> bool:
    entry = entry.strip().lower()
    if "://" not in entry:  # a bare host name: any scheme, any port
        return entry == host or (entry.startswith("*.") and host.endswith(entry[1:]))
    entry_scheme, _, rest = entry.partition("://")
    wildcard = rest.startswith("*.")
    wanted = _split_origin(f"{entry_scheme}://{'x' + rest[1:] if wildcard else rest}")
    if wanted is None:
        return False
    w_scheme, w_host, w_port = wanted
    if w_scheme != scheme or w_port != port:
        return False
    return host.endswith(w_host[1:]) if wildcard else w_host == host


def origin_allowed(
    origin: str | None,
    host: str | None,
    allowed: tuple[str, ...],
    *,
    allow_missing: bool = True,
) -> bool:
    """May a WebSocket handshake with this ``Origin`` proceed?

    - No Origin header: ``allow_missing`` (browsers always send one; non-browser clients often
      do not, and they are not the cross-site threat).  ``AbuseLimits.require_origin`` flips it.
    - The same host as the ``Host`` header is always allowed (hostname equal; if the Host header
      has a port, the origin's port must equal it).
    - Otherwise the origin must match an entry of ``allowed``: ``https://chat.example.com``
      (scheme, host and port must match; default ports implied), ``https://*.example.com``
      (any subdomain, not the apex), a bare ``chat.example.com`` (any scheme and port), or
      ``*`` (anything).  ``null`` (sandboxed frames, ``file:``) passes only if listed.
    """
    if origin is None or origin.strip() == "":
        return allow_missing
    origin = origin.strip()
    if "*" in allowed:
        return True
    if origin.lower() == "null":
        return "null" in allowed
    parsed = _split_origin(origin)
    if parsed is None:
        return False
    scheme, name, port = parsed
    if host:
        own = _split_host(host)
        if own is not None and own[0] == name and (own[1] is None or own[1] == port):
            return True
    return any(_entry_matches(entry, scheme, name, port) for entry in allowed if entry != "null")


def origin_rejection(origin: str | None) -> Breach:
    """The breach for a refused Origin (send as HTTP 403 body or as an ERROR, then close)."""
    shown = "".join(ch if 0x20 < ord(ch) < 0x7F else "?" for ch in (origin or "")[:100])
    return Breach("origin", f"origin not allowed: {shown}")
