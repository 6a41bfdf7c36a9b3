"""Where a redirect may go after a form or a sign-in: only paths on this site."""

from __future__ import annotations

from urllib.parse import urlsplit


def safe_next(value: str | None, default: str = "/") -> str:
    """Only local paths: `/account` yes; `//evil.example`, `https://...`, `/\\evil` and control characters no."""
    if not value or len(value) > 512 or not value.startswith("/") or value.startswith("//"):
        return default
    if "\\" in value or any(ord(ch) < 0x21 or ord(ch) == 0x7F for ch in value):
        return default
    parts = urlsplit(value)
    return value if not parts.scheme and not parts.netloc else default
