"""Small parsers for settings taken from the environment (shared by the settings classes)."""

from __future__ import annotations

from collections.abc import Mapping

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def get_str(environ: Mapping[str, str], name: str, default: str | None) -> str | None:
    """The variable's value, or ``default`` when unset.  An empty value counts as unset."""
    value = environ.get(name)
    if value is None or value.strip() == "":
        return default
    return value.strip()


def get_bool(environ: Mapping[str, str], name: str, default: bool) -> bool:
    value = get_str(environ, name, None)
    if value is None:
        return default
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(f"{name} must be a boolean (true/false), got {value!r}")


def get_int(environ: Mapping[str, str], name: str, default: int, *, minimum: int = 0) -> int:
    value = get_str(environ, name, None)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {value!r}") from None
    if number < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {number}")
    return number


def get_float(
    environ: Mapping[str, str], name: str, default: float, *, minimum: float = 0.0
) -> float:
    value = get_str(environ, name, None)
    if value is None:
        return default
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not number >= minimum or number == float("inf"):
        raise ValueError(f"{name} must be a finite number >= {minimum}, got {value!r}")
    return number


def get_list(environ: Mapping[str, str], name: str, default: tuple[str, ...]) -> tuple[str, ...]:
    """A comma-separated list; blanks around items are dropped."""
    value = get_str(environ, name, None)
    if value is None:
        return default
    return tuple(item.strip() for item in value.split(",") if item.strip())
