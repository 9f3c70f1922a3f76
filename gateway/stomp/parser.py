"""Streaming STOMP frame parser: bytes in, frames out.

Theory of operation
-------------------
:meth:`Parser.feed` only appends to a buffer; :meth:`Parser.next_event` parses lazily,
one event per call, h11-style. Lazy parsing means a change of :attr:`Parser.version`
(the session sets it once the version is negotiated) applies from the next frame on,
even for frames that arrived in the same chunk as CONNECT.

The buffer always starts at the current frame. A frame goes through two phases:

HEAD
    Leading EOLs are heart-beats: a run of them is reported as one :class:`HeartBeat`.
    Then we look for the end of the header block with ``bytes.find(b"\\n\\n")`` (and
    ``b"\\n\\r\\n"`` for CRLF), remembering how far we searched so byte-at-a-time
    feeding never rescans. While the block is incomplete, the header-count, line-length
    and frame-size limits are checked incrementally on the new bytes only, so a peer
    cannot make us buffer more than ``max_frame_size`` bytes. When the block is
    complete it is decoded as UTF-8, split into lines once and turned into headers
    (first ``:`` separates name and value; unescaped only if the block contains a
    backslash, never in CONNECT/STOMP/CONNECTED, never in 1.0).
BODY
    With ``content-length`` the frame size is known at once (checked before the body
    arrives) and the byte after the body must be NUL. Without it, the body ends at the
    first NUL, searched incrementally.

A NUL in the command or header block is refused (ERROR ``Invalid header`` naming the
header), and so is a CR inside a 1.0 header line (1.0 cannot escape it, so the node could
not write it back in a RECEIPT or MESSAGE): no header value the node relays or reflects
can then end a frame early or start a line.

Any violation yields one :class:`ProtocolError`; after it the parser is dead: feed()
ignores data and next_event() returns None. The parser never raises for any input and
every call does work proportional to the bytes it has not looked at yet.

Line endings: LF, and CRLF leniently in every version (a trailing CR is stripped from
every command and header line; 1.0 and 1.1 never defined CRLF, but clients send it).
"""

from __future__ import annotations

from typing import Final, TypeAlias

from .errors import ProtocolError, ProtocolMessage
from .errors import quote as _quote
from .escaping import EscapeError, unescape
from .frames import UNESCAPED_COMMANDS, VERSIONS, Frame, HeartBeat
from .limits import Limits

__all__ = ["Parser", "ParserEvent"]

ParserEvent: TypeAlias = Frame | HeartBeat | ProtocolError

_HEARTBEAT: Final = HeartBeat()
_DEFAULT_LIMITS: Final = Limits()


class Parser:
    """Incremental STOMP frame parser.

    Use ``feed(data)`` then call ``next_event()`` until it returns ``None``. Events are
    :class:`Frame`, :class:`HeartBeat` (a run of EOLs between frames) or one final
    :class:`ProtocolError`.
    """

    __slots__ = (
        "_body_scan",
        "_buf",
        "_dead",
        "_error",
        "_escaped",
        "_head",
        "_head_scan",
        "_line_count",
        "_line_scan",
        "_line_start",
        "_version",
        "limits",
    )

    def __init__(self, limits: Limits = _DEFAULT_LIMITS, version: str = "1.2") -> None:
        self.limits = limits
        self._version = "1.2"
        self._escaped = True
        self.version = version
        self._buf = bytearray()
        self._dead = False
        self._error: ProtocolError | None = None
        # Parsed head of the current frame: (command, headers, body_start, content_length);
        # content_length is -1 when absent.
        self._head: tuple[str, tuple[tuple[str, str], ...], int, int] | None = None
        self._head_scan = 0
        self._line_scan = 0
        self._line_start = 0
        self._line_count = 0
        self._body_scan = 0

    # -- public API ---------------------------------------------------------------

    @property
    def version(self) -> str:
        """Protocol version deciding header unescaping ("1.0" never unescapes)."""
        return self._version

    @version.setter
    def version(self, value: str) -> None:
        if value not in VERSIONS:
            raise ValueError(f"unsupported STOMP version {value!r}")
        self._version = value
        self._escaped = value != "1.0"

    @property
    def buffered(self) -> int:
        """Bytes received but not yet returned as events."""
        return len(self._buf)

    @property
    def dead(self) -> bool:
        """True once a ProtocolError has been produced."""
        return self._dead

    def feed(self, data: bytes) -> None:
        """Append received bytes. Ignored once the parser is dead."""
        if not self._dead:
            self._buf += data

    def next_event(self) -> ParserEvent | None:
        """Parse and return the next event, or None if more data is needed."""
        if self._error is not None:
            error, self._error = self._error, None
            return error
        if self._dead:
            return None
        buf = self._buf
        if not buf:
            return None
        head = self._head
        if head is None:
            first = buf[0]
            if first == 10 or first == 13:
                size = len(buf)
                i = 1
                while i < size and (buf[i] == 10 or buf[i] == 13):
                    i += 1
                del buf[:i]
                return _HEARTBEAT
            head = self._parse_head(buf)
            if head is None:
                return self._take_error()
        command, headers, body_start, length = head
        if length >= 0:
            end = body_start + length
            if len(buf) <= end:
                return None
            if buf[end] != 0:
                return self._fail(
                    ProtocolMessage.INVALID_FRAME,
                    "frame body not followed by NUL\n"
                    f"The {command} frame declares content-length {length}, but the byte "
                    f"after {length} body bytes is {bytes(buf[end : end + 1])!r}, not NUL.",
                )
        else:
            end = buf.find(b"\x00", self._body_scan)
            if end < 0:
                size = len(buf)
                self._body_scan = size
                if size > self.limits.max_frame_size:
                    return self._too_large(size)
                return None
            if end + 1 > self.limits.max_frame_size:
                return self._too_large(end + 1)
        body = bytes(buf[body_start:end])
        del buf[: end + 1]
        self._head = None
        return Frame(command, headers, body)

    # -- internals ----------------------------------------------------------------

    def _reset_head_scan(self) -> None:
        self._head_scan = 0
        self._line_scan = 0
        self._line_start = 0
        self._line_count = 0

    def _take_error(self) -> ProtocolError | None:
        error, self._error = self._error, None
        return error

    def _fail(self, message: ProtocolMessage, detail: str) -> ProtocolError:
        self._dead = True
        self._error = None
        self._buf = bytearray()
        self._head = None
        return ProtocolError(message, detail)

    def _too_large(self, size: int) -> ProtocolError:
        limit = self.limits.max_frame_size
        return self._fail(
            ProtocolMessage.FRAME_TOO_LARGE,
            f"frame too large: {size} bytes > max_frame_size {limit}\n"
            f"A frame may be at most {limit} bytes including headers and the NUL.",
        )

    def _parse_head(
        self, buf: bytearray
    ) -> tuple[str, tuple[tuple[str, str], ...], int, int] | None:
        """Find and parse the header block; None means "wait" or "error stored"."""
        start = self._head_scan - 2 if self._head_scan > 2 else 0
        end = buf.find(b"\n\n", start)
        if end >= 0:
            body_start = end + 2
            # A CRLF blank line can only come earlier if the block holds a CR.
            if buf.find(b"\r", start, end) >= 0:
                crlf = buf.find(b"\n\r\n", start, end + 1)
                if crlf >= 0:
                    end, body_start = crlf, crlf + 3
        else:
            end = buf.find(b"\n\r\n", start)
            if end < 0:
                self._head_scan = len(buf)
                self._check_partial_head(buf)
                return None
            body_start = end + 3

        limits = self.limits
        if end > limits.max_header_line:
            for raw in buf[:end].split(b"\n"):
                size = len(raw) - 1 if raw.endswith(b"\r") else len(raw)
                if size > limits.max_header_line:
                    self._error = self._line_too_long(size)
                    return None
        try:
            text = buf[:end].decode("utf-8")
        except UnicodeDecodeError as exc:
            self._error = self._fail(
                ProtocolMessage.INVALID_FRAME,
                "invalid UTF-8 in frame header\n"
                f"Command and header lines must be UTF-8 ({exc.reason} at byte {exc.start}).",
            )
            return None
        if "\x00" in text:
            self._error = self._nul_in_head(text)
            return None
        lines = text.split("\n")
        if "\r" in text:
            lines = [line[:-1] if line.endswith("\r") else line for line in lines]
            if not self._escaped and lines[0] not in UNESCAPED_COMMANDS:
                bad_line = next((line for line in lines if "\r" in line), None)
                if bad_line is not None:  # 1.0 cannot write it back (receipt, id)
                    self._error = self._fail(
                        ProtocolMessage.INVALID_HEADER,
                        f"CR in header {_quote(bad_line.partition(':')[0])}\n"
                        "STOMP 1.0 has no escaping: a CR may only end a line.",
                    )
                    return None
        command = lines[0]
        count = len(lines) - 1
        if count > limits.max_headers:
            self._error = self._too_many_headers(count)
            return None

        parts = [line.partition(":") for line in lines[1:]]
        headers = [(name, value) for name, colon, value in parts if colon and name]
        if len(headers) != count:
            bad = next(name + colon + value for name, colon, value in parts if not (colon and name))
            self._error = self._fail(
                ProtocolMessage.INVALID_FRAME,
                ("header line without ':'" if ":" not in bad else "header line without name")
                + f"\nMalformed header line {_quote(bad)} in {_quote(command)} frame; "
                "expected name:value.",
            )
            return None
        if self._escaped and "\\" in text and command not in UNESCAPED_COMMANDS:
            try:
                headers = [(unescape(name), unescape(value)) for name, value in headers]
            except EscapeError as exc:
                self._error = self._fail(
                    ProtocolMessage.INVALID_HEADER,
                    f"invalid escape sequence {_quote(exc.sequence)} in header\n"
                    f"STOMP {self._version} defines only \\r, \\n, \\c and \\\\ "
                    "in header names and values.",
                )
                return None
        length_text: str | None = None
        at = text.find("\ncontent-length:")  # the name has nothing to unescape
        if at >= 0:
            stop = text.find("\n", at + 16)
            length_text = text[at + 16 : stop] if stop >= 0 else text[at + 16 :]

        length = -1
        if length_text is not None:
            stripped = length_text.strip()
            if not (stripped.isascii() and stripped.isdigit()):
                self._error = self._fail(
                    ProtocolMessage.INVALID_HEADER,
                    f"invalid content-length: {_quote(length_text)}\n"
                    "content-length must be a non-negative decimal number of body bytes.",
                )
                return None
            if len(stripped) > 18:  # int() would refuse > 4300 digits; no frame is this big
                self._error = self._fail(
                    ProtocolMessage.FRAME_TOO_LARGE,
                    f"frame too large: content-length {_quote(stripped, 24)} "
                    f"> max_frame_size {limits.max_frame_size}\n"
                    f"A frame may be at most {limits.max_frame_size} bytes.",
                )
                return None
            length = int(stripped)
            if body_start + length + 1 > limits.max_frame_size:
                self._error = self._too_large(body_start + length + 1)
                return None
        elif body_start > limits.max_frame_size:
            self._error = self._too_large(body_start)
            return None
        head = (command, tuple(headers), body_start, length)
        self._head = head
        self._body_scan = body_start
        if self._head_scan:
            self._reset_head_scan()
        return head

    def _check_partial_head(self, buf: bytearray) -> None:
        """Enforce limits on an incomplete header block, looking only at new bytes."""
        limits = self.limits
        size = len(buf)
        if size > limits.max_frame_size:
            self._error = self._too_large(size)
            return
        line_start = self._line_start
        count = self._line_count
        i = buf.find(b"\n", self._line_scan)
        while i >= 0:
            length = i - line_start
            if length and buf[i - 1] == 13:
                length -= 1
            if length > limits.max_header_line:
                self._error = self._line_too_long(length)
                return
            count += 1
            line_start = i + 1
            i = buf.find(b"\n", line_start)
        self._line_start = line_start
        self._line_count = count
        self._line_scan = size
        if count - 1 > limits.max_headers:
            self._error = self._too_many_headers(count - 1)
        elif size - line_start > limits.max_header_line + 1:  # +1: a CR may follow
            self._error = self._line_too_long(size - line_start)

    def _line_too_long(self, length: int) -> ProtocolError:
        limit = self.limits.max_header_line
        return self._fail(
            ProtocolMessage.FRAME_TOO_LARGE,
            f"header line too long: {length} bytes > max_header_line {limit}\n"
            f"Command and header lines may be at most {limit} bytes.",
        )

    def _too_many_headers(self, count: int) -> ProtocolError:
        limit = self.limits.max_headers
        return self._fail(
            ProtocolMessage.FRAME_TOO_LARGE,
            f"too many headers: {count} > max_headers {limit}\n"
            f"A frame may carry at most {limit} header lines.",
        )

    def _nul_in_head(self, text: str) -> ProtocolError:
        """The error for a NUL in the command or header lines, naming the header."""
        lines = text.split("\n")
        line = next(line for line in lines if "\x00" in line)
        if line is lines[0]:
            where = f"the command {_quote(line)}"
        else:
            where = f"header {_quote(line.partition(':')[0])}"
        return self._fail(
            ProtocolMessage.INVALID_HEADER,
            f"NUL byte in {where}\n"
            "A NUL ends a frame: it cannot be part of a command, header name or header value.",
        )
