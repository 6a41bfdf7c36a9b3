"""Servers on free loopback ports for the tests: an ASGI app under uvicorn, and a small image server;
and the address policy that lets the fetcher reach them."""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import uvicorn

from tests.samples import sample_bytes

HORSE = sample_bytes("horse.jpg")


@contextmanager
def serve_asgi(app, name: str = "loopback server") -> Iterator[str]:
    """Yields the server's base URL (`http://127.0.0.1:PORT`) until the block ends."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError(f"the {name} did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


LOOPBACK = {ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")}  # what localhost may resolve to
HUGE = 20_000_000


def loopback_only(address) -> bool:
    """The tests' policy: their own loopback servers (not other loopback addresses such as 127.0.0.2)."""
    return address in LOOPBACK


class ImageHandler(BaseHTTPRequestHandler):
    """The loopback image server of the URL-fetching tests: an image, redirects, slow and huge answers."""

    protocol_version = "HTTP/1.0"
    sent = 0
    hosts: list[str] = []

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        ImageHandler.hosts.append(self.headers["Host"])
        if self.path == "/horse.jpg":
            self._send(200, HORSE, {"Content-Type": "image/jpeg", "Content-Length": str(len(HORSE))})
        elif self.path == "/hop":
            self._send(302, b"", {"Location": "/horse.jpg"})
        elif self.path == "/to-metadata":
            self._send(302, b"", {"Location": "http://169.254.169.254/latest/meta-data/"})
        elif self.path == "/to-other-loopback":
            self._send(302, b"", {"Location": f"http://127.0.0.2:{self.server.server_port}/horse.jpg"})
        elif self.path == "/loop":
            self._send(302, b"", {"Location": "/loop"})
        elif self.path == "/slow":
            time.sleep(2)
            self._send(200, HORSE, {})
        elif self.path == "/declared-huge":
            self._send(200, b"", {"Content-Length": str(HUGE)})
        elif self.path == "/huge":
            self.send_response(200)
            self.end_headers()
            chunk = b"\0" * 65536
            try:
                while ImageHandler.sent < HUGE:
                    self.wfile.write(chunk)
                    ImageHandler.sent += len(chunk)
            except OSError:
                pass
        else:
            self._send(404, b"", {})

    def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


@contextmanager
def serve_images() -> Iterator[str]:
    """Yields the base URL of an `ImageHandler` server on a free loopback port until the block ends."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), ImageHandler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_port}"
    finally:
        httpd.shutdown()
        httpd.server_close()
