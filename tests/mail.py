"""Reading the mail the app sent: the outbox folder, or a real SMTP sink on loopback (aiosmtpd)."""

from __future__ import annotations

import email
import email.policy
import re
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Message as MessageHandler

from clearbg_app.clock import Clock, utcnow
from clearbg_app.services import mail


def outbox(data_dir: Path, clock: Clock = utcnow) -> list[email.message.EmailMessage]:
    """Every mail sent so far: what is due in the outbox is sent first, as the mail worker would send it
    (at the time `clock` says), then the `.eml` files of the data dir are read."""
    mail.deliver_due(clock=clock)
    return [
        email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        for path in sorted((data_dir / "outbox").glob("*.eml"))
    ]


def link_in(message: email.message.EmailMessage, path: str) -> str:
    """The first link to `path` in a message's body."""
    match = re.search(rf"https?://\S+{re.escape(path)}\?token=\S+", message.get_content())
    assert match, f"no {path} link in: {message.get_content()}"
    return match.group(0)


def token_in(message: email.message.EmailMessage, path: str) -> str:
    return link_in(message, path).split("?token=", 1)[1]


class Sink(MessageHandler):
    def __init__(self) -> None:
        super().__init__(email.message.EmailMessage)
        self.messages: list[email.message.EmailMessage] = []

    def handle_message(self, message) -> None:
        self.messages.append(email.message_from_bytes(bytes(message), policy=email.policy.default))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def smtp_sink(port: int | None = None) -> Iterator[tuple[Sink, int]]:
    """A real SMTP server on loopback (on `port`, or a free one) that keeps what it receives."""
    sink = Sink()
    port = port or free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield sink, port
    finally:
        controller.stop()
