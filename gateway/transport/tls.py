"""TLS on the node's own listeners, for deployments without a terminating proxy.

One server context serves both listeners: ``wss://`` on the HTTP/WebSocket port (aiohttp
wraps its sockets) and STOMP over TLS on the TCP port (asyncio wraps them). The STOMP core
and the connections never know: the transports write to a TLS transport as to a plain one.

`server_context` reads the files once, at start, and turns every reason they cannot be used
(unreadable, not PEM, a key that is not the certificate's) into a `ConfigurationError` that
names the setting and the file.
"""

from __future__ import annotations

import ssl

from gateway.settings import ConfigurationError, Settings

__all__ = ["server_context"]

_VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}


def _readable(flag: str, path: str) -> None:
    try:
        with open(path, "rb") as file:
            file.read(1)
    except OSError as exc:
        raise ConfigurationError(f"{flag} {path}: cannot read it: {exc.strerror}") from None


def server_context(settings: Settings) -> ssl.SSLContext | None:
    """The listeners' TLS context, or None without ``--tls-cert``; `ConfigurationError` for
    files that cannot be used."""
    if not settings.tls_cert:
        return None
    _readable("--tls-cert", settings.tls_cert)
    if settings.tls_key:
        _readable("--tls-key", settings.tls_key)
    if settings.tls_client_ca:
        _readable("--tls-client-ca", settings.tls_client_ca)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = _VERSIONS[settings.tls_min_version]
    try:
        context.load_cert_chain(settings.tls_cert, settings.tls_key or None)
    except ssl.SSLError as exc:
        if exc.reason == "KEY_VALUES_MISMATCH":
            why = "the key does not belong to the certificate"
        else:
            why = f"not a PEM certificate and its private key ({exc.reason or exc})"
        key = f" / --tls-key {settings.tls_key}" if settings.tls_key else ""
        raise ConfigurationError(f"--tls-cert {settings.tls_cert}{key}: {why}") from None
    if settings.tls_client_ca:
        try:
            context.load_verify_locations(cafile=settings.tls_client_ca)
        except ssl.SSLError as exc:
            raise ConfigurationError(
                f"--tls-client-ca {settings.tls_client_ca}: not a PEM CA certificate"
                f" ({exc.reason or exc})"
            ) from None
        context.verify_mode = ssl.CERT_REQUIRED
    return context
