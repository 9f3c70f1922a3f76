"""Server side of one STOMP connection, sans I/O.

Theory of operation
-------------------
A :class:`ServerSession` is fed the bytes a client sent (:meth:`~ServerSession.receive_data`)
and reports what the client asked for as events (:meth:`~ServerSession.events_received`).
The adapter answers by calling methods (``accept``, ``receipt``, ``send_message``, ...)
that queue bytes, which it collects with :meth:`~ServerSession.data_to_send` and writes.
The session never does I/O, never reads a clock and never sleeps: the adapter owns the
socket, the CONNECT timeout and the heart-beat timers (:attr:`~ServerSession.heartbeat`
tells it the negotiated periods).

States (:class:`SessionState`) and what moves between them (state, what happened, the
state after it, what is queued or reported)::

    AWAITING_CONNECT  CONNECT, STOMP                -> CONNECTING  ConnectRequested
    AWAITING_CONNECT  any other frame               -> CLOSED      ERROR + ProtocolViolation
    CONNECTING        accept()                      -> CONNECTED   CONNECTED; held frames parsed
    CONNECTING        reject()                      -> CLOSED      ERROR
    CONNECTING        (frames)                      -> CONNECTING  held unparsed
    CONNECTED         SEND, SUBSCRIBE, UNSUBSCRIBE  -> CONNECTED   their events
    CONNECTED         ACK, NACK, COMMIT, ABORT      -> CONNECTED   their events
    CONNECTED         BEGIN                         -> CONNECTED   nothing (or a RECEIPT)
    CONNECTED         DISCONNECT                    -> CLOSED      DisconnectRequested
    CONNECTED         CONNECT, STOMP                -> CLOSED      ERROR + ProtocolViolation
    CONNECTED         any other frame               -> CLOSED      ERROR + ProtocolViolation
    CLOSED            (frames)                      -> CLOSED      ignored
    any state         a violation by the client     -> CLOSED      ERROR + ProtocolViolation
    any state         error(close=True)             -> CLOSED      ERROR

The tables at the bottom of this module are the source of truth, and a test holds this
diagram to them. :data:`TRANSITIONS` gives, for each state in which frames are parsed
and each client command, the handler and the state after it (``OTHER`` stands for every
command a state does not list); a state without a row parses no frames. A handler checks
the frame and reports it; it never moves the state itself. If it finds the frame in error,
it queues the ERROR and the session goes to CLOSED instead, whatever the row says: every
error path ends in CLOSED. :data:`CALL_TRANSITIONS` gives the adapter's calls that move the
state; making one in a state it does not list (or ``receipt()`` before a version was
agreed, or ``send_message()``/``send_raw()`` before CONNECTED) is a bug in the adapter and
raises :class:`~.errors.InvalidState`, a ``RuntimeError``.

Details worth knowing:

* Pipelining. Frames a client sends after CONNECT but before it saw CONNECTED are not
  an error: they stay unparsed in the parser's buffer while the adapter authenticates
  and are handled after ``accept()`` (with the negotiated version's escaping), so the
  adapter should call ``events_received()`` after ``accept()``. At most
  ``max_frame_size`` such bytes are held; more is an ERROR.
* Backpressure. ``events_received()`` hands out at most ``max_pending_frames`` events;
  further frames stay unparsed until the next call, so drain with
  ``while events := session.events_received(): ...``. Unparsed bytes beyond
  ``max_frame_size`` while that many events are pending are an ERROR.
* Receipts. SEND, SUBSCRIBE, UNSUBSCRIBE, ACK, NACK, COMMIT and DISCONNECT receipts are
  the adapter's to send, once the work is done (``receipt()``). BEGIN and ABORT are
  handled entirely here and receipted at once.
* Errors. A client violation queues one ERROR frame (a short ``message`` header from
  :class:`~.errors.ProtocolMessage`, ``receipt-id`` if the offending frame asked for a
  receipt, the config's ``violation_headers``, the explanation in the body), emits
  :class:`~.events.ProtocolViolation` and closes. ERRORs the adapter asks for with
  ``reject()`` or ``error()`` emit no event. After an ERROR every adapter call is a
  no-op. After DISCONNECT only ``receipt()`` and ``error()`` still queue bytes, so the
  adapter can answer the DISCONNECT receipt.
* ``closed`` (the state is CLOSED) becomes True as soon as an ERROR was queued or
  DISCONNECT handled; the adapter then flushes ``data_to_send()`` and closes the transport.
* Leniency. ``host`` is not required on CONNECT (STOMP 1.2 requires it, but not every
  client sends it; authentication is the adapter's business). ``client-individual`` is
  accepted in every version, as is NACK. CRLF is accepted in every version.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Final, NamedTuple

from . import events
from .errors import InvalidState, ProtocolError, ProtocolMessage
from .errors import quote as _quote
from .frames import SERVER_COMMANDS, VERSIONS, Frame
from .limits import Limits
from .message import PreparedMessage
from .parser import Parser
from .serializer import HEARTBEAT, serialize

__all__ = [
    "CALL_TRANSITIONS",
    "OTHER",
    "TRANSITIONS",
    "HeartBeatPlan",
    "ServerSession",
    "SessionConfig",
    "SessionState",
    "Transition",
]

_DEFAULT_LIMITS: Final = Limits()
_ACK_MODES: Final = frozenset({"auto", "client", "client-individual"})


class SessionState(enum.Enum):
    """Where a session is in its life."""

    AWAITING_CONNECT = "AWAITING_CONNECT"
    CONNECTING = "CONNECTING"  # CONNECT seen; waiting for the adapter's accept/reject
    CONNECTED = "CONNECTED"
    CLOSED = "CLOSED"


@dataclass(frozen=True, slots=True)
class SessionConfig:
    """Settings for every session of a listener."""

    limits: Limits = _DEFAULT_LIMITS
    server_name: str = "stompgate/0.1"
    #: (sx, sy), ms: the shortest intervals the server sends heart-beats at / lets the client
    #: send them at. Floors: the negotiation takes the larger of each pair (0 = none).
    heartbeat: tuple[int, int] = (10000, 10000)
    versions: tuple[str, ...] = ("1.0", "1.1", "1.2")
    #: Extra headers on the ERROR frame of every client violation the session finds itself
    #: (the gateway adds its machine-readable reason here).
    violation_headers: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        unknown = [v for v in self.versions if v not in VERSIONS]
        if unknown or not self.versions:
            raise ValueError(f"versions must be a non-empty subset of {VERSIONS}")
        if min(self.heartbeat) < 0 or len(self.heartbeat) != 2:
            raise ValueError("heartbeat must be two non-negative integers")


@dataclass(frozen=True, slots=True)
class HeartBeatPlan:
    """Negotiated heart-beating, for the adapter's timers."""

    send_every_ms: int  # 0 = the server sends none
    expect_every_ms: int  # 0 = don't check the client


#: No heart-beats either way (shared: a plan is immutable and kept by every session).
_NO_HEARTBEAT: Final = HeartBeatPlan(0, 0)
#: A client's heart-beat header before one is parsed (and after CONNECT, when it is spent).
_NO_CLIENT_HEARTBEAT: Final = (0, 0)
#: ``requeue`` header values that mean false (RabbitMQ's ``boolean_header``).
_FALSE: Final = frozenset({"false", "False"})


class _Names(NamedTuple):
    """The ERRORs for a name a client picks (a subscription id, a transaction) that is in
    use already (``{key}``), or one more than the limit allows (``{n}``, ``{limit}``)."""

    taken: ProtocolMessage
    taken_detail: str
    full: ProtocolMessage
    full_detail: str


_SUBSCRIPTION_IDS: Final = _Names(
    ProtocolMessage.DUPLICATED_SUBSCRIPTION,
    "A subscription identified by {key} already exists.\n"
    "Each active subscription on a connection needs its own id.",
    ProtocolMessage.TOO_MANY_SUBSCRIPTIONS,
    "too many subscriptions: {n} > max_subscriptions {limit}\n"
    "Unsubscribe from something before subscribing again.",
)
_TRANSACTION_NAMES: Final = _Names(
    ProtocolMessage.BAD_TRANSACTION,
    "transaction {key} already started\nBEGIN names a transaction that is still open.",
    ProtocolMessage.TRANSACTION_LIMIT,
    "too many transactions: {n} > max_transactions {limit}\n"
    "Commit or abort a transaction before beginning another.",
)


def negotiate_heartbeat(server: tuple[int, int], client: tuple[int, int]) -> HeartBeatPlan:
    """Spec 1.2 "Heart-beating": each side uses the larger period, 0 if either opts out.

    ``server`` is what the server *can* do (the operator's floors), so a client's wish at or
    above them is granted as asked, and one below them gets the floor."""
    sx, sy = server
    cx, cy = client
    send = max(sx, cy) if sx and cy else 0
    expect = max(cx, sy) if cx and sy else 0
    return _NO_HEARTBEAT if not (send or expect) else HeartBeatPlan(send, expect)


def _parse_heartbeat(value: str) -> tuple[int, int] | None:
    parts = value.split(",")
    if len(parts) != 2:
        return None
    numbers: list[int] = []
    for part in parts:
        text = part.strip()
        if not (text.isascii() and text.isdigit()) or len(text) > 9:
            return None
        numbers.append(int(text))
    return numbers[0], numbers[1]


class ServerSession:
    """The STOMP protocol state machine for one client connection."""

    __slots__ = (
        "_client_heartbeat",
        "_errored",
        "_events",
        "_out",
        "_parser",
        "_proposed_version",
        "_state",
        "_subscriptions",
        "_transaction_sizes",
        "_transactions",
        "config",
        "frames_held",
        "heartbeat",
        "transaction_bytes",
        "version",
    )

    def __init__(self, config: SessionConfig = SessionConfig()) -> None:
        self.config = config
        self._state = SessionState.AWAITING_CONNECT
        self.version: str | None = None
        self.heartbeat: HeartBeatPlan | None = None
        # 1.0 (no unescaping) until a version is negotiated: CONNECT is never unescaped,
        # and anything else before it only earns an ERROR.
        self._parser = Parser(config.limits, "1.0")
        self._events: list[events.Event] = []
        self._out: list[bytes] = []
        self._errored = False
        self._proposed_version: str | None = None
        self._client_heartbeat = _NO_CLIENT_HEARTBEAT
        # Created by the first SUBSCRIBE / BEGIN: most sessions sit idle or never use them.
        self._subscriptions: dict[str, events.SubscribeRequested] | None = None
        self._transactions: dict[str, list[events.TransactionFrame]] | None = None
        self._transaction_sizes: dict[str, int] | None = None  # transaction -> bytes held
        #: Frames so far that produced no event of their own: BEGIN, and those held in a
        #: transaction (the adapter charges them to rate limits by this count).
        self.frames_held = 0
        #: Bytes held in open transactions (for the node's input budget).
        self.transaction_bytes = 0

    @property
    def buffered_input(self) -> int:
        """Bytes received but not parsed yet: an unfinished frame (or frames held back)."""
        return self._parser.buffered

    # -- bytes in, events out ---------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        """Feed bytes received from the client. Ignored once closed."""
        if self._state is SessionState.CLOSED:
            return
        self._parser.feed(data)
        self._pump()

    def events_received(self) -> list[events.Event]:
        """Take the events produced so far (at most ``max_pending_frames`` of them)."""
        taken = self._events
        self._events = []
        if self._state is SessionState.CONNECTED and self._parser.buffered:
            self._pump()
        return taken

    def data_to_send(self) -> bytes:
        """Take the bytes queued for the client."""
        out = self._out
        if not out:
            return b""
        self._out = []
        return out[0] if len(out) == 1 else b"".join(out)

    @property
    def state(self) -> SessionState:
        """Where the session is in its life (read-only: the session moves it by its tables)."""
        return self._state

    @property
    def closed(self) -> bool:
        """True once an ERROR was queued or DISCONNECT handled: flush, then close."""
        return self._state is SessionState.CLOSED

    @property
    def failed(self) -> bool:
        """True once an ERROR was queued (closed by an error, not by DISCONNECT: the frames
        that came before a DISCONNECT are still the adapter's to handle)."""
        return self._errored

    def subscription(self, sub_id: str) -> events.SubscribeRequested | None:
        """The active subscription with id ``sub_id``, if any."""
        subscriptions = self._subscriptions
        return None if subscriptions is None else subscriptions.get(sub_id)

    def subscribes_to(self, destination: str) -> bool:
        """Whether an active subscription (one whose SUBSCRIBE was handed out as an event and
        not unsubscribed) names ``destination``."""
        subscriptions = self._subscriptions
        return subscriptions is not None and any(
            sub.destination == destination for sub in subscriptions.values()
        )

    # -- calls from the adapter -----------------------------------------------------

    def accept(
        self,
        *,
        session_id: str,
        user_name: str | None = None,
        extra_headers: Iterable[tuple[str, str]] = (),
    ) -> None:
        """Accept the pending CONNECT: queue CONNECTED and start handling frames."""
        if self._errored:
            return
        next_state = self._after_call("accept()")
        version = self._proposed_version
        assert version is not None
        self.version = version
        self._parser.version = version
        headers = [("version", version)]
        if version == "1.0":
            self.heartbeat = _NO_HEARTBEAT
        else:
            sx, sy = self.config.heartbeat
            headers.append(("heart-beat", f"{sx},{sy}"))
            self.heartbeat = negotiate_heartbeat(self.config.heartbeat, self._client_heartbeat)
        self._client_heartbeat = _NO_CLIENT_HEARTBEAT
        headers.append(("server", self.config.server_name))
        headers.append(("session", session_id))
        if user_name is not None:
            headers.append(("user-name", user_name))
        headers.extend(extra_headers)
        self._out.append(serialize(Frame("CONNECTED", tuple(headers)), version))
        self._state = next_state
        self._pump()

    def reject(
        self, message: str, detail: str = "", *, headers: tuple[tuple[str, str], ...] = ()
    ) -> None:
        """Refuse the pending CONNECT (e.g. bad credentials): ERROR, then closed."""
        if self._errored:
            return
        self._after_call("reject()")  # to CLOSED, as every ERROR that closes
        self._queue_error(ProtocolError(message, detail, None, headers), violation=False)

    def receipt(self, receipt_id: str, headers: Iterable[tuple[str, str]] = ()) -> None:
        """Queue a RECEIPT for a request whose work is done; ``headers`` follow ``receipt-id``
        (what the work produced, e.g. the id a chat post was given)."""
        if self._errored:
            return
        if self.version is None:
            raise InvalidState(f"receipt() in state {self._state.name}")
        frame = Frame("RECEIPT", (("receipt-id", receipt_id), *headers))
        self._out.append(serialize(frame, self.version))

    def error(
        self,
        message: str,
        detail: str = "",
        *,
        receipt_id: str | None = None,
        close: bool = True,
        headers: tuple[tuple[str, str], ...] = (),
    ) -> None:
        """Queue an ERROR frame (``headers`` after ``message`` and ``receipt-id``); with
        ``close`` (the default, per spec) the session closes."""
        if self._errored:
            return
        error = ProtocolError(message, detail, receipt_id, headers)
        if close:
            self._queue_error(error, violation=False)
        else:
            self._out.append(serialize(error.frame(), self._error_version()))

    def send_message(
        self,
        prepared: PreparedMessage,
        subscription: str,
        message_id: str,
        ack: str | None = None,
    ) -> None:
        """Queue a MESSAGE rendered for this session's version. No-op once closed."""
        state = self._state
        if state is SessionState.CONNECTED:
            assert self.version is not None
            self._out.append(prepared.render(self.version, subscription, message_id, ack))
        elif state is not SessionState.CLOSED:
            raise InvalidState(f"send_message() in state {state.name}")

    def send_raw(self, data: bytes) -> None:
        """Queue pre-rendered frame bytes (adapter batching). No-op once closed."""
        state = self._state
        if state is SessionState.CONNECTED:
            self._out.append(data)
        elif state is not SessionState.CLOSED:
            raise InvalidState(f"send_raw() in state {state.name}")

    def send_heartbeat(self) -> None:
        """Queue a heart-beat EOL. No-op unless connected."""
        if self._state is SessionState.CONNECTED:
            self._out.append(HEARTBEAT)

    # -- internals ------------------------------------------------------------------

    def _after_call(self, call: str) -> SessionState:
        """The state the adapter's ``call`` leads to from here (CALL_TRANSITIONS)."""
        state = self._state
        row = CALL_TRANSITIONS.get(state)
        next_state = None if row is None else row.get(call)
        if next_state is None:
            raise InvalidState(f"{call} in state {state.name}")
        return next_state

    def _pump(self) -> None:
        """Parse and handle buffered frames while the state has a row in TRANSITIONS."""
        parser = self._parser
        limits = self.config.limits
        pending = self._events
        state = self._state
        row = TRANSITIONS.get(state)
        while row is not None:
            if len(pending) >= limits.max_pending_frames:
                if parser.buffered > limits.max_frame_size:
                    self._fail(
                        ProtocolMessage.TOO_MUCH_DATA,
                        f"too many pending frames: {len(pending)} events pending "
                        f"(max_pending_frames {limits.max_pending_frames}) and "
                        f"{parser.buffered} bytes unparsed > max_frame_size "
                        f"{limits.max_frame_size}\n"
                        "The client sent frames faster than the server handles them.",
                    )
                return
            event = parser.next_event()
            if event is None:
                return
            if type(event) is Frame:
                handler, next_state = row.get(event.command) or row[OTHER]
                handler(self, event)
                if self._errored:
                    return  # the error path: CLOSED
                if next_state is not state:
                    state = self._state = next_state
                    row = TRANSITIONS.get(state)
            elif type(event) is ProtocolError:
                self._queue_error(event)
                return
        if state is SessionState.CONNECTING and parser.buffered > limits.max_frame_size:
            self._fail(
                ProtocolMessage.TOO_MUCH_DATA,
                f"too much data before CONNECTED: {parser.buffered} bytes > "
                f"max_frame_size {limits.max_frame_size}\n"
                "Wait for the CONNECTED frame before sending more frames.",
            )

    def _error_version(self) -> str:
        # Before CONNECTED the client cannot know the version, so nothing is escaped.
        return self.version or "1.0"

    def _queue_error(self, error: ProtocolError, *, violation: bool = True) -> None:
        extra = self.config.violation_headers if violation else ()
        try:
            data = serialize(error.frame(extra), self._error_version())
        except ValueError:
            # A receipt id the negotiated version cannot carry back: drop it.
            bare = ProtocolError(error.message, error.detail, None, error.headers)
            data = serialize(bare.frame(extra), "1.0")
        self._out.append(data)
        if violation:
            self._events.append(events.ProtocolViolation(error))
        self._state = SessionState.CLOSED
        self._errored = True
        self._drop_transactions()

    def _drop_transactions(self) -> None:
        self._transactions = None
        self._transaction_sizes = None
        self.transaction_bytes = 0

    def _fail(
        self,
        message: ProtocolMessage,
        detail: str,
        frame: Frame | None = None,
        headers: tuple[tuple[str, str], ...] = (),
    ) -> None:
        """Queue the ERROR for a client violation: ``message`` from the catalogue, ``detail``
        (what, then why, one per line) for the body."""
        receipt = frame.header("receipt") if frame is not None else None
        self._queue_error(ProtocolError(message, detail, receipt, headers))

    def _require(self, frame: Frame, name: str, message: ProtocolMessage) -> str | None:
        value = frame.header(name)
        if not value:
            self._fail(
                message,
                f"missing header '{name}' in {frame.command}\n"
                f"A {frame.command} frame must have a non-empty '{name}' header "
                f"(STOMP {self.version}).",
                frame,
            )
            return None
        return value

    # Frame handlers (see TRANSITIONS): check a frame and report it; never move the state.

    def _on_connect(self, frame: Frame) -> None:
        supported = self.config.versions
        accept = frame.header("accept-version")
        offered = ["1.0"] if accept is None else [v.strip() for v in accept.split(",")]
        common = [v for v in supported if v in offered]
        if not common:
            listed = ",".join(supported)
            self._fail(
                ProtocolMessage.VERSION_MISMATCH,
                f"Supported versions are {listed}\nThe client offered {_quote(accept or '1.0')}.",
                frame,
                (("version", listed),),
            )
            return
        version = max(common, key=VERSIONS.index)
        if frame.command == "STOMP" and version == "1.0":
            self._fail(
                ProtocolMessage.VERSION_MISMATCH,
                "STOMP frame requires protocol version 1.1 or later\n"
                "Send CONNECT for STOMP 1.0, or offer 1.1 or 1.2 in accept-version.",
                frame,
                (("version", ",".join(supported)),),
            )
            return
        client_heartbeat = (0, 0)
        beat = frame.header("heart-beat")
        if beat is not None and version != "1.0":
            parsed = _parse_heartbeat(beat)
            if parsed is None:
                self._fail(
                    ProtocolMessage.INVALID_HEADER,
                    f"invalid heart-beat header: {_quote(beat)}\n"
                    "heart-beat must be two non-negative integers, e.g. 10000,10000.",
                    frame,
                )
                return
            client_heartbeat = parsed
        self._proposed_version = version
        self._client_heartbeat = client_heartbeat
        self._events.append(
            events.ConnectRequested(
                version=version,
                host=frame.header("host"),
                login=frame.header("login"),
                passcode=frame.header("passcode"),
                client_heartbeat=client_heartbeat,
                headers=frame.headers,
            )
        )

    def _on_frame_before_connect(self, frame: Frame) -> None:
        self._fail(
            ProtocolMessage.ILLEGAL_COMMAND,
            f"expected CONNECT or STOMP frame, got {_quote(frame.command)}\n"
            "You must log in using CONNECT first.",
            frame,
        )

    def _on_connect_again(self, frame: Frame) -> None:
        self._fail(
            ProtocolMessage.BAD_COMMAND,
            "already connected\n"
            f"{frame.command} received on a connection that is already connected.",
            frame,
        )

    def _on_unexpected(self, frame: Frame) -> None:
        command = frame.command
        if command in SERVER_COMMANDS:
            self._fail(
                ProtocolMessage.BAD_COMMAND,
                f"unexpected server frame {_quote(command)} from client\n"
                f"{command} frames are sent by servers only.",
                frame,
            )
        else:
            self._fail(
                ProtocolMessage.BAD_COMMAND,
                f"unknown command {_quote(command)}\n"
                "Client commands are SEND, SUBSCRIBE, UNSUBSCRIBE, ACK, NACK, BEGIN, "
                "COMMIT, ABORT and DISCONNECT.",
                frame,
            )

    def _emit_or_buffer(
        self, transaction: str | None, item: events.TransactionFrame, frame: Frame
    ) -> None:
        """Report ``item`` now, or hold it in its transaction until COMMIT."""
        if transaction is None:
            self._events.append(item)
        else:
            self._buffer(transaction, item, frame)

    def _buffer(self, transaction: str, item: events.TransactionFrame, frame: Frame) -> None:
        transactions = self._transactions
        frames = None if transactions is None else transactions.get(transaction)
        if frames is None:
            self._unknown_transaction(transaction, frame)
            return
        limit = self.config.limits.max_transaction_frames
        if len(frames) >= limit:
            self._fail(
                ProtocolMessage.TRANSACTION_TOO_LARGE,
                f"too many frames in transaction {_quote(transaction)}: "
                f"{len(frames) + 1} > max_transaction_frames {limit}\n"
                "Commit or abort the transaction before sending more frames in it.",
                frame,
            )
            return
        size = _frame_size(frame)
        sizes = self._transaction_sizes
        if sizes is None:
            sizes = self._transaction_sizes = {}
        held = sizes.get(transaction, 0) + size
        byte_limit = self.config.limits.max_transaction_bytes
        if byte_limit and held > byte_limit:
            self._fail(
                ProtocolMessage.TRANSACTION_TOO_LARGE,
                f"transaction {_quote(transaction)} too large: {held} bytes > "
                f"max_transaction_bytes {byte_limit}\n"
                "Commit or abort the transaction before sending more frames in it.",
                frame,
            )
            return
        sizes[transaction] = held
        self.transaction_bytes += size
        self.frames_held += 1
        frames.append(item)

    def _unknown_transaction(self, transaction: str, frame: Frame) -> None:
        self._fail(
            ProtocolMessage.BAD_TRANSACTION,
            f"unknown transaction {_quote(transaction)}\n"
            f"{frame.command} names a transaction that was not begun (or already ended).",
            frame,
        )

    def _on_send(self, frame: Frame) -> None:
        destination = self._require(frame, "destination", ProtocolMessage.MISSING_DESTINATION)
        if destination is None:
            return
        transaction = frame.header("transaction")
        event = events.SendRequested(
            destination, frame.headers, frame.body, frame.header("receipt"), transaction
        )
        self._emit_or_buffer(transaction, event, frame)

    def _durable_without_id(self, frame: Frame) -> bool:
        """A durable SUBSCRIBE or UNSUBSCRIBE must name its subscription (RabbitMQ's plugin
        names the queue by it); refused as the plugin refuses it, before anything else."""
        if frame.header("id") or "true" not in (
            frame.header("durable"),
            frame.header("persistent"),
        ):
            return False
        self._fail(
            ProtocolMessage.MISSING_HEADER,
            "Header 'id' is required for durable subscriptions",
            frame,
        )
        return True

    def _admits(
        self, frame: Frame, held: Mapping[str, object], key: str, limit: int, names: _Names
    ) -> bool:
        """Whether ``key`` may join ``held`` (a new name, and there is room); else the ERROR."""
        if key in held:
            self._fail(names.taken, names.taken_detail.format(key=_quote(key)), frame)
            return False
        if len(held) >= limit:
            self._fail(names.full, names.full_detail.format(n=len(held) + 1, limit=limit), frame)
            return False
        return True

    def _on_subscribe(self, frame: Frame) -> None:
        if self._durable_without_id(frame):
            return
        destination = self._require(frame, "destination", ProtocolMessage.MISSING_DESTINATION)
        if destination is None:
            return
        if self.version == "1.0":
            sub_id = frame.header("id") or destination
        else:
            required = self._require(frame, "id", ProtocolMessage.MISSING_HEADER)
            if required is None:
                return
            sub_id = required
        ack = frame.header("ack", "auto") or "auto"
        if ack not in _ACK_MODES:
            self._fail(
                ProtocolMessage.INVALID_HEADER,
                f"invalid ack mode {_quote(ack)}\nack must be auto, client or client-individual.",
                frame,
            )
            return
        subscriptions = self._subscriptions
        if subscriptions is None:
            subscriptions = self._subscriptions = {}
        limit = self.config.limits.max_subscriptions
        if not self._admits(frame, subscriptions, sub_id, limit, _SUBSCRIPTION_IDS):
            return
        event = events.SubscribeRequested(
            sub_id, destination, ack, frame.headers, frame.header("receipt")
        )
        subscriptions[sub_id] = event
        self._events.append(event)

    def _on_unsubscribe(self, frame: Frame) -> None:
        if self._durable_without_id(frame):
            return
        if self.version == "1.0":
            sub_id = frame.header("id") or frame.header("destination")
            if not sub_id:
                self._fail(
                    ProtocolMessage.MISSING_DESTINATION_OR_ID,
                    "missing header 'id' in UNSUBSCRIBE\n"
                    "A STOMP 1.0 UNSUBSCRIBE frame needs an 'id' or 'destination' header.",
                    frame,
                )
                return
        else:
            required = self._require(frame, "id", ProtocolMessage.MISSING_DESTINATION_OR_ID)
            if required is None:
                return
            sub_id = required
        subscriptions = self._subscriptions
        if subscriptions is None or subscriptions.pop(sub_id, None) is None:
            self._fail(
                ProtocolMessage.NO_SUBSCRIPTION,
                f"unknown subscription id {_quote(sub_id)}\n"
                "UNSUBSCRIBE must refer to an existing subscription.",
                frame,
            )
            return
        self._events.append(
            events.UnsubscribeRequested(sub_id, frame.header("receipt"), frame.headers)
        )

    def _on_ack(self, frame: Frame) -> None:
        name = "id" if self.version == "1.2" else "message-id"
        ack_id = self._require(frame, name, ProtocolMessage.MISSING_ACK_HEADER)
        if ack_id is None:
            return
        transaction = frame.header("transaction")
        subscription, receipt = frame.header("subscription"), frame.header("receipt")
        event: events.AckRequested | events.NackRequested
        if frame.command == "ACK":
            event = events.AckRequested(ack_id, subscription, receipt, transaction)
        else:
            # As RabbitMQ's plugin reads it: "false" or "False" (stomp.py sends Python's
            # str(False)); anything else, or no header, requeues.
            requeue = frame.header("requeue", "true") not in _FALSE
            event = events.NackRequested(ack_id, subscription, receipt, transaction, requeue)
        self._emit_or_buffer(transaction, event, frame)

    def _on_begin(self, frame: Frame) -> None:
        transaction = self._require(frame, "transaction", ProtocolMessage.MISSING_TRANSACTION)
        if transaction is None:
            return
        transactions = self._transactions
        if transactions is None:
            transactions = self._transactions = {}
        limit = self.config.limits.max_transactions
        if not self._admits(frame, transactions, transaction, limit, _TRANSACTION_NAMES):
            return
        transactions[transaction] = []
        self.frames_held += 1
        receipt = frame.header("receipt")
        if receipt is not None:
            self.receipt(receipt)

    def _on_commit(self, frame: Frame) -> None:
        transaction = self._require(frame, "transaction", ProtocolMessage.MISSING_TRANSACTION)
        if transaction is None:
            return
        frames = self._end_transaction(transaction)
        if frames is None:
            self._unknown_transaction(transaction, frame)
            return
        self._events.append(
            events.TransactionCommitted(transaction, tuple(frames), frame.header("receipt"))
        )

    def _on_abort(self, frame: Frame) -> None:
        transaction = self._require(frame, "transaction", ProtocolMessage.MISSING_TRANSACTION)
        if transaction is None:
            return
        frames = self._end_transaction(transaction)
        if frames is None:
            self._unknown_transaction(transaction, frame)
            return
        receipt = frame.header("receipt")
        if receipt is not None:
            self.receipt(receipt)
        self._events.append(events.TransactionAborted(transaction, receipt, len(frames)))

    def _end_transaction(self, transaction: str) -> list[events.TransactionFrame] | None:
        """Take the frames of an open transaction (None: no such transaction)."""
        transactions = self._transactions
        sizes = self._transaction_sizes
        if sizes is not None:
            self.transaction_bytes -= sizes.pop(transaction, 0)
        return None if transactions is None else transactions.pop(transaction, None)

    def _on_disconnect(self, frame: Frame) -> None:
        self._drop_transactions()
        self._events.append(events.DisconnectRequested(frame.header("receipt")))


def _frame_size(frame: Frame) -> int:
    """About the bytes a frame took on the wire (its command, headers and body)."""
    size = len(frame.command) + len(frame.body) + 3
    for name, value in frame.headers:
        size += len(name) + len(value) + 2
    return size


_Handler = Callable[[ServerSession, Frame], None]


class Transition(NamedTuple):
    """What a client frame does in a state."""

    #: Checks the frame and reports it (events, or a RECEIPT it owes at once); on an error
    #: it queues an ERROR, and the session goes to CLOSED instead of ``next_state``.
    handler: _Handler
    #: The state after the frame was handled without error.
    next_state: SessionState


#: The key of a row's entry for every command the row does not list.
OTHER: Final = None

#: Client frames, by state and command: the handler and the state after it. Frames are
#: parsed only in states that have a row here (CONNECTING holds them, CLOSED ignores them).
TRANSITIONS: Final[Mapping[SessionState, Mapping[str | None, Transition]]] = {
    SessionState.AWAITING_CONNECT: {
        "CONNECT": Transition(ServerSession._on_connect, SessionState.CONNECTING),
        "STOMP": Transition(ServerSession._on_connect, SessionState.CONNECTING),
        OTHER: Transition(ServerSession._on_frame_before_connect, SessionState.CLOSED),
    },
    SessionState.CONNECTED: {
        "SEND": Transition(ServerSession._on_send, SessionState.CONNECTED),
        "SUBSCRIBE": Transition(ServerSession._on_subscribe, SessionState.CONNECTED),
        "UNSUBSCRIBE": Transition(ServerSession._on_unsubscribe, SessionState.CONNECTED),
        "ACK": Transition(ServerSession._on_ack, SessionState.CONNECTED),
        "NACK": Transition(ServerSession._on_ack, SessionState.CONNECTED),
        "BEGIN": Transition(ServerSession._on_begin, SessionState.CONNECTED),
        "COMMIT": Transition(ServerSession._on_commit, SessionState.CONNECTED),
        "ABORT": Transition(ServerSession._on_abort, SessionState.CONNECTED),
        "DISCONNECT": Transition(ServerSession._on_disconnect, SessionState.CLOSED),
        "CONNECT": Transition(ServerSession._on_connect_again, SessionState.CLOSED),
        "STOMP": Transition(ServerSession._on_connect_again, SessionState.CLOSED),
        OTHER: Transition(ServerSession._on_unexpected, SessionState.CLOSED),
    },
}

#: The adapter's calls that move the state, by state: the state after the call. Any other
#: state raises InvalidState (unless an ERROR already closed the session: then a no-op).
CALL_TRANSITIONS: Final[Mapping[SessionState, Mapping[str, SessionState]]] = {
    SessionState.CONNECTING: {"accept()": SessionState.CONNECTED, "reject()": SessionState.CLOSED},
}
