"""Micro-benchmark of the STOMP codec: ``python -m benchmarks.bench_codec``.

Prints the best-of-rounds cost in microseconds per operation for parsing and
serializing a typical SEND (as STOMP.js sends it) and a 300-byte MESSAGE, and for
rendering a :class:`~gateway.stomp.PreparedMessage` for one more session.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from gateway.stomp import Frame, Parser, PreparedMessage, serialize

ROUNDS = 15
ITERATIONS = 10_000

BODY_300 = (b'{"type":"message","room":"general","text":"' + b"x" * 300)[:298] + b'"}'

SEND = Frame(
    "SEND",
    (
        ("destination", "/app/chat.send"),
        ("content-type", "application/json"),
        ("client-message-id", "c0a80101-0000-4000-8000-000000000001"),
        ("receipt", "receipt-42"),
        ("content-length", "120"),
    ),
    BODY_300[:120],
)

MESSAGE = Frame(
    "MESSAGE",
    (
        ("subscription", "sub-0"),
        ("message-id", "T_sub-0@@session-Y3n8@@1"),
        ("destination", "/topic/room.general"),
        ("content-type", "application/json"),
        ("event-type", "message"),
        ("message-id-64", "7203685477580800001"),
        ("content-length", str(len(BODY_300))),
    ),
    BODY_300,
)


def best_us(operation: Callable[[], object], iterations: int = ITERATIONS) -> float:
    """Best average time per call, in microseconds, over ROUNDS rounds."""
    best = float("inf")
    loop = range(iterations)
    for _ in range(ROUNDS):
        start = time.perf_counter()
        for _ in loop:
            operation()
        best = min(best, time.perf_counter() - start)
    return best / iterations * 1e6


def parse_op(data: bytes) -> Callable[[], object]:
    parser = Parser()

    def parse() -> object:
        parser.feed(data)
        event = parser.next_event()
        assert type(event) is Frame
        return event

    return parse


def main() -> None:
    send_bytes = serialize(SEND)
    message_bytes = serialize(MESSAGE)
    prepared = PreparedMessage(
        "/topic/room.general",
        [
            ("content-type", "application/json"),
            ("event-type", "message"),
            ("message-id-64", "7203685477580800001"),
        ],
        BODY_300,
    )
    prepared.render("1.2", "sub-0", "warm-up")
    results = [
        (f"parse SEND ({len(send_bytes)} B)", best_us(parse_op(send_bytes))),
        (f"parse MESSAGE ({len(message_bytes)} B)", best_us(parse_op(message_bytes))),
        ("serialize SEND", best_us(lambda: serialize(SEND))),
        ("serialize MESSAGE", best_us(lambda: serialize(MESSAGE))),
        (
            "PreparedMessage.render MESSAGE",
            best_us(lambda: prepared.render("1.2", "sub-0", "T_sub-0@@session-Y3n8@@1")),
        ),
        (
            "PreparedMessage build + render",
            best_us(
                lambda: PreparedMessage(
                    "/topic/room.general", [("content-type", "application/json")], BODY_300
                ).render("1.2", "sub-0", "1")
            ),
        ),
    ]
    width = max(len(name) for name, _ in results)
    for name, micros in results:
        print(f"{name:<{width}}  {micros:6.2f} us")


if __name__ == "__main__":
    main()
