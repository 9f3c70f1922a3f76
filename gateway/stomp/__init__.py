"""Sans-I/O STOMP 1.0/1.1/1.2 codec and server session.

Bytes in, events out; events in, bytes out. Nothing here touches a socket, an event
loop or a clock: transports (gateway/transport) own those and feed this package.

* :class:`Parser` / :func:`serialize` -- the wire codec (:mod:`.parser`, :mod:`.serializer`).
* :class:`PreparedMessage` -- a MESSAGE encoded once, rendered cheaply per session.
* :class:`ServerSession` -- the protocol state machine; see :mod:`.session` for the
  theory of operation and its transition tables, and :mod:`.events` for what it reports.
  Calling it in a state that does not allow the call raises :class:`InvalidState`.
"""

from . import events
from .errors import InvalidState, ProtocolError, ProtocolMessage
from .frames import Frame, HeartBeat
from .limits import Limits
from .message import MessageHead, PreparedMessage, message_head
from .parser import Parser
from .serializer import serialize
from .session import HeartBeatPlan, ServerSession, SessionConfig, SessionState

__all__ = [
    "Frame",
    "HeartBeat",
    "HeartBeatPlan",
    "InvalidState",
    "Limits",
    "MessageHead",
    "Parser",
    "PreparedMessage",
    "ProtocolError",
    "ProtocolMessage",
    "ServerSession",
    "SessionConfig",
    "SessionState",
    "events",
    "message_head",
    "serialize",
]
