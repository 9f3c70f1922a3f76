"""workers/README.md documents every translation setting the code reads."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from pathlib import Path

from workers.translate.settings import PREFIX, PROVIDERS, ProviderLimits, TranslateSettings

README = (Path(__file__).resolve().parents[2] / "workers" / "README.md").read_text()
LIMITS = {f.name.upper() for f in dataclasses.fields(ProviderLimits)}


class Recording(Mapping[str, str]):
    """An empty environment that remembers which variables were asked for."""

    def __init__(self) -> None:
        self.asked: set[str] = set()

    def __getitem__(self, key: str) -> str:
        self.asked.add(key)
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def limit_name(variable: str) -> str | None:
    """`CONCURRENCY` for STOMPGATE_TRANSLATE_CONCURRENCY and ..._DEEPL_CONCURRENCY."""
    rest = variable.removeprefix(PREFIX)
    for provider in PROVIDERS:
        rest = rest.removeprefix(provider.upper() + "_") if rest not in LIMITS else rest
    return rest if rest in LIMITS else None


def test_every_variable_read_is_documented() -> None:
    env = Recording()
    TranslateSettings.from_env(env)
    assert len(env.asked) > len(LIMITS) * len(PROVIDERS)
    for variable in sorted(env.asked):
        limit = limit_name(variable)
        if limit is None:
            assert f"| `{variable}` |" in README, f"{variable} missing from workers/README.md"
        else:
            assert f"| `{limit}` |" in README, f"{limit} missing from workers/README.md"
