"""The chaos tests' TCP proxy does what they rely on: pass, cut, black-hole, restore."""

from __future__ import annotations

import socket
import socketserver
import threading
from collections.abc import Iterator

import pytest

from tests.support.ports import free_port
from tests.support.tcp_proxy import TcpProxy


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(4096):
            self.request.sendall(data)


@pytest.fixture
def proxy() -> Iterator[TcpProxy]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", free_port()), _Echo)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        with TcpProxy(server.server_address[1]) as running:
            yield running
    finally:
        server.shutdown()
        server.server_close()


def _connect(proxy: TcpProxy) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", proxy.port), timeout=2)
    sock.settimeout(2)
    return sock


def _echoes(sock: socket.socket, data: bytes = b"ping") -> bool:
    sock.sendall(data)
    try:
        return sock.recv(4096) == data
    except TimeoutError:
        return False


def _gone(sock: socket.socket) -> bool:
    """The peer closed or reset the connection."""
    try:
        return sock.recv(4096) == b""
    except ConnectionResetError:
        return True


def test_pass_cut_restore(proxy: TcpProxy) -> None:
    with _connect(proxy) as first:
        assert _echoes(first)
        proxy.cut()
        assert _gone(first)
    with _connect(proxy) as refused:  # accepted, then closed at once while cut
        assert _gone(refused)
    proxy.restore()
    with _connect(proxy) as second:
        assert _echoes(second)
    assert proxy.connections == 3


def test_black_hole_keeps_the_socket_open_and_passes_nothing(proxy: TcpProxy) -> None:
    with _connect(proxy) as held:
        assert _echoes(held)
        proxy.blackhole()
        held.settimeout(0.3)
        assert not _echoes(held)  # open, silent: no EOF, no reset, no echo
        with _connect(proxy) as hanging:  # a new connection is accepted and hangs
            hanging.settimeout(0.3)
            assert not _echoes(hanging)
            proxy.restore()
            held.settimeout(2)
            hanging.settimeout(2)
            assert _gone(held)  # what was held is dropped with the connection
            assert _gone(hanging)
    with _connect(proxy) as fresh:
        assert _echoes(fresh)
