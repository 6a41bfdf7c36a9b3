"""Request ids for log lines, and JSON log records (`CLEARBG_LOG_FORMAT=json`)."""

from __future__ import annotations

import json
import logging
import os
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime

request_id: ContextVar[str | None] = ContextVar("clearbg_request_id", default=None)

_ACCEPTED_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


@contextmanager
def log_context(name: str) -> Iterator[None]:
    """Work outside a request (a batch item, a job run): its log lines carry `name` as their id."""
    token = request_id.set(name)
    try:
        yield
    finally:
        request_id.reset(token)


def new_request_id(offered: str | None = None) -> str:
    """The id a proxy sent in `X-Request-ID` when it is a plain token, else a fresh random one."""
    return offered if offered and _ACCEPTED_ID.fullmatch(offered) else uuid.uuid4().hex


class RequestIdFilter(logging.Filter):
    """Gives every record the id of the request it was logged under (`-` outside requests)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id.get() or "-"
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC), level, logger, message, request_id, pid, and the traceback."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or request_id.get(),
            "pid": os.getpid(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s"


def formatter(log_format: str) -> logging.Formatter:
    return JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
