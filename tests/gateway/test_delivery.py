"""The per-session MESSAGE heads of gateway/delivery.py: made once per subscription id,
bounded, and rendering exactly what a full render would."""

from __future__ import annotations

from gateway.delivery import MAX_CACHED_HEADS, MessageHeads
from gateway.stomp import PreparedMessage


def test_a_head_is_made_once_per_subscription_and_renders_as_a_full_render() -> None:
    heads = MessageHeads("1.2", "node-1-")
    message = PreparedMessage("/topic/t", (("x-k", "a:b"),), b"body")
    first = heads["sub:1"]
    assert heads["sub:1"] is first
    for number in (1, 2):
        assert message.render_numbered(heads.version, first, number) == message.render(
            "1.2", "sub:1", f"node-1-{number}"
        )


def test_the_cache_starts_over_when_full() -> None:
    heads = MessageHeads("1.1", "n-")
    kept = heads["s0"]
    for i in range(1, MAX_CACHED_HEADS):
        heads[f"s{i}"]
    assert len(heads) == MAX_CACHED_HEADS
    assert heads["s0"] is kept
    heads["one-more"]
    assert list(heads) == ["one-more"]
    assert heads["s0"] is not kept
