"""The lean AMQP connection over TLS (``amqps://``), against a private RabbitMQ node with a
TLS listener and a certificate authority made for this test."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pamqp import commands as spec

from benchmarks.broker import PrivateBroker, available
from gateway.relay.wire import AmqpWire, ConnectionLostError, Delivery
from tests.support.gateway_proc import free_port

pytestmark = pytest.mark.slow


def _name(text: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])


def make_certificates(folder: Path) -> tuple[Path, Path, Path]:
    """(CA certificate, server certificate, server key) for 127.0.0.1, as PEM files."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("stompgate test CA"))
        .issuer_name(_name("stompgate test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("127.0.0.1"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = (folder / "ca.pem", folder / "server.pem", folder / "server.key")
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    if not available():
        pytest.skip("rabbitmq-server is not installed")
    folder = tmp_path_factory.mktemp("tls")
    ca, cert, key = make_certificates(folder)
    port = free_port()
    broker = PrivateBroker(
        f"listeners.ssl.default = 127.0.0.1:{port}\n"
        f"ssl_options.cacertfile = {ca}\n"
        f"ssl_options.certfile = {cert}\n"
        f"ssl_options.keyfile = {key}\n"
        "ssl_options.verify = verify_none\n"
        "ssl_options.fail_if_no_peer_cert = false\n"
    )
    broker.start()
    try:
        yield port, ca
    finally:
        broker.stop()


async def test_amqps_with_a_private_ca(tls_broker: tuple[int, Path]) -> None:
    port, ca = tls_broker
    query = urllib.parse.urlencode({"cafile": str(ca)})
    wire = await AmqpWire.connect(f"amqps://guest:guest@127.0.0.1:{port}/?{query}", name="tls")
    try:
        publisher = await wire.channel(confirms=True)
        consumer = await wire.channel()
        queue = await consumer.queue_declare("", exclusive=True, auto_delete=True)
        await consumer.queue_bind(queue, "amq.topic", "tls.#")
        got: asyncio.Queue[Delivery] = asyncio.Queue()
        await consumer.basic_consume(queue, got.put_nowait)
        body = b"\x00secret\x00" * 40_000  # several frames, several TLS records
        await publisher.publish("amq.topic", "tls.1", body, spec.Basic.Properties(), timeout=5)
        delivery = await asyncio.wait_for(got.get(), 5)
        assert delivery.body == body
    finally:
        await wire.close()


async def test_amqps_refuses_an_unknown_certificate_authority(
    tls_broker: tuple[int, Path],
) -> None:
    port, _ = tls_broker
    with pytest.raises((ConnectionLostError, OSError), match="CERTIFICATE_VERIFY_FAILED"):
        await AmqpWire.connect(f"amqps://guest:guest@127.0.0.1:{port}/", name="tls, no CA")
