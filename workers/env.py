"""Typed reads of environment variables for the workers' settings classes.

`EnvReader(environ)` reads names as given (the caller adds its prefix); an empty value counts
as unset; a value that cannot be used is a `ValueError` naming the variable, which the entry
point turns into a message and an exit code.
"""

from __future__ import annotations

from collections.abc import Mapping


class EnvReader:
    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ

    def text(self, name: str) -> str | None:
        value = self.environ.get(name, "").strip()
        return value or None

    def words(self, name: str) -> tuple[str, ...]:
        """A comma-separated list, each word stripped, empty words dropped."""
        return tuple(w.strip() for w in (self.text(name) or "").split(",") if w.strip())

    def numbers(self, name: str) -> tuple[float, ...]:
        """A comma-separated list of numbers, each > 0."""
        values = []
        for word in self.words(name):
            try:
                value = float(word)
            except ValueError:
                raise ValueError(f"{name} must be numbers, got {word!r}") from None
            if value <= 0:
                raise ValueError(f"{name} must be > 0, got {word!r}")
            values.append(value)
        return tuple(values)

    def count(self, name: str, default: int, *, positive: bool = True) -> int:
        """A whole number (>= 1, or >= 0 when not `positive`)."""
        value = self.number(name, default, positive=positive)
        if value != int(value):
            raise ValueError(f"{name} must be a whole number, got {value:g}")
        return int(value)

    def number(self, name: str, default: float, *, positive: bool = False) -> float:
        """A number >= 0 (> 0 when `positive`)."""
        raw = self.text(name)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            raise ValueError(f"{name} must be a number, got {raw!r}") from None
        if value < 0 or (positive and value == 0):
            raise ValueError(f"{name} must be {'> 0' if positive else '>= 0'}, got {raw!r}")
        return value
