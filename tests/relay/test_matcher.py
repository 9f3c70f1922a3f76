"""Local AMQP topic matching: the trie against a regex reference implementation."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.relay.matcher import TopicTrie, split_words, topic_matches

SEP = "\x1f"


def reference(pattern: str, key: str) -> bool:
    """AMQP topic matching as a regex over words, each terminated by a separator."""
    parts = []
    for word in split_words(pattern):
        if word == "*":
            parts.append(f"[^{SEP}]*{SEP}")
        elif word == "#":
            parts.append(f"(?:[^{SEP}]*{SEP})*")
        else:
            parts.append(re.escape(word) + SEP)
    subject = "".join(word + SEP for word in split_words(key))
    return re.fullmatch("".join(parts), subject) is not None


CASES = [
    ("a.b.c", "a.b.c", True),
    ("a.b.c", "a.b", False),
    ("a.*.c", "a.b.c", True),
    ("a.*.c", "a.c", False),
    ("a.*", "a.b.c", False),
    ("a.#", "a", True),
    ("a.#", "a.b.c", True),
    ("#", "", True),
    ("#", "anything.at.all", True),
    ("*", "", False),
    ("*", "one", True),
    ("#.c", "c", True),
    ("#.c", "a.b.c", True),
    ("#.c", "a.b.c.d", False),
    ("a.#.z", "a.z", True),
    ("a.#.z", "a.b.c.z", True),
    ("a.#.#.z", "a.z", True),
    ("*.#", "", False),
    ("*.#", "x", True),
    ("room.1", "room.10", False),
    ("", "", True),
    ("", "a", False),
]


def test_table() -> None:
    for pattern, key, expected in CASES:
        assert reference(pattern, key) is expected, (pattern, key)
        assert topic_matches(pattern, key) is expected, (pattern, key)
        trie: TopicTrie[str] = TopicTrie()
        trie.add(pattern, "x")
        assert (trie.match(key) == ("x",)) is expected, (pattern, key)


def test_reference_counting() -> None:
    trie: TopicTrie[str] = TopicTrie()
    assert trie.add("room.1", "s1") is True
    assert trie.add("room.1", "s2") is False
    assert trie.add("room.1", "s2") is False  # same item twice: no-op
    assert trie.count("room.1") == 2
    assert trie.add("room.*", "s3") is True
    assert set(trie.match("room.1")) == {"s1", "s2", "s3"}
    assert trie.remove("room.1", "s1") is False
    assert trie.remove("room.1", "nobody") is False
    assert trie.remove("room.1", "s2") is True
    assert trie.count("room.1") == 0
    assert trie.match("room.1") == ("s3",)
    assert sorted(trie.patterns()) == ["room.*"]
    assert trie.remove("room.*", "s3") is True
    assert len(trie) == 0
    assert trie.match("room.1") == ()
    assert trie.remove("never.added", "s") is False


def test_each_item_once_even_with_overlapping_hashes() -> None:
    trie: TopicTrie[str] = TopicTrie()
    trie.add("#.#", "a")
    trie.add("#", "b")
    trie.add("a.#", "c")
    assert sorted(trie.match("a.b.c")) == ["a", "b", "c"]


def test_cache_invalidated_by_changes() -> None:
    trie: TopicTrie[str] = TopicTrie()
    trie.add("k", "a")
    assert trie.match("k") == ("a",)
    trie.add("k", "b")
    assert sorted(trie.match("k")) == ["a", "b"]
    trie.remove("k", "a")
    assert trie.match("k") == ("b",)


def test_many_patterns_are_not_scanned() -> None:
    trie: TopicTrie[int] = TopicTrie()
    for room in range(20_000):
        trie.add(f"room.{room}", room)
    trie.add("room.*", -1)
    assert sorted(trie.match("room.12345")) == [-1, 12345]


WORDS = st.sampled_from(["a", "b", "c", "", "ab"])
PATTERN_WORDS = st.sampled_from(["a", "b", "c", "", "*", "#"])


def _join(words: list[str]) -> str:
    return ".".join(words)


KEYS = st.lists(WORDS, max_size=6).map(_join)
PATTERNS = st.lists(PATTERN_WORDS, max_size=6).map(_join)


@settings(max_examples=400, deadline=None)
@given(pattern=PATTERNS, key=KEYS)
def test_single_pattern_matches_reference(pattern: str, key: str) -> None:
    expected = reference(pattern, key)
    assert topic_matches(pattern, key) is expected
    trie: TopicTrie[str] = TopicTrie()
    trie.add(pattern, "p")
    assert (trie.match(key) == ("p",)) is expected


@settings(max_examples=200, deadline=None)
@given(patterns=st.lists(PATTERNS, max_size=12), keys=st.lists(KEYS, max_size=8), data=st.data())
def test_trie_matches_reference(patterns: list[str], keys: list[str], data: st.DataObject) -> None:
    trie: TopicTrie[int] = TopicTrie()
    live: dict[int, str] = {}
    for index, pattern in enumerate(patterns):
        trie.add(pattern, index)
        live[index] = pattern
    # Remove a random subset, to exercise pruning.
    for index in data.draw(st.lists(st.sampled_from(sorted(live) or [0]), max_size=6)):
        if index in live:
            trie.remove(live.pop(index), index)
    for key in keys:
        expected = sorted(i for i, p in live.items() if reference(p, key))
        assert sorted(trie.match(key)) == expected
    assert sorted(trie.patterns()) == sorted(set(live.values()))
