"""AMQP topic matching done locally, for the node's edge fan-out.

Semantics are RabbitMQ's ``amq.topic``: keys and patterns are dot-separated words (the empty
string is zero words; ``"a."`` is ``["a", ""]``), ``*`` matches exactly one word and ``#``
matches zero or more words.

:class:`TopicTrie` holds ``(pattern, item)`` pairs in a trie keyed by word, so matching a key
costs the length of the key times the (small) number of wildcard branches, not the number of
patterns. Patterns are reference-counted by their items: :meth:`TopicTrie.add` says whether
a pattern is new (the node must bind it on the broker) and :meth:`TopicTrie.remove` whether it
is gone (the node must unbind it). Results for recently matched keys are cached until the
next change, because chat traffic hits the same few room keys over and over.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator
from typing import Generic, TypeVar

__all__ = ["TopicTrie", "split_words", "topic_matches"]

T = TypeVar("T", bound=Hashable)

_CACHE_LIMIT = 4096


def split_words(key: str) -> list[str]:
    """Words of a routing key or binding pattern, as RabbitMQ splits them."""
    return key.split(".") if key else []


def topic_matches(pattern: str, key: str) -> bool:
    """Does binding ``pattern`` match routing ``key``? (No trie; for one-off checks.)"""
    return _match_words(split_words(pattern), 0, split_words(key), 0)


def _match_words(pattern: list[str], p: int, words: list[str], w: int) -> bool:
    while p < len(pattern):
        word = pattern[p]
        if word == "#":
            # Collapse runs of '#', then try every split point.
            while p + 1 < len(pattern) and pattern[p + 1] == "#":
                p += 1
            if p + 1 == len(pattern):
                return True
            return any(_match_words(pattern, p + 1, words, i) for i in range(w, len(words) + 1))
        if w == len(words):
            return False
        if word != "*" and word != words[w]:
            return False
        p += 1
        w += 1
    return w == len(words)


class _Node(Generic[T]):
    __slots__ = ("children", "items")

    def __init__(self) -> None:
        self.children: dict[str, _Node[T]] = {}
        self.items: dict[T, None] = {}


class TopicTrie(Generic[T]):
    """Patterns → items, matched against routing keys; reference-counted patterns."""

    __slots__ = ("_cache", "_counts", "_root")

    def __init__(self) -> None:
        self._root: _Node[T] = _Node()
        self._counts: dict[str, int] = {}
        self._cache: dict[str, tuple[T, ...]] = {}

    def add(self, pattern: str, item: T) -> bool:
        """Add ``item`` under ``pattern``; True if the pattern had no item before."""
        node = self._root
        for word in split_words(pattern):
            child = node.children.get(word)
            if child is None:
                child = node.children[word] = _Node()
            node = child
        if item in node.items:
            return False
        node.items[item] = None
        self._cache.clear()
        count = self._counts.get(pattern, 0)
        self._counts[pattern] = count + 1
        return count == 0

    def remove(self, pattern: str, item: T) -> bool:
        """Remove ``item`` from ``pattern``; True if that was the pattern's last item.

        Removing an item that is not there is a no-op that returns False.
        """
        words = split_words(pattern)
        path: list[tuple[_Node[T], str]] = []
        node = self._root
        for word in words:
            child = node.children.get(word)
            if child is None:
                return False
            path.append((node, word))
            node = child
        if item not in node.items:
            return False
        del node.items[item]
        self._cache.clear()
        # Prune nodes that hold nothing any more.
        while path and not node.items and not node.children:
            parent, word = path.pop()
            del parent.children[word]
            node = parent
        count = self._counts[pattern] - 1
        if count:
            self._counts[pattern] = count
            return False
        del self._counts[pattern]
        return True

    def count(self, pattern: str) -> int:
        """How many items ``pattern`` has."""
        return self._counts.get(pattern, 0)

    def patterns(self) -> Iterator[str]:
        """Every pattern that has at least one item (what the broker must have bound)."""
        return iter(list(self._counts))

    def __len__(self) -> int:
        return len(self._counts)

    def match(self, key: str) -> tuple[T, ...]:
        """Every item whose pattern matches ``key``, each once."""
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        found: dict[T, None] = {}
        self._walk(self._root, split_words(key), 0, found)
        result = tuple(found)
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[key] = result
        return result

    def _walk(self, node: _Node[T], words: list[str], i: int, found: dict[T, None]) -> None:
        children = node.children
        hash_child = children.get("#")
        if hash_child is not None:
            # '#' swallows zero or more words: try every remaining suffix.
            for j in range(i, len(words) + 1):
                self._walk(hash_child, words, j, found)
        if i == len(words):
            if node.items:
                found.update(node.items)
            return
        literal = children.get(words[i])
        if literal is not None:
            self._walk(literal, words, i + 1, found)
        star = children.get("*")
        if star is not None:
            self._walk(star, words, i + 1, found)
