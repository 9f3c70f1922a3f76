"""WebSocket framing (RFC 6455, section 5), server side, sans-I/O: bytes in, messages out.

:class:`FrameReader` takes what a client sends after the upgrade, in chunks of any size, and
returns what they complete: whole data messages (fragments joined, masks removed, text checked
to be UTF-8) and control frames (ping, pong, close). A violation of the RFC or of the size
limit is returned as an ``ERROR`` item after the frames before it, its :class:`WebSocketError`
carrying the close code to answer with (1002, 1007, 1009); the reader is then done (it
never raises). Server frames are never masked: :func:`frame` and :func:`close_frame` write
them. No extension is negotiated on this path, so every reserved bit must be clear.

Unmasking is aiohttp's C function (in place, on a copy), ~0.35 µs for 300 bytes; without
aiohttp's extensions, the payload XOR the key repeated as one big integer (:func:`unmask_int`,
~1 µs), never a Python loop per byte. ``benchmarks/ws_framing.py`` measures them.

This is held to wsproto's reader by property tests (any sequence of frames, fragments and
chunkings decodes the same, errors included): ``tests/gateway/test_wsframe.py``.
"""

from __future__ import annotations

import codecs
import struct
from collections.abc import Callable
from typing import Final

__all__ = [
    "ERROR",
    "OP_BINARY",
    "OP_CLOSE",
    "OP_PING",
    "OP_PONG",
    "OP_TEXT",
    "FrameReader",
    "WebSocketError",
    "close_frame",
    "frame",
    "unmask",
    "unmask_int",
]

OP_CONTINUATION: Final = 0x0
OP_TEXT: Final = 0x1
OP_BINARY: Final = 0x2
OP_CLOSE: Final = 0x8
OP_PING: Final = 0x9
OP_PONG: Final = 0xA
_DATA = frozenset((OP_CONTINUATION, OP_TEXT, OP_BINARY))
_CONTROL = frozenset((OP_CLOSE, OP_PING, OP_PONG))

CLOSE_NORMAL: Final = 1000
CLOSE_PROTOCOL_ERROR: Final = 1002
CLOSE_INVALID_DATA: Final = 1007
CLOSE_TOO_BIG: Final = 1009
#: What :meth:`FrameReader.feed` returns last for a violation: (ERROR, b"").
ERROR: Final = -1

#: Close codes a peer may send (RFC 6455 7.4.1 and 7.4.2, as wsproto takes them): 1000-1003,
#: 1007-1011, 1012-1013 (IANA registry), 3000-4999 (libraries, applications).
_VALID_CODES = frozenset((1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013))

_HEAD16 = struct.Struct("!BBH").pack
_HEAD64 = struct.Struct("!BBQ").pack


class WebSocketError(Exception):
    """The client broke the protocol or a limit: answer with close ``code`` and stop."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def unmask_int(payload: bytes, mask: bytes) -> bytes:
    """``payload`` XOR ``mask`` repeated (masking and unmasking are the same operation)."""
    size = len(payload)
    if not size:
        return b""
    key = int.from_bytes((mask * ((size >> 2) + 1))[:size], "little")
    return (int.from_bytes(payload, "little") ^ key).to_bytes(size, "little")


def _c_unmask() -> Callable[[bytes, bytes], bytes] | None:
    """aiohttp's C (Cython) mask, as an unmask function; aiohttp is a dependency anyway. Its
    module is private: if it moves, :func:`unmask_int` serves (tests hold both to the same
    results)."""
    try:
        from aiohttp._websocket.helpers import websocket_mask
    except ImportError:  # pragma: no cover - an aiohttp without it
        return None

    def unmask_c(payload: bytes, mask: bytes) -> bytes:
        buffer = bytearray(payload)
        websocket_mask(mask, buffer)
        return bytes(buffer)

    return unmask_c


#: The unmasking in use: aiohttp's C function when importable, else :func:`unmask_int`.
unmask: Callable[[bytes, bytes], bytes] = _c_unmask() or unmask_int


def frame(opcode: int, payload: bytes) -> bytes:
    """One final, unmasked frame (what a server sends)."""
    size = len(payload)
    first = 0x80 | opcode
    if size < 126:
        return bytes((first, size)) + payload
    if size < 65536:
        return _HEAD16(first, 126, size) + payload
    return _HEAD64(first, 127, size) + payload


def close_frame(code: int, reason: str = "") -> bytes:
    """A close frame with ``code`` and ``reason`` (cut to fit the 125 bytes allowed)."""
    return frame(OP_CLOSE, code.to_bytes(2, "big") + reason.encode()[:123])


def _check_close(payload: bytes) -> None:
    if not payload:
        return
    if len(payload) == 1:
        raise WebSocketError(CLOSE_PROTOCOL_ERROR, "close frame with a 1-byte payload")
    code = int.from_bytes(payload[:2], "big")
    if code not in _VALID_CODES and not 3000 <= code <= 4999:
        raise WebSocketError(CLOSE_PROTOCOL_ERROR, f"invalid close code {code}")
    try:
        payload[2:].decode()
    except UnicodeDecodeError:
        raise WebSocketError(CLOSE_INVALID_DATA, "close reason is not UTF-8") from None


class FrameReader:
    """Decodes one client's frames; ``max_size`` bounds a message (all its fragments).

    :meth:`feed` returns ``(opcode, payload)`` pairs: ``OP_TEXT``/``OP_BINARY`` with a whole
    message, ``OP_PING``/``OP_PONG`` with their payload, ``OP_CLOSE`` with the close frame's
    payload (code and reason, already checked). Nothing is returned after a close. A
    violation is returned as ``(ERROR, b"")`` after what preceded it, and kept in
    :attr:`error` (its close code and reason).
    """

    __slots__ = (
        "_buffer",
        "_fragments",
        "_message_opcode",
        "_message_size",
        "_utf8",
        "done",
        "error",
        "max_size",
    )

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        self._buffer: bytearray | None = None  # an unfinished frame (None: nothing held)
        self._fragments: list[bytes] | None = None  # a fragmented message, so far
        self._message_opcode = 0
        self._message_size = 0
        #: Checks a fragmented text message fragment by fragment (an invalid byte fails the
        #: fragment it is in, as wsproto does); None otherwise.
        self._utf8: codecs.IncrementalDecoder | None = None
        self.done = False  # a close frame or an error was read
        self.error: WebSocketError | None = None  # what ended the stream, if it was broken

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        """Messages and control frames completed by ``data``; never raises: a violation
        ends the list with ``(ERROR, b"")`` (then see :attr:`error`)."""
        if self.done:
            return []
        held = self._buffer
        buffer: bytes | bytearray
        if held is None:
            buffer = data
        else:
            held += data  # amortized: a big frame in many reads is copied once, not per read
            buffer = held
        out: list[tuple[int, bytes]] = []
        pos = 0
        end = len(buffer)
        try:
            while end - pos >= 2:
                first = buffer[pos]
                second = buffer[pos + 1]
                size = second & 0x7F
                head = 2
                if size == 126:
                    if end - pos < 4:
                        break
                    size = (buffer[pos + 2] << 8) | buffer[pos + 3]
                    head = 4
                elif size == 127:
                    if end - pos < 10:
                        break
                    size = int.from_bytes(buffer[pos + 2 : pos + 10], "big")
                    head = 10
                    if size >> 63:
                        raise WebSocketError(CLOSE_PROTOCOL_ERROR, "frame length over 2**63")
                self._check_head(first, second, size)
                if end - pos < head + 4 + size:
                    break
                start = pos + head + 4
                if held is None:  # the common case: whole frames in the read itself
                    payload = unmask(data[start : start + size], data[start - 4 : start])
                else:
                    payload = unmask(
                        bytes(held[start : start + size]), bytes(held[start - 4 : start])
                    )
                pos = start + size
                item = self._frame(first, payload)
                if item is not None:
                    out.append(item)
                    if item[0] == OP_CLOSE:
                        self.done = True
                        self._buffer = None
                        return out
        except WebSocketError as exc:
            self.done = True
            self.error = exc
            self._buffer = None
            self._fragments = self._utf8 = None
            out.append((ERROR, b""))
            return out
        if pos >= end:
            self._buffer = None
        elif held is not None:
            del held[:pos]
        else:
            self._buffer = bytearray(buffer[pos:])
        return out

    @property
    def buffered(self) -> int:
        """Bytes held: an unfinished frame and the fragments of an unfinished message."""
        return (0 if self._buffer is None else len(self._buffer)) + self._message_size

    def _check_head(self, first: int, second: int, size: int) -> None:
        """Refuse a frame from its header, before its payload is waited for."""
        opcode = first & 0x0F
        if first & 0x70:
            raise WebSocketError(CLOSE_PROTOCOL_ERROR, "reserved bits set (no extension)")
        if not second & 0x80:
            raise WebSocketError(CLOSE_PROTOCOL_ERROR, "client frame not masked")
        if opcode in _CONTROL:
            if not first & 0x80:
                raise WebSocketError(CLOSE_PROTOCOL_ERROR, "fragmented control frame")
            if size > 125:
                raise WebSocketError(CLOSE_PROTOCOL_ERROR, "control frame payload over 125")
            return
        if opcode not in _DATA:
            raise WebSocketError(CLOSE_PROTOCOL_ERROR, f"unknown opcode {opcode:#x}")
        if opcode == OP_CONTINUATION:
            if self._fragments is None:
                raise WebSocketError(CLOSE_PROTOCOL_ERROR, "continuation with no message")
        elif self._fragments is not None:
            raise WebSocketError(CLOSE_PROTOCOL_ERROR, "new message inside a fragmented one")
        if self._message_size + size > self.max_size:
            raise WebSocketError(CLOSE_TOO_BIG, f"message over the limit of {self.max_size} bytes")

    def _frame(self, first: int, payload: bytes) -> tuple[int, bytes] | None:
        opcode = first & 0x0F
        if opcode >= OP_CLOSE:
            if opcode == OP_CLOSE:
                _check_close(payload)
            return opcode, payload
        final = first & 0x80
        if opcode != OP_CONTINUATION:
            if final:
                return self._message(opcode, payload)
            self._fragments = [payload]
            self._message_opcode = opcode
            self._message_size = len(payload)
            if opcode == OP_TEXT:
                self._utf8 = _utf8_decoder()
                _check_utf8(self._utf8, payload, False)
            return None
        fragments = self._fragments
        assert fragments is not None  # checked in _check_head
        fragments.append(payload)
        self._message_size += len(payload)
        if self._utf8 is not None:
            _check_utf8(self._utf8, payload, bool(final))
        if not final:
            return None
        self._fragments = self._utf8 = None
        self._message_size = 0
        return self._message_opcode, b"".join(fragments)

    @staticmethod
    def _message(opcode: int, payload: bytes) -> tuple[int, bytes]:
        if opcode == OP_TEXT:
            try:
                payload.decode()
            except UnicodeDecodeError:
                raise WebSocketError(CLOSE_INVALID_DATA, "text message is not UTF-8") from None
        return opcode, payload


_utf8_decoder = codecs.getincrementaldecoder("utf-8")


def _check_utf8(decoder: codecs.IncrementalDecoder, payload: bytes, final: bool) -> None:
    try:
        decoder.decode(payload, final)
    except UnicodeDecodeError:
        raise WebSocketError(CLOSE_INVALID_DATA, "text message is not UTF-8") from None
