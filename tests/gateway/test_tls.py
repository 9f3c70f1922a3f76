"""TLS on the node's own listeners (``--tls-cert``, gateway/transport/tls.py): ``wss://`` and
STOMP over TLS with a private CA made here (trustme, on the ``cryptography`` package), a
client that does not trust the CA refused at the handshake, plain TCP getting no STOMP,
mutual TLS and the lowest version, and a clear ConfigurationError for unusable files.

A real node in-process (real RabbitMQ vhost and Redis prefix of the run).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
import trustme

from gateway.__main__ import main
from gateway.app import Gateway
from gateway.settings import ConfigurationError, Settings, settings_from
from gateway.transport.tls import server_context
from tests.support.gateway_proc import WS_IMPLS, GatewayProcess, free_port

TOPIC = "/topic/tls-check"
HOST = "127.0.0.1"


@dataclass(frozen=True)
class Pki:
    ca: trustme.CA
    cert: Path
    key: Path
    client_ca: Path

    def client_context(self, *, with_cert: bool = False) -> ssl.SSLContext:
        context = ssl.create_default_context()
        self.ca.configure_trust(context)
        if with_cert:
            self.ca.issue_cert("backend@example.test").configure_cert(context)
        return context


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    ca = trustme.CA()
    issued = ca.issue_cert(HOST, "localhost")
    cert, key, client_ca = tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    issued.cert_chain_pems[0].write_to_path(str(cert))
    issued.private_key_pem.write_to_path(str(key))
    ca.cert_pem.write_to_path(str(client_ca))
    return Pki(ca, cert, key, client_ca)


def tls_settings(
    pki: Pki,
    amqp_url: str,
    redis_url: str,
    redis_prefix: str,
    *,
    tls_client_ca: str = "",
    tls_min_version: str = "1.2",
    ws_impl: str = "lean",
) -> Settings:
    return Settings(
        http_host=HOST,
        http_port=0,
        stomp_host=HOST,
        stomp_port=free_port(),
        amqp_url=amqp_url,
        redis_url=redis_url,
        redis_prefix=redis_prefix,
        auth="dev",
        node_id="gw-tls",
        heartbeat_send_ms=0,
        heartbeat_receive_ms=0,
        tls_cert=str(pki.cert),
        tls_key=str(pki.key),
        tls_client_ca=tls_client_ca,
        tls_min_version=tls_min_version,
        ws_impl=ws_impl,
    )


@pytest.fixture
async def node(
    request: pytest.FixtureRequest, pki: Pki, amqp_url: str, redis_url: str, redis_prefix: str
) -> AsyncIterator[Gateway]:
    """A TLS node; ``wss`` over the WebSocket path given as the parameter (default lean)."""
    ws_impl = getattr(request, "param", "lean")
    gateway = Gateway(tls_settings(pki, amqp_url, redis_url, redis_prefix, ws_impl=ws_impl))
    await gateway.start()
    try:
        yield gateway
    finally:
        await gateway.stop()


def frame(command: str, *headers: str, body: str = "") -> bytes:
    return ("\n".join((command, *headers)) + "\n\n" + body + "\x00").encode()


CONNECT = frame("CONNECT", "accept-version:1.2", "host:/", "login:guest", "passcode:guest")


class TcpStomp:
    """STOMP over an ssl-wrapped socket (asyncio streams), frame by frame."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int, context: ssl.SSLContext | None) -> TcpStomp:
        reader, writer = await asyncio.open_connection(HOST, port, ssl=context)
        return cls(reader, writer)

    async def exchange(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def next_frame(self) -> bytes:
        while True:
            data = await asyncio.wait_for(self.reader.readuntil(b"\x00"), 10)
            data = data.lstrip(b"\r\n")
            if data:
                return data

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await self.writer.wait_closed()


class WsStomp:
    """STOMP over a WebSocket: one message may carry several frames."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.frames: list[bytes] = []

    async def next_frame(self) -> bytes:
        while not self.frames:
            message = await asyncio.wait_for(self.ws.receive(), 10)
            assert message.type is aiohttp.WSMsgType.TEXT, message
            parts = str(message.data).encode().split(b"\x00")
            self.frames += [part.lstrip(b"\r\n") + b"\x00" for part in parts[:-1]]
            self.frames = [f for f in self.frames if f != b"\x00"]
        return self.frames.pop(0)


@pytest.mark.parametrize("node", WS_IMPLS, indirect=True)
async def test_stomp_over_tls_and_wss_connect_subscribe_send_and_receive(
    node: Gateway, pki: Pki
) -> None:
    trusting = pki.client_context()
    tcp = await TcpStomp.open(node.stomp_port, trusting)
    async with aiohttp.ClientSession() as http:
        url = f"wss://{HOST}:{node.http_port}/ws"
        async with http.ws_connect(url, ssl=trusting, protocols=("v12.stomp",)) as ws:
            wss = WsStomp(ws)
            try:
                await tcp.exchange(CONNECT)
                assert (await tcp.next_frame()).startswith(b"CONNECTED\n")
                await ws.send_str(CONNECT.decode())
                assert (await wss.next_frame()).startswith(b"CONNECTED\n")

                subscribe = frame("SUBSCRIBE", "id:0", f"destination:{TOPIC}", "receipt:sub")
                await tcp.exchange(subscribe)
                assert (await tcp.next_frame()).startswith(b"RECEIPT\nreceipt-id:sub")
                await ws.send_str(subscribe.decode())
                assert (await wss.next_frame()).startswith(b"RECEIPT\nreceipt-id:sub")

                await tcp.exchange(frame("SEND", f"destination:{TOPIC}", body="from tcp"))
                await ws.send_str(frame("SEND", f"destination:{TOPIC}", body="from wss").decode())
                tcp_got = {(await tcp.next_frame()).split(b"\n\n", 1)[1] for _ in range(2)}
                ws_got = {(await wss.next_frame()).split(b"\n\n", 1)[1] for _ in range(2)}
                assert tcp_got == ws_got == {b"from tcp\x00", b"from wss\x00"}
            finally:
                await tcp.close()
    # The HTTP API is served over the same TLS listener.
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"https://{HOST}:{node.http_port}/healthz", ssl=trusting) as response,
    ):
        assert response.status == 200


@dataclass
class TlsGatewayProcess(GatewayProcess):
    """A gateway process (uvloop, as deployed) serving TLS: its URLs are https and wss."""

    @property
    def http_url(self) -> str:
        return f"https://{HOST}:{self.http_port}"

    @property
    def ws_url(self) -> str:
        return f"wss://{HOST}:{self.http_port}/ws"


@pytest.mark.parametrize("ws_impl", WS_IMPLS)
async def test_wss_on_a_gateway_process_with_uvloop(
    pki: Pki, amqp_url: str, log_dir: Path, monkeypatch: pytest.MonkeyPatch, ws_impl: str
) -> None:
    """The lean path takes a TLS socket over (``set_protocol`` on uvloop's SSL transport)."""
    monkeypatch.setenv("SSL_CERT_FILE", str(pki.client_ca))  # the readiness check trusts it
    node = TlsGatewayProcess(
        amqp_url=amqp_url,
        node_id=f"gw-wss-{ws_impl}",
        ws_impl=ws_impl,
        extra_args=("--tls-cert", str(pki.cert), "--tls-key", str(pki.key)),
    )
    node.start(log_dir)
    try:
        async with (
            aiohttp.ClientSession() as http,
            http.ws_connect(node.ws_url, ssl=pki.client_context(), protocols=("v12.stomp",)) as ws,
        ):
            served_by_aiohttp = "aiohttp" in ws._response.headers.get("Server", "")
            assert served_by_aiohttp is (ws_impl == "aiohttp")
            await ws.send_str(CONNECT.decode())
            assert (await WsStomp(ws).next_frame()).startswith(b"CONNECTED\n")
            await ws.ping(b"still there")
            await ws.send_str(frame("DISCONNECT", "receipt:bye").decode())
            assert (await WsStomp(ws).next_frame()).startswith(b"RECEIPT\nreceipt-id:bye")
            closing = await asyncio.wait_for(ws.receive(), 10)
            assert closing.type is aiohttp.WSMsgType.CLOSE
            assert closing.data == 1000
    finally:
        node.stop()


async def test_a_client_not_trusting_the_ca_fails_the_handshake(node: Gateway) -> None:
    untrusting = ssl.create_default_context()  # the system's CAs only
    with pytest.raises(ssl.SSLCertVerificationError):
        await TcpStomp.open(node.stomp_port, untrusting)
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            await http.ws_connect(f"wss://{HOST}:{node.http_port}/ws", ssl=untrusting)


async def test_plain_tcp_to_the_tls_port_gets_no_stomp(node: Gateway) -> None:
    plain = await TcpStomp.open(node.stomp_port, None)
    try:
        await plain.exchange(CONNECT)
        answer = b""
        while chunk := await asyncio.wait_for(plain.reader.read(4096), 10):
            answer += chunk
    except ConnectionError:
        answer = b""
    finally:
        await plain.close()
    assert b"CONNECTED" not in answer
    assert b"ERROR" not in answer


async def test_mutual_tls_and_the_lowest_version(
    pki: Pki, amqp_url: str, redis_url: str, redis_prefix: str
) -> None:
    settings = tls_settings(
        pki,
        amqp_url,
        redis_url,
        redis_prefix,
        tls_client_ca=str(pki.client_ca),
        tls_min_version="1.3",
    )
    gateway = Gateway(settings)
    await gateway.start()
    try:
        with_cert = await TcpStomp.open(gateway.stomp_port, pki.client_context(with_cert=True))
        await with_cert.exchange(CONNECT)
        assert (await with_cert.next_frame()).startswith(b"CONNECTED\n")
        await with_cert.close()

        # Without a client certificate: TLS 1.3 clients learn of the refusal on their first read.
        without = await asyncio.wait_for(
            TcpStomp.open(gateway.stomp_port, pki.client_context()), 10
        )
        await without.exchange(CONNECT)
        with pytest.raises((ssl.SSLError, ConnectionError, asyncio.IncompleteReadError)):
            await without.next_frame()
        await without.close()

        old = pki.client_context(with_cert=True)
        old.maximum_version = ssl.TLSVersion.TLSv1_2
        with pytest.raises((ssl.SSLError, ConnectionError)):
            await TcpStomp.open(gateway.stomp_port, old)
    finally:
        await gateway.stop()


def test_unusable_files_are_a_configuration_error(pki: Pki, tmp_path: Path) -> None:
    missing = tmp_path / "missing.pem"
    with pytest.raises(ConfigurationError, match=r"--tls-cert .*missing\.pem: cannot read it"):
        server_context(Settings(tls_cert=str(missing)))
    with pytest.raises(ConfigurationError, match=r"--tls-key .*missing\.pem: cannot read it"):
        server_context(Settings(tls_cert=str(pki.cert), tls_key=str(missing)))
    other_key = tmp_path / "other-key.pem"
    pki.ca.issue_cert("elsewhere.test").private_key_pem.write_to_path(str(other_key))
    with pytest.raises(ConfigurationError, match="the key does not belong to the certificate"):
        server_context(Settings(tls_cert=str(pki.cert), tls_key=str(other_key)))
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    mismatch = r"--tls-cert .*garbage\.pem / --tls-key .*: not a PEM"
    with pytest.raises(ConfigurationError, match=mismatch):
        server_context(Settings(tls_cert=str(garbage), tls_key=str(pki.key)))
    with pytest.raises(ConfigurationError, match=r"--tls-client-ca .*garbage\.pem: not a PEM"):
        server_context(
            Settings(tls_cert=str(pki.cert), tls_key=str(pki.key), tls_client_ca=str(garbage))
        )
    with pytest.raises(ConfigurationError, match=r"--tls-min-version must be 1\.2 or 1\.3"):
        settings_from({}, {"STOMPGATE_TLS_MIN_VERSION": "1.1"})
    with pytest.raises(ConfigurationError, match="need --tls-cert"):
        settings_from({}, {"STOMPGATE_TLS_KEY": str(pki.key)})
    assert server_context(Settings()) is None


def test_the_node_refuses_to_start_with_an_unreadable_certificate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "missing.pem"
    argv = ["--tls-cert", str(missing), "--uvloop", "false", "--log-format", "console"]
    assert main(argv) == 1
    assert f"stompgate: --tls-cert {missing}: cannot read it" in capsys.readouterr().err
