"""Background work, announced: a service that commits work for later (batch items, mail, a webhook) calls `announce(kind, ...)`, and the task queue (`clearbg_app.tasks`, which registers a
sender for each kind when it is imported) sends the message. Services never import the queue; with
no sender registered (a service used on its own, as in unit tests) the work waits in its table.

`BackgroundWorker` is a daemon thread that runs its worker's `run_once` whenever its wake event is
set and every `poll_seconds` otherwise (the mail worker)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)

_senders: dict[str, Callable[..., None]] = {}


def register_sender(kind: str, sender: Callable[..., None]) -> None:
    _senders[kind] = sender


def announce(kind: str, *args: object) -> bool:
    """Tell the queue about committed work of `kind`; False when no queue is listening (the work
    stays in its table for the next sweep). A broker that fails is logged, never raised: the
    caller's transaction has committed and the sweep sends it later."""
    sender = _senders.get(kind)
    if sender is None:
        return False
    try:
        sender(*args)
    except Exception:  # noqa: BLE001 - the work is recorded; the queue's start-up sweep sends it again
        log.exception("background: could not queue %s work", kind)
        return False
    return True


class BackgroundWorker:
    """Subclasses name the thread and do one round of work in `run_once`."""

    thread_name = "clearbg-worker"

    def __init__(self, *, wake: threading.Event, poll_seconds: float) -> None:
        self._wake, self.poll_seconds = wake, poll_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name=self.thread_name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30) -> None:
        """Stop after the work in hand; what is still queued waits in the database."""
        self._stop.set()
        self._wake.set()
        if self._thread:
            self._thread.join(timeout)

    def run_once(self) -> bool:
        """One round of work; True when there may be more at once."""
        raise NotImplementedError

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()  # before the work: a wake-up during it runs another round
            try:
                if self.run_once():
                    continue
            except Exception:  # noqa: BLE001 - a database hiccup must not end the worker
                log.exception("%s: worker error", self.thread_name)
            self._wake.wait(self.poll_seconds)
