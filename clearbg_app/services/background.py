"""A daemon thread that runs its worker's `run_once` whenever its wake event is set and every
`poll_seconds` otherwise: the batch worker and the mail worker."""

from __future__ import annotations

import logging
import threading

log = logging.getLogger(__name__)


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
