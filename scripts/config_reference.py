"""docs/configuration.md, generated from the settings the code reads.

``python -m scripts.config_reference`` rewrites the file; ``--check`` exits 1 when the
committed one is stale (``tests/ops/test_config_reference.py`` fails then, too).

Two sources, cross-checked:

* *what the code reads*: each component's settings are built from a recording environment
  (``read_names``), so every ``STOMPGATE_*`` name its ``from_env``/``settings_from`` looks up is
  known, whatever the code path;
* *what the settings document*: the gateway's flags from ``gateway.settings.Settings`` (field,
  default, help text), and the tables in the settings classes' docstrings for the auth
  settings, presence and typing, the workers and the translation providers (variable,
  default, meaning).

``documented_names`` and ``read_names`` must agree: a setting read but not documented, or
documented but no longer read, is an error (``render`` raises, the test fails). compose.yaml's
test uses ``read_names`` too, so a setting it passes that no code reads fails there.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import re
import sys
import typing
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.auth.settings import AuthSettings
from gateway.chat.typing import TypingSettings
from gateway.presence.settings import PresenceSettings
from gateway.settings import ENV_PREFIX, Settings, settings_from
from workers import settings as worker_settings
from workers.notify import settings as notify_settings
from workers.notify.settings import NotifySettings
from workers.settings import WorkerSettings
from workers.translate import settings as translate_settings
from workers.translate.settings import PROVIDERS, TranslateSettings

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "docs" / "configuration.md"

#: Enough for every branch of the auth settings to run (JWT mode, a JWKS URL).
_AUTH_BASE = {
    "STOMPGATE_JWT_ALGORITHMS": "HS256",
    "STOMPGATE_JWT_KEY": "x" * 32,
    "STOMPGATE_JWKS_URL": "https://issuer.example/jwks.json",
}


class _Recorder(Mapping[str, str]):
    """An environment that notes every name looked up in it."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self.known = dict(values)
        self.read: dict[str, None] = {}  # in the order read

    def __getitem__(self, name: str) -> str:
        self.read[name] = None
        return self.known[name]

    def get(self, name: str, default: Any = None) -> Any:
        self.read[name] = None
        return self.known.get(name, default)

    def __contains__(self, name: object) -> bool:
        if isinstance(name, str):
            self.read[name] = None
        return name in self.known

    def __iter__(self) -> Iterator[str]:
        return iter(self.known)

    def __len__(self) -> int:
        return len(self.known)


def _reads(build: Callable[[Mapping[str, str]], object], base: Mapping[str, str]) -> list[str]:
    recorder = _Recorder(base)
    build(recorder)
    return list(recorder.read)


def _auth_settings(mode: str | None) -> Callable[[Mapping[str, str]], object]:
    return lambda env: AuthSettings.from_env(env, mode=mode)


def read_names() -> dict[str, list[str]]:
    """Component -> the ``STOMPGATE_*`` names its settings code reads, in reading order."""
    auth: dict[str, None] = {}
    for mode in (None, "dev"):  # None: STOMPGATE_AUTH is read (jwt, the default)
        auth.update(dict.fromkeys(_reads(_auth_settings(mode), _AUTH_BASE)))
    return {
        "gateway": _reads(lambda env: settings_from({}, env), {}),
        "auth": list(auth),
        "presence": _reads(PresenceSettings.from_env, {}) + _reads(TypingSettings.from_env, {}),
        "worker": _reads(WorkerSettings.from_env, {}),
        "translate": _reads(TranslateSettings.from_env, {}),
        "notify": _reads(NotifySettings.from_env, {}),
    }


# -- what the settings document --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Entry:
    name: str  # the environment variable
    default: str
    meaning: str = ""
    flag: str = ""


def _markdown(text: str) -> str:
    return re.sub(r"``([^`]+)``", r"`\1`", text).strip()


def _rst_rows(doc: str) -> Iterator[list[str]]:
    """Rows of the RST simple table in a docstring, cut at the columns its rules mark."""
    rules = 0
    starts: list[int] = []
    for line in doc.splitlines():
        if re.fullmatch(r"\s*=+(\s+=+)+\s*", line):
            rules += 1
            starts = [m.start() for m in re.finditer(r"=+", line)]
            continue
        if rules == 2 and line.strip():  # between the header rule and the closing one
            ends = [*starts[1:], len(line)]
            yield [line[a:b].strip() for a, b in zip(starts, ends, strict=True)]


def _rst_entries(cls: type, prefix: str = ENV_PREFIX) -> list[Entry]:
    entries = []
    for cells in _rst_rows(inspect.getdoc(cls) or ""):
        name = re.fullmatch(r"``([A-Z0-9_]+)``", cells[0])
        if name is None:
            continue  # a row that points elsewhere ("JWKS_URL and JWKS_*")
        entries.append(Entry(prefix + name.group(1), _markdown(" ".join(cells[2:]))))
    return entries


def _markdown_tables(doc: str) -> list[list[list[str]]]:
    tables: list[list[list[str]]] = []
    current: list[list[str]] = []
    for line in [*doc.splitlines(), ""]:
        stripped = line.strip()
        if stripped.startswith("|"):
            cells = [c.strip() for c in stripped.strip("|").split("|")]
            if not all(re.fullmatch(r"-+", c) for c in cells):
                current.append(cells)
        elif current:
            tables.append(current[1:])  # without the header row
            current = []
    return tables


def _expand(cell: str) -> list[str]:
    """``"DEEPL_KEY, DEEPL_URL"`` -> both; ``"LIBRETRANSLATE_URL, _KEY"`` -> ``..._KEY``."""
    names: list[str] = []
    for part in (p.strip().strip("`") for p in cell.split(",")):
        if part.startswith("_") and names:
            part = names[0].rpartition("_")[0] + part
        names.append(part)
    return names


def _literal(text: str) -> str:
    return f"`{text}`" if text and " " not in text and text != "-" else text


def _table_entries(rows: list[list[str]], prefix: str) -> list[Entry]:
    """Entries of a markdown table (name, default, meaning); a row may name several settings
    (``RATE, BURST`` with defaults ``10, 10``)."""
    entries = []
    for name_cell, default_cell, meaning in rows:
        names = _expand(name_cell)
        defaults = default_cell.split(", ")
        if len(defaults) != len(names):
            defaults = [default_cell] * len(names)
        entries += [
            Entry(prefix + name, _literal(default), meaning)
            for name, default in zip(names, defaults, strict=True)
        ]
    return entries


def gateway_entries() -> list[Entry]:
    entries = []
    for f in dataclasses.fields(Settings):
        default = "hostname-pid" if f.default is dataclasses.MISSING else f.default
        entries.append(
            Entry(
                ENV_PREFIX + f.name.upper(),
                f"`{str(default).lower() if isinstance(default, bool) else default}`"
                if default != ""
                else "(none)",
                str(f.metadata.get("help", "")),
                "--" + f.name.replace("_", "-"),
            )
        )
    return entries


#: docs/security.md's section for each auth settings class (others link to the page).
SECURITY_SECTIONS = {
    "AuthSettings": "modes",
    "JwtSettings": "keys-and-algorithms",
    "JwksUrlSettings": "keys-and-algorithms",
    "TokenSources": "token-sources",
    "AbuseLimits": "abuse-limits",
}


def _dataclasses_in(hint: Any) -> list[type]:
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return [hint]
    return [found for arg in typing.get_args(hint) for found in _dataclasses_in(arg)]


def auth_classes() -> list[type]:
    """``AuthSettings`` and every settings class inside it, depth first, in field order:
    the ones whose docstring lists environment variables."""
    found: list[type] = []

    def walk(cls: type) -> None:
        found.append(cls)
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            for inner in _dataclasses_in(hints[f.name]):
                if inner not in found and "Environment variables" in (inner.__doc__ or ""):
                    walk(inner)

    walk(AuthSettings)
    return found


def _title(cls: type) -> str:
    first = re.split(r"\.(?:\s|$)", inspect.getdoc(cls) or cls.__name__)[0].strip()
    return first[:1].upper() + first[1:]


#: Presence and typing: docstring tables of variable, default, meaning.
PRESENCE_CLASSES: tuple[type, ...] = (PresenceSettings, TypingSettings)


def presence_entries() -> list[Entry]:
    return [
        Entry(ENV_PREFIX + name.group(1), _markdown(cells[1]), _markdown(cells[2]))
        for cls in PRESENCE_CLASSES
        for cells in _rst_rows(inspect.getdoc(cls) or "")
        if (name := re.fullmatch(r"``([A-Z0-9_]+)``", cells[0])) is not None
    ]


def worker_entries() -> list[Entry]:
    doc = worker_settings.__doc__ or ""
    return _table_entries(_markdown_tables(doc)[0], "")


def translate_entries() -> tuple[list[Entry], list[Entry]]:
    """(the provider, cache and detection settings, the per-provider limits as
    ``STOMPGATE_TRANSLATE_<NAME>``)."""
    main, limits = _markdown_tables(translate_settings.__doc__ or "")[:2]
    prefix = translate_settings.PREFIX
    return _table_entries(main, prefix), _table_entries(limits, prefix)


def notify_entries() -> list[Entry]:
    return _table_entries(
        _markdown_tables(notify_settings.__doc__ or "")[0], notify_settings.PREFIX
    )


#: Read by the notify worker too, documented with the gateway and the auth settings.
NOTIFY_SHARED = [
    "STOMPGATE_REDIS_URL",
    "STOMPGATE_REDIS_PREFIX",
    "STOMPGATE_MEMBERSHIP_PREFIX",
    "STOMPGATE_DEPLOYMENT",
]


def documented_names() -> dict[str, list[str]]:
    main, limits = translate_entries()
    per_provider = [
        e.name.replace("_TRANSLATE_", f"_TRANSLATE_{p.upper()}_") for p in PROVIDERS for e in limits
    ]
    # the gateway's, read again (the deployment: for the Redis prefix's default)
    shared = ["STOMPGATE_REDIS_URL", "STOMPGATE_REDIS_PREFIX", "STOMPGATE_DEPLOYMENT"]
    return {
        "gateway": [e.name for e in gateway_entries()],
        "auth": [e.name for cls in auth_classes() for e in _rst_entries(cls)],
        "presence": [e.name for e in presence_entries()],
        "worker": [e.name for e in worker_entries()],
        "translate": [e.name for e in main] + [e.name for e in limits] + per_provider + shared,
        "notify": [e.name for e in notify_entries()] + NOTIFY_SHARED,
    }


def mismatches() -> list[str]:
    """Names read but not documented, or documented but not read, per component."""
    problems = []
    read, documented = read_names(), documented_names()
    for component in read:
        for name in sorted(set(read[component]) - set(documented[component])):
            problems.append(f"{component}: {name} is read by the code but not documented")
        for name in sorted(set(documented[component]) - set(read[component])):
            problems.append(f"{component}: {name} is documented but the code does not read it")
    return problems


# -- the document ----------------------------------------------------------------------------


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _table(header: str, rows: list[str]) -> list[str]:
    columns = header.count("|") - 1
    return [header, "|" + "---|" * columns, *rows, ""]


def render() -> str:
    problems = mismatches()
    if problems:
        raise ValueError("settings and their documentation disagree:\n" + "\n".join(problems))
    gateway = {e.name: e for e in gateway_entries()}
    out = [
        "# Configuration reference",
        "",
        "<!-- Generated by `python -m scripts.config_reference` (make config-doc) from the",
        "     settings classes; edit those, not this file. A test fails when it is stale. -->",
        "",
        "Every setting is an environment variable; the gateway's are also command-line flags",
        "(a flag wins over the environment, which wins over the default). An empty variable",
        "counts as unset. Booleans accept `true/false`, `1/0`, `yes/no`, `on/off`. A value",
        "that cannot be used stops the process at start with a message naming the variable.",
        "Each list below is checked against the names the code actually reads.",
        "",
        "## Gateway node: `python -m gateway` (`gateway/settings.py`)",
        "",
        *_table(
            "| flag | environment | default | meaning |",
            [
                f"| `{e.flag}` | `{e.name}` | {_cell(e.default)} | {_cell(e.meaning)} |"
                for e in gateway.values()
            ],
        ),
        "## Authentication, authorization, limits (`gateway/auth/`)",
        "",
        "Read by every gateway node at start; explained in [security.md](security.md). Where a",
        "gateway flag has the same name, the flag's value is the one used.",
        "",
    ]
    for cls in auth_classes():
        anchor = SECURITY_SECTIONS.get(cls.__name__)
        more = f"security.md#{anchor}" if anchor else "security.md"
        rows = []
        for e in _rst_entries(cls):
            note = f" (also `{gateway[e.name].flag}`, which wins)" if e.name in gateway else ""
            rows.append(f"| `{e.name}` | {_cell(e.default)}{note} |")
        out += [
            f"### {_title(cls)} (`{cls.__name__}`, [more]({more}))",
            "",
            *_table("| environment | default |", rows),
        ]
    out += [
        "## Presence and typing (`gateway/presence/settings.py`, `gateway/chat/typing.py`)",
        "",
        "Read by every gateway node at start; what they do: [internals.md](internals.md#presence).",
        "",
        *_table(
            "| environment | default | meaning |",
            [
                f"| `{e.name}` | {_cell(e.default)} | {_cell(e.meaning)} |"
                for e in presence_entries()
            ],
        ),
        "## Workers: `python -m workers NAME` (`workers/settings.py`)",
        "",
        "Every worker, the built-in ones and yours ([adding-a-consumer.md]"
        "(adding-a-consumer.md)); values set in code win. `python -m workers NAME` takes",
        "`--deployment`, `--topic-exchange`, `--store`, `--queue` (the persist queue),",
        "`--redis-url` and `--redis-prefix`, which win over their variables.",
        "",
        *_table(
            "| environment | default | meaning |",
            [f"| `{e.name}` | {_cell(e.default)} | {_cell(e.meaning)} |" for e in worker_entries()],
        ),
    ]
    main, limits = translate_entries()
    out += [
        "## Translation (`workers/translate/settings.py`)",
        "",
        "The translation providers and their cache; the cache also reads the gateway's",
        "`STOMPGATE_REDIS_URL` and `STOMPGATE_REDIS_PREFIX` (default `<STOMPGATE_DEPLOYMENT>:`).",
        "",
        *_table(
            "| environment | default | meaning |",
            [f"| `{e.name}` | {_cell(e.default)} | {_cell(e.meaning)} |" for e in main],
        ),
        "### Limits per provider",
        "",
        "`STOMPGATE_TRANSLATE_<NAME>` sets a limit for every provider;",
        "`STOMPGATE_TRANSLATE_<PROVIDER>_<NAME>` (provider one of "
        + ", ".join(f"`{p.upper()}`" for p in PROVIDERS)
        + ") for one, and wins.",
        "",
        *_table(
            "| environment | default | meaning |",
            [f"| `{e.name}` | {_cell(e.default)} | {_cell(e.meaning)} |" for e in limits],
        ),
        "## Push notifications: `python -m workers notify` (`workers/notify/settings.py`)",
        "",
        "The notify worker's providers, collapse window and limits (explained in",
        "[workers/README.md](../workers/README.md#the-notify-worker)); it also reads the",
        "gateway's `STOMPGATE_REDIS_URL`, `STOMPGATE_REDIS_PREFIX` (default",
        "`<STOMPGATE_DEPLOYMENT>:`) and `STOMPGATE_MEMBERSHIP_PREFIX`, and the workers' settings",
        "above.",
        "",
        *_table(
            "| environment | default | meaning |",
            [f"| `{e.name}` | {_cell(e.default)} | {_cell(e.meaning)} |" for e in notify_entries()],
        ),
        "## Operations scripts",
        "",
        "`rabbitmq/apply.py` reads `STOMPGATE_AMQP_URL` (the broker and vhost to apply",
        "`rabbitmq/definitions.json` to; flags `--amqp-url`, `--management-url`, `--vhost`).",
        "`scripts/up.sh` (`make up`) sets development defaults for `STOMPGATE_AUTH` (`dev`),",
        "`STOMPGATE_LOG_FORMAT` (`console`), `STOMPGATE_STORE` (`var/messages.sqlite3`), the",
        "persist worker's health port (9108) and, unless set, the notify worker's webhook",
        "(`STOMPGATE_NOTIFY_WEBHOOK_URL` and `_SECRET`: a local sink, `scripts/webhook_sink.py`),",
        "and honours every variable above. It starts an apertium-apy of its own for the",
        "translation worker (port 2737, or `APERTIUM_PORT`, or a free one; none when",
        "`STOMPGATE_TRANSLATE_PROVIDER` names another provider or",
        "`STOMPGATE_TRANSLATE_APERTIUM_URL` is set) and gives the translation worker its own",
        "health port (9109, or `TRANSLATE_WORKER_METRICS_PORT`, or a free one), the notify",
        "worker and the sink free ones (or `NOTIFY_HEALTH_PORT`, `WEBHOOK_SINK_PORT`).",
        "",
    ]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is stale")
    args = parser.parse_args(argv)
    try:
        text = render()
    except ValueError as exc:
        print(f"config_reference: {exc}", file=sys.stderr)
        return 2
    if args.check:
        current = OUTPUT.read_text(encoding="utf-8") if OUTPUT.exists() else ""
        if current != text:
            print(f"{OUTPUT.relative_to(ROOT)} is stale: run make config-doc", file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUTPUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
