"""A loopback TCP proxy a test controls: pass, cut, black-hole, restore.

``TcpProxy(target_port)`` listens on 127.0.0.1 (a port from `tests.support.ports`) and relays
every accepted connection to ``127.0.0.1:target_port``. It runs its own event loop in a daemon
thread, so a synchronous test (or a subprocess's traffic) goes through it while the test
thread does something else:

* ``cut()``: every relayed connection is aborted on both sides (an RST: the client sees a
  reset or EOF at once, the broker sees the peer go), and new connections are refused
  (accepted and closed at once) until ``restore()``;
* ``blackhole()``: every socket stays open but nothing is forwarded in either direction, and
  new connections are accepted and then left hanging: a half-open network path only
  heart-beats (or timeouts) can detect;
* ``restore()``: back to passing; connections black-holed meanwhile are cut (what a real
  path coming back does to a connection whose peer gave up: the first segment gets a reset).

``connections`` counts the connections accepted so far, ``live`` the ones relayed now.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from tests.support.ports import free_port

T = TypeVar("T")

CHUNK = 65536


class Mode(enum.Enum):
    PASS = "pass"
    CUT = "cut"
    BLACKHOLE = "blackhole"


class _Pair:
    """One relayed connection: the client's socket and the upstream one."""

    def __init__(self, client: asyncio.StreamWriter, upstream: asyncio.StreamWriter) -> None:
        self.client = client
        self.upstream = upstream

    def abort(self) -> None:
        for writer in (self.client, self.upstream):
            transport = writer.transport
            if not transport.is_closing():
                transport.abort()


class TcpProxy:
    """See the module docstring. Use as a context manager, or ``start()`` / ``close()``."""

    def __init__(self, target_port: int, *, target_host: str = "127.0.0.1") -> None:
        self.target_host = target_host
        self.target_port = target_port
        self.port = free_port()
        self.mode = Mode.PASS
        self.connections = 0
        self._pairs: set[_Pair] = set()
        self._hanging: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._passing = asyncio.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name="proxy")
        self._server: asyncio.Server | None = None

    # -- control (from any thread) -----------------------------------------------------------

    @property
    def live(self) -> int:
        return len(self._pairs)

    def start(self) -> TcpProxy:
        self._thread.start()
        self._call(self._start())
        return self

    def close(self) -> None:
        if not self._thread.is_alive():
            return
        self._call(self._close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    def cut(self) -> None:
        self._call(self._set(Mode.CUT))

    def blackhole(self) -> None:
        self._call(self._set(Mode.BLACKHOLE))

    def restore(self) -> None:
        self._call(self._set(Mode.PASS))

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    # -- the proxy's loop ----------------------------------------------------------------------

    async def _start(self) -> None:
        self._passing.set()
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
        self.mode = Mode.CUT
        self._abort_all()
        self._passing.set()  # pumps waiting out a black hole wake, find their socket gone
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=2)
            for task in pending:
                task.cancel()
        if self._server is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(2):
                    await self._server.wait_closed()

    async def _set(self, mode: Mode) -> None:
        previous, self.mode = self.mode, mode
        if mode is Mode.PASS:
            if previous is Mode.BLACKHOLE:
                self._abort_all()
            self._passing.set()
        else:
            self._passing.clear()
            if mode is Mode.CUT:
                self._abort_all()

    def _abort_all(self) -> None:
        for pair in list(self._pairs):
            pair.abort()
        self._pairs.clear()
        for writer in list(self._hanging):
            writer.transport.abort()
        self._hanging.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._relay(reader, writer)
        finally:
            self._tasks.discard(task)

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        if self.mode is Mode.CUT:
            writer.transport.abort()
            return
        if self.mode is Mode.BLACKHOLE:
            self._hanging.add(writer)
            return  # the socket stays open; nothing is read, nothing answered
        try:
            up_reader, up_writer = await asyncio.open_connection(self.target_host, self.target_port)
        except OSError:
            writer.transport.abort()
            return
        pair = _Pair(writer, up_writer)
        self._pairs.add(pair)
        try:
            await asyncio.gather(self._pump(reader, up_writer), self._pump(up_reader, writer))
        finally:
            self._pairs.discard(pair)
            pair.abort()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Copy one direction; while black-holed, hold what was read (and read no more)."""
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while True:
                data = await reader.read(CHUNK)
                if not data:
                    break
                if not self._passing.is_set():
                    if self.mode is Mode.CUT:
                        return
                    await self._passing.wait()
                    # restore() after a black-hole aborts the pair: drop what was held.
                    if writer.transport.is_closing():
                        return
                writer.write(data)
                await writer.drain()
        # EOF from one side: half-close the other, as a real path would pass the FIN on.
        with contextlib.suppress(OSError):
            if not writer.transport.is_closing() and writer.can_write_eof():
                writer.write_eof()
