"""A logging filter that removes one-time tokens and API keys from every log line, whoever logs it
(server access logs include query strings, and email links carry `?token=`)."""

from __future__ import annotations

import logging
import re

from clearbg_app.log_format import RequestIdFilter, formatter

SECRET_PATTERNS = (
    re.compile(r"(?<=[?&]token=)[^&\s\"']+"),
    re.compile(r"cbg_live_[A-Za-z0-9_-]+"),
    re.compile(r"(?<=[?&]m=)[^&\s\"']+"),
    re.compile(r"(?<=[?&]code=)[^&\s\"']+"),
)


def redact(text: str) -> str:
    for pattern in SECRET_PATTERNS:
        text = pattern.sub("[redacted]", text)
    return text


class RedactSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


_log_format = "text"


def configure_logging(level: str = "INFO", log_format: str = "text") -> None:
    """ClearBG's own lines to stderr (when nothing else set up logging), every handler redacting and
    carrying the request id; with `log_format="json"` every handler writes JSON lines."""
    global _log_format
    _log_format = log_format
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(formatter(log_format))
        root.addHandler(handler)
    logging.getLogger("clearbg_app").setLevel(level)
    logging.getLogger("clearbg").setLevel(level)
    install()


def install() -> None:
    """Attach the filters (and, for JSON logs, the formatter) to every handler of the root logger and of
    loggers with their own handlers (the servers' access and error logs included)."""
    redactor, ids = RedactSecrets(), RequestIdFilter()
    loggers = [logging.getLogger()] + [
        logger for logger in logging.Logger.manager.loggerDict.values() if isinstance(logger, logging.Logger)
    ]
    for logger in loggers:
        for handler in logger.handlers:
            if not any(isinstance(existing, RequestIdFilter) for existing in handler.filters):
                handler.addFilter(ids)  # before the formatter needs %(request_id)s
            if not any(isinstance(existing, RedactSecrets) for existing in handler.filters):
                handler.addFilter(redactor)
            if _log_format == "json":
                handler.setFormatter(formatter("json"))
