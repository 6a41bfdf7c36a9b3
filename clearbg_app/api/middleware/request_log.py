"""ASGI middleware logging every HTTP request (time, method, path, status, latency, who, browser family
and major version, truncated IP). Rows are written by one background thread in batches, off the request path."""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass
from datetime import datetime

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from clearbg_app.api.middleware.visitor_cookie import request_cookie_header
from clearbg_app.clock import utcnow
from clearbg_app.db import session_scope
from clearbg_app.http.cookies import SESSION_COOKIE, read_cookie
from clearbg_app.models import RequestLog
from clearbg_app.services import request_logs
from clearbg_app.services.security import coarse_user_agent, ip_prefix, sha256_hex

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PendingEntry:
    at: datetime
    method: str
    path: str
    status: int
    latency_ms: int
    session_token_hash: str | None
    user_id: object
    api_key_id: object
    user_agent: str
    ip_prefix: str


class RequestLogWriter:
    """A bounded queue drained by a daemon thread; `flush()` writes what is queued now."""

    def __init__(self, max_queued: int = 10_000, batch: int = 200) -> None:
        self._queue: queue.Queue[PendingEntry] = queue.Queue(max_queued)
        self._batch = batch
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def submit(self, entry: PendingEntry) -> None:
        try:
            self._queue.put_nowait(entry)
        except queue.Full:
            log.warning("request log queue full; an entry was dropped")
            return
        if self._thread is None or not self._thread.is_alive():
            with self._lock:
                if self._thread is None or not self._thread.is_alive():
                    self._thread = threading.Thread(target=self._run, name="request-log-writer", daemon=True)
                    self._thread.start()

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            self._write_and_settle([first, *self._drain(self._batch - 1)])

    def _write_and_settle(self, entries: list[PendingEntry]) -> None:
        try:
            self._write(entries)
        finally:
            for _ in entries:
                self._queue.task_done()

    def _drain(self, limit: int) -> list[PendingEntry]:
        entries = []
        while len(entries) < limit:
            try:
                entries.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return entries

    def flush(self) -> None:
        """Write everything submitted so far, including a batch the thread is writing now."""
        while entries := self._drain(self._batch):
            self._write_and_settle(entries)
        self._queue.join()

    def _write(self, entries: list[PendingEntry]) -> None:
        try:
            with self._lock, session_scope() as session:
                hashes = {entry.session_token_hash for entry in entries if entry.session_token_hash}
                owners = request_logs.session_owners(session, token_hashes=hashes)
                request_logs.record(
                    session,
                    [
                        RequestLog(
                            at=entry.at,
                            method=entry.method,
                            path=entry.path,
                            status=entry.status,
                            latency_ms=entry.latency_ms,
                            user_id=entry.user_id or owners.get(entry.session_token_hash),
                            api_key_id=entry.api_key_id,
                            user_agent=entry.user_agent,
                            ip_prefix=entry.ip_prefix,
                        )
                        for entry in entries
                    ],
                )
        except Exception:
            log.exception("could not write %d request log entries", len(entries))


writer = RequestLogWriter()


class RequestLogMiddleware:
    """Records each HTTP request once its response has started. The query string is never kept."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def capture_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, capture_status)
        finally:
            headers = dict(scope.get("headers") or [])
            token = read_cookie(request_cookie_header(scope), SESSION_COOKIE)
            state = scope.get("state") or {}
            client = scope.get("client")
            writer.submit(
                PendingEntry(
                    at=utcnow(),
                    method=scope["method"][:8],
                    path=scope["path"][:255],
                    status=status,
                    latency_ms=round((time.perf_counter() - started) * 1000),
                    session_token_hash=sha256_hex(token) if token else None,
                    user_id=state.get("clearbg_user_id"),
                    api_key_id=state.get("clearbg_api_key_id"),
                    user_agent=coarse_user_agent(headers.get(b"user-agent", b"").decode("latin-1")),
                    ip_prefix=ip_prefix(client[0] if client else None),
                )
            )
