"""docs/client-contract.md lists every ERROR ``message`` the node can send, and nothing else.

The texts live in two enums, ``gateway.stomp.ProtocolMessage`` (what the STOMP session finds
itself) and ``gateway.errors.ErrorMessage`` (the node's). This test holds the document to
them, and the code to them: it reads every place in ``gateway/`` that makes an ERROR (an
error value, a ``ClientError``, a ``fail``/``reject``/``error`` call, a ``message=`` argument)
and refuses text made there, so a new error cannot reach a client without being listed.

Its table of a presence event's fields is held to what the gateway sends and to the schema.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import re
from collections.abc import Iterator
from pathlib import Path
from typing import get_args

import orjson

import gateway
from chatstate.presence import Status
from gateway import stomp_headers
from gateway.errors import ClientError, ErrorMessage
from gateway.presence.events import presence_event
from gateway.presence.store import PresenceChange
from gateway.stomp import ProtocolMessage

ROOT = Path(__file__).resolve().parents[1]
GATEWAY = Path(gateway.__file__).parent
CONTRACT = ROOT / "docs" / "client-contract.md"
CATALOGUE = {m.value for m in ProtocolMessage} | {m.value for m in ErrorMessage}
ENUMS = {"ProtocolMessage": ProtocolMessage, "ErrorMessage": ErrorMessage}

#: Calls that make an ERROR, and the position of their ``message`` argument.
MAKERS = {"ProtocolError": 0, "ClientError": 0, "_fail": 0, "fail": 0, "reject": 0}


def documented() -> list[str]:
    """The first cell of each row of the table of messages."""
    text = CONTRACT.read_text(encoding="utf-8")
    section = text.split("### Every `message` the node sends", 1)[1].split("\n## ", 1)[0]
    rows = section.split("\n|---|", 1)[1]  # below the table's header row
    return re.findall(r"^\| `([^`]+)` \|", rows, flags=re.MULTILINE)


def test_the_contract_lists_every_message_once() -> None:
    listed = documented()
    assert len(listed) == len(set(listed)), "a message is listed twice"
    assert set(listed) == CATALOGUE


def test_the_presence_event_table_names_the_fields_the_gateway_sends() -> None:
    text = CONTRACT.read_text(encoding="utf-8")
    section = text.split("## Presence events", 1)[1].split("\n## ", 1)[0]
    rows = section.split("\n|---|", 1)[1].split("\n\n", 1)[0]
    listed = re.findall(r"^\| `([^`]+)` \|", rows, flags=re.MULTILINE)
    change = PresenceChange(user="bob", status="online", last_seen=1, at=1)
    sent = orjson.loads(presence_event(change, "general"))
    assert listed == list(sent)
    schema = orjson.loads((ROOT / "schemas" / "chat.presence.v1.json").read_bytes())
    assert listed == list(schema["properties"])
    statuses = re.search(r"^\| `status` \| (.*) \|$", rows, flags=re.MULTILINE)
    assert statuses is not None
    assert re.findall(r"`(\w+)` or `(\w+)`", statuses.group(1))[0] == get_args(Status)


def sources() -> Iterator[tuple[str, ast.AST]]:
    for path in sorted(GATEWAY.rglob("*.py")):
        yield path.relative_to(GATEWAY).as_posix(), ast.parse(path.read_text(encoding="utf-8"))


def _name(func: ast.expr) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def message_arguments(
    tree: ast.AST, error_classes: frozenset[str] = frozenset()
) -> Iterator[tuple[int, ast.expr]]:
    """(line, the expression given as an ERROR's ``message``) for every maker call, and for
    the ``super().__init__`` calls of the classes named in ``error_classes``."""
    inits = {
        id(node)
        for cls in ast.walk(tree)
        if isinstance(cls, ast.ClassDef) and cls.name in error_classes
        for node in ast.walk(cls)
    }
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = _name(node.func)
        for keyword in node.keywords:
            if keyword.arg == "message":
                yield node.lineno, keyword.value
        position = MAKERS.get(name or "")
        is_session_error = (
            name == "error"
            and isinstance(node.func, ast.Attribute)
            and _name(node.func.value) == "session"
        )
        is_super_init = (
            id(node) in inits
            and name == "__init__"
            and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Call)
            and _name(node.func.value.func) == "super"
        )
        if is_session_error or is_super_init:
            position = 0
        if position is not None and len(node.args) > position:
            yield node.lineno, node.args[position]


def made_here(expression: ast.expr) -> bool:
    """Text made at the call site: a literal, an f-string, or text joined from them."""
    return any(
        isinstance(node, ast.JoinedStr)
        or (isinstance(node, ast.Constant) and isinstance(node.value, str))
        for node in ast.walk(expression)
    )


def catalogue_member(expression: ast.AST) -> str | None:
    """The text of ``ErrorMessage.X`` / ``ProtocolMessage.X``, else None."""
    if (
        isinstance(expression, ast.Attribute)
        and isinstance(expression.value, ast.Name)
        and expression.value.id in ENUMS
    ):
        return str(ENUMS[expression.value.id][expression.attr].value)
    return None


def test_no_error_message_is_made_where_the_error_is_raised() -> None:
    classes = client_error_classes()
    error_classes = frozenset(cls.__name__ for cls in classes)
    # A subclass with ClientError's own constructor takes the message first, like ClientError.
    for cls in classes:
        if cls.__init__ is ClientError.__init__:
            MAKERS.setdefault(cls.__name__, 0)
    offenders: list[str] = []
    seen = 0
    for path, tree in sources():
        for line, expression in message_arguments(tree, error_classes):
            seen += 1
            if made_here(expression):
                offenders.append(f"{path}:{line}: {ast.unparse(expression)}")
    assert offenders == [], "ERROR messages must come from ErrorMessage or ProtocolMessage"
    assert seen > 60  # the scan does find the raise sites


def test_the_scan_sees_a_made_up_message() -> None:
    sample = ast.parse(
        "conn.fail(f'too slow: {n}', reason='x')\n"
        "raise SubscribeError('why', message='Custom text')\n"
        "self.session.error('going away')\n"
        "class Refusal(ClientError):\n"
        "    def __init__(self): super().__init__('text made here', detail)\n"
        "class Other(Exception):\n"
        "    def __init__(self): super().__init__('any text')\n"
        "conn.fail(ErrorMessage.SLOW_CONSUMER, detail=f'{n} bytes')\n"
    )
    found = message_arguments(sample, frozenset({"Refusal"}))
    flagged = [line for line, expression in found if made_here(expression)]
    assert flagged == [1, 2, 3, 5]


def test_only_the_error_value_builds_error_frames() -> None:
    builders = [
        f"{path}:{node.lineno}"
        for path, tree in sources()
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and _name(node.func) == "Frame"
        and node.args
        and isinstance(node.args[0], ast.Constant)
        and node.args[0].value == "ERROR"
    ]
    assert [where.split(":")[0] for where in builders] == ["stomp/errors.py"]


def test_every_listed_message_is_sent_somewhere() -> None:
    """No dead entry in the contract: each text is used outside its enum."""
    used = {
        text
        for _, tree in sources()
        for node in ast.walk(tree)
        if (text := catalogue_member(node)) is not None
    }
    assert CATALOGUE - used == set()


def client_error_classes() -> list[type[ClientError]]:
    for module in pkgutil.walk_packages(gateway.__path__, "gateway."):
        if not module.name.startswith(("gateway.__main__", "gateway.static")):
            importlib.import_module(module.name)
    found: list[type[ClientError]] = []
    pending: list[type[ClientError]] = [ClientError]
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return found


def test_every_client_error_defaults_to_a_listed_message() -> None:
    classes = client_error_classes()
    assert len(classes) >= 10
    for cls in classes:
        default = inspect.signature(cls.__init__).parameters.get("message")
        if default is not None and default.default is not inspect.Parameter.empty:
            assert default.default in CATALOGUE, cls


def test_the_contract_lists_the_headers_a_post_s_receipt_carries() -> None:
    text = CONTRACT.read_text(encoding="utf-8")
    receipts = text.split("\n## Receipts", 1)[1].split("\n## ", 1)[0]
    for name in (stomp_headers.MESSAGE_ID, stomp_headers.DUPLICATE):
        assert f"\n{name}:" in receipts, name
