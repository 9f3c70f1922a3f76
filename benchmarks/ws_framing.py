"""What the lean WebSocket path's framing costs, against the sans-I/O libraries it could use.

    python -m benchmarks.ws_framing [--frames 20000] [--size 300] [--sessions 2000]

For each candidate: µs of CPU to parse and unmask one masked client frame of ``--size`` bytes
fed one per read (a STOMP SEND as a browser writes it), µs per frame when 10 frames arrive
in one read, and bytes of Python heap per idle session after the handshake (tracemalloc,
``--sessions`` of them). Candidates: the node's own reader (gateway/transport/wsframe.py),
wsproto's ``WSConnection`` and websockets' sans-I/O ``ServerProtocol`` (each skipped with a
line if not installed; wsproto comes with the dev dependencies, websockets does not), and,
for reference, unmasking alone (the int trick, websockets' C ``apply_mask``, aiohttp's).
Single-threaded and CPU-bound: noisy on a shared machine, so each figure is the best of 5.
"""

from __future__ import annotations

import argparse
import base64
import functools
import gc
import os
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

from gateway.transport.lean_ws import LeanWebSocket
from gateway.transport.wsframe import OP_TEXT, FrameReader, unmask, unmask_int

REQUEST = (
    b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: " + base64.b64encode(os.urandom(16)) + b"\r\n"
    b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: v12.stomp\r\n\r\n"
)


def client_frame(payload: bytes, opcode: int = OP_TEXT) -> bytes:
    mask = os.urandom(4)
    size = len(payload)
    if size < 126:
        head = bytes((0x80 | opcode, 0x80 | size))
    elif size < 65536:
        head = bytes((0x80 | opcode, 0x80 | 126)) + size.to_bytes(2, "big")
    else:
        head = bytes((0x80 | opcode, 0x80 | 127)) + size.to_bytes(8, "big")
    return head + mask + unmask(payload, mask)


def best(run: Callable[[], object], count: int, rounds: int = 5) -> float:
    """Best µs per item of ``run`` (which handles ``count`` items) over ``rounds``."""
    times = []
    for _ in range(rounds):
        start = time.process_time()
        run()
        times.append(time.process_time() - start)
    return min(times) / count * 1e6


class Own:
    name = "own (wsframe.FrameReader)"

    @staticmethod
    def make() -> object:
        return FrameReader(1 << 20)

    @staticmethod
    def parse(chunks: list[bytes]) -> int:
        reader = FrameReader(1 << 20)
        got = 0
        for chunk in chunks:
            got += len(reader.feed(chunk))
        return got

    @staticmethod
    def session() -> object:
        return FrameReader(1 << 20)


class Wsproto:
    name = "wsproto WSConnection"

    @staticmethod
    def session() -> object:
        from wsproto import ConnectionType, WSConnection
        from wsproto.events import AcceptConnection

        conn = WSConnection(ConnectionType.SERVER)
        conn.receive_data(REQUEST)
        for _ in conn.events():
            pass
        conn.send(AcceptConnection(subprotocol="v12.stomp"))
        return conn

    @classmethod
    def parse(cls, chunks: list[bytes]) -> int:
        from wsproto.events import TextMessage

        conn = cls.session()
        got = 0
        for chunk in chunks:
            conn.receive_data(chunk)  # type: ignore[attr-defined]
            for event in conn.events():  # type: ignore[attr-defined]
                got += isinstance(event, TextMessage)
        return got


class Websockets:
    name = "websockets ServerProtocol"

    @staticmethod
    def session() -> object:
        from websockets.server import ServerProtocol

        protocol = ServerProtocol(max_size=1 << 20)
        protocol.receive_data(REQUEST)
        request = protocol.events_received()[0]
        protocol.send_response(protocol.accept(request))  # type: ignore[arg-type]
        protocol.data_to_send()
        return protocol

    @classmethod
    def parse(cls, chunks: list[bytes]) -> int:
        protocol = cls.session()
        got = 0
        for chunk in chunks:
            protocol.receive_data(chunk)  # type: ignore[attr-defined]
            got += len(protocol.events_received())  # type: ignore[attr-defined]
        return got


class _Transport:
    """Stands for the transport an idle session holds (not counted: every path has one)."""


def available(candidate: Any) -> bool:
    try:
        candidate.session()
    except ImportError as exc:
        print(f"{candidate.name}: skipped ({exc.name} not installed)")
        return False
    return True


def heap_per_session(make: Callable[[], object], sessions: int) -> float:
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    kept = [make() for _ in range(sessions)]
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del kept
    return (after - before) / sessions


def _unmask_all(
    function: Callable[[bytes, bytes], object], items: list[tuple[bytes, bytes]]
) -> None:
    for data, mask in items:
        function(data, mask)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=20000)
    parser.add_argument("--size", type=int, default=300)
    parser.add_argument("--sessions", type=int, default=2000)
    args = parser.parse_args()
    payload = (b"SEND\ndestination:/topic/room.1\n\n" + b"x" * args.size)[: args.size]
    frames = [client_frame(payload) for _ in range(args.frames)]
    batched = [b"".join(frames[i : i + 10]) for i in range(0, len(frames), 10)]
    print(f"{args.frames} masked text frames of {args.size} bytes; best of 5 (process CPU)")
    print(f"{'candidate':32} {'µs/frame':>9} {'µs/frame x10':>13} {'B/idle session':>15}")
    candidates: tuple[Any, ...] = (Own, Wsproto, Websockets)
    for candidate in candidates:
        if not available(candidate):
            continue
        one = best(functools.partial(candidate.parse, frames), args.frames)
        ten = best(functools.partial(candidate.parse, batched), args.frames)
        heap = heap_per_session(candidate.session, args.sessions)
        print(f"{candidate.name:32} {one:9.2f} {ten:13.2f} {heap:15.0f}")
    lean = heap_per_session(lambda: LeanWebSocket(_Transport(), 1 << 20), args.sessions)  # type: ignore[arg-type]
    print(f"{'own: LeanWebSocket + its reader':32} {'':9} {'':13} {lean:15.0f}")
    offset = 2 if args.size < 126 else 4 if args.size < 65536 else 10
    masks = [(f[offset + 4 :], f[offset : offset + 4]) for f in frames[:2000]]
    unmaskers: list[tuple[str, Callable[[bytes, bytes], object]]] = [
        ("int trick (unmask_int)", unmask_int),
        ("in use (wsframe.unmask)", unmask),
    ]
    try:
        from websockets.speedups import apply_mask

        unmaskers.append(("websockets.speedups.apply_mask", apply_mask))
    except ImportError:
        pass
    try:
        from aiohttp._websocket.helpers import websocket_mask

        def aiohttp_mask(data: bytes, mask: bytes) -> object:
            buffer = bytearray(data)
            websocket_mask(mask, buffer)
            return buffer

        unmaskers.append(("aiohttp websocket_mask", aiohttp_mask))
    except ImportError:
        pass
    for name, function in unmaskers:
        cost = best(functools.partial(_unmask_all, function, masks), len(masks))
        print(f"unmask {args.size} B, {name:32} {cost:6.3f} µs")


if __name__ == "__main__":
    main()
