"""Small conversions every state needs between what a page shows or sends and what services take."""

from __future__ import annotations

import uuid
from datetime import datetime

from clearbg_app.clock import as_utc


def when(moment: datetime | None, missing: str = "") -> str:
    """A moment as the pages show it ("2026-12-01 12:00 UTC"); `missing` when there is none."""
    return as_utc(moment).strftime("%Y-%m-%d %H:%M UTC") if moment else missing


def parse_uuid(value: object) -> uuid.UUID | None:
    """An id sent by the page, or None when it is not one."""
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None
