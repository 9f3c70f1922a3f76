"""`make fuzz`'s driver (benchmarks/fuzz_stomp.py): it runs every property of test_fuzz.py
plus the raw target, and it catches what it exists to catch: an exception and a hang."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from benchmarks.fuzz_stomp import Target, fuzz, main, node_case, targets
from gateway.stomp import Limits, events


def test_every_target_runs_and_the_codec_holds(tmp_path: Path) -> None:
    names = [t.name for t in targets()]
    assert "raw" in names
    assert {"test_random_bytes", "test_session_never_raises"} <= set(names)
    stats = fuzz(3.0, seed=7, findings_dir=tmp_path, report=lambda line: None)
    assert all(s.executions > 0 for s in stats.values()), stats
    assert [f for s in stats.values() for f in s.findings] == []


def test_the_raw_target_checks_the_session_with_the_property_tests_checker(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from benchmarks import fuzz_stomp
    from tests.stomp import test_fuzz

    checked: list[list[bytes]] = []
    real = test_fuzz.check_fresh_session

    def spy(chunks: list[bytes], limits: Limits) -> list[events.Event]:
        checked.append(chunks)
        return real(chunks, limits)

    monkeypatch.setattr(test_fuzz, "check_fresh_session", spy)
    data = b"CONNECT\n\n\x00SEND\ndestination:/a\n\nx\x00"
    assert fuzz_stomp._raw(data) == "ConnectRequested SendRequested"
    assert [b"".join(chunks) for chunks in checked] == [data]


def _fragile(data: bytes) -> None:
    if b"\x00" in data:
        raise IndexError("the parser fell over")


def _hangs(data: bytes) -> None:
    if b"\n" in data:
        while True:
            pass


def test_an_exception_and_a_hang_are_findings(tmp_path: Path) -> None:
    lines: list[str] = []
    chosen = [Target("fragile", _fragile, [b"SEND\n\n"]), Target("hangs", _hangs, [b"x"])]
    stats = fuzz(
        2.0, chosen=chosen, seed=3, hang_seconds=0.2, findings_dir=tmp_path, report=lines.append
    )
    fragile, hangs = stats["fragile"].findings, stats["hangs"].findings
    assert len(fragile) == 1
    assert fragile[0].reproduced
    assert "IndexError" in fragile[0].error
    assert len(hangs) == 1
    assert hangs[0].reproduced
    assert "HangError" in hangs[0].error
    assert fragile[0].path is not None
    assert fragile[0].path.read_bytes() == fragile[0].data
    assert any(line.startswith("FINDING in fragile") for line in lines)


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(SystemExit):
        main(["--seconds", "0"])


async def _serve(reply: bytes, close: bool, done: asyncio.Event) -> tuple[asyncio.Server, int]:
    """A stand-in for a node that answers every connection with ``reply``, then closes the
    socket (``close``) or holds it open until ``done``."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.read(65536)
            writer.write(reply)
            await writer.drain()
            if not close:
                await done.wait()
        finally:
            writer.close()
            await writer.wait_closed()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


CONNECTED = b"CONNECTED\nversion:1.2\n\n\x00"
ERROR = b"ERROR\nmessage:Bad frame\n\n\x00"


@pytest.mark.parametrize(
    ("reply", "close", "broken"),
    [
        (CONNECTED + ERROR, True, None),
        (CONNECTED, False, None),
        (CONNECTED + ERROR + CONNECTED, True, "frames after an ERROR"),
        (CONNECTED + ERROR, False, "kept the socket open after an ERROR"),
        (b"RECEIPT\nreceipt-id:x\n\n\x00", True, "no CONNECTED"),
        (CONNECTED + b"MESSAGE\ncontent-length:zz\n\n\x00", True, "do not parse"),
    ],
)
async def test_the_live_node_check_tells_a_broken_node(
    reply: bytes, close: bool, broken: str | None
) -> None:
    done = asyncio.Event()
    server, port = await _serve(reply, close, done)
    try:
        if broken is None:
            assert (await node_case(port, b"SEND\n\n\x00")).startswith("CONNECTED")
        else:
            with pytest.raises(AssertionError, match=broken):
                await node_case(port, b"SEND\n\n\x00", close_wait=0.5)
    finally:
        done.set()
        await asyncio.sleep(0.05)  # the handler closes its socket
        server.close()
        await server.wait_closed()
