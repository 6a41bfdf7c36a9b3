"""A loopback TCP forwarder that a test can cut and restore, to take a real service away mid-run."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class TcpProxy:
    """Forwards `127.0.0.1:<port>` to `target`; `cut()` drops every connection and refuses new ones
    (they are accepted and closed at once) until `restore()`."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._up = True
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self._up:
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._open |= {client, upstream}
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                self._close(sock)

    def _close(self, sock: socket.socket) -> None:
        with self._lock:
            self._open.discard(sock)
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        sock.close()

    def cut(self) -> None:
        self._up = False
        with self._lock:
            current = list(self._open)
        for sock in current:
            self._close(sock)

    def restore(self) -> None:
        self._up = True

    def close(self) -> None:
        self.cut()
        self.listener.close()


@contextmanager
def tcp_proxy(target_url: str) -> Iterator[TcpProxy]:
    """A proxy in front of `http://host:port`."""
    host, port = target_url.split("//", 1)[1].rsplit(":", 1)
    proxy = TcpProxy((host, int(port)))
    try:
        yield proxy
    finally:
        proxy.close()
