"""Which worker `python -m workers NAME` runs.

NAME is a built-in worker ("persist", "translate", "notify") or a dotted path
"package.module:attribute" to a team's own worker: the attribute is a `WorkerApp`, or a
callable taking `WorkerSettings` and returning one.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from workers.framework import WorkerApp
from workers.settings import WorkerSettings

Factory = Callable[[WorkerSettings], WorkerApp]


def _persist(settings: WorkerSettings) -> WorkerApp:
    from workers.persist import build_app

    return build_app(settings)


def _translate(settings: WorkerSettings) -> WorkerApp:
    from workers.translate.worker import build_app

    return build_app(settings)


def _notify(settings: WorkerSettings) -> WorkerApp:
    from workers.notify import NotifySettings, build_app

    return build_app(settings, NotifySettings.from_env())


BUILTIN: dict[str, Factory] = {"persist": _persist, "translate": _translate, "notify": _notify}


class UnknownWorkerError(LookupError):
    pass


def resolve(name: str, settings: WorkerSettings) -> WorkerApp:
    """The configured `WorkerApp` for `name`."""
    if name in BUILTIN:
        app = BUILTIN[name](settings)
    elif ":" in name:
        app = _load(name, settings)
    else:
        known = ", ".join(sorted(BUILTIN))
        raise UnknownWorkerError(
            f"unknown worker {name!r}: use one of {known} or 'package.module:app'"
        )
    app.configure(settings)
    return app


def _load(path: str, settings: WorkerSettings) -> WorkerApp:
    module_name, _, attribute = path.partition(":")
    if not module_name or not attribute:
        raise UnknownWorkerError(f"bad worker path {path!r}: use 'package.module:app'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UnknownWorkerError(f"cannot import {module_name!r}: {exc}") from exc
    target: object = module
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise UnknownWorkerError(f"{module_name!r} has no attribute {attribute!r}") from None
    if isinstance(target, WorkerApp):
        return target
    if callable(target):
        app = target(settings)
        if isinstance(app, WorkerApp):
            return app
        raise UnknownWorkerError(f"{path!r} returned {type(app).__name__}, not a WorkerApp")
    raise UnknownWorkerError(f"{path!r} is a {type(target).__name__}, not a WorkerApp")
