"""One-time messages for the page a form redirects to: signed and short-lived, so a crafted link
cannot put words in ClearBG's mouth."""

from __future__ import annotations

from datetime import timedelta

from clearbg_app.clock import utcnow
from clearbg_app.services.security import InvalidToken, sign, unsign

FLASH_MINUTES = 10

# Fixed messages for error codes that routes put in `?error=`.
ERROR_MESSAGES = {
    "google_failed": "Google sign-in did not complete. Please try again.",
    "google_consent": (
        "To create your account with Google, confirm below that you are an adult and accept the privacy "
        "policy and the terms, then choose Sign up with Google."
    ),
    "google_unverified": "Your Google address is not verified, so it cannot be linked. Sign in with your password.",
}


def flash(message: str, *, kind: str = "error", fields: dict | None = None) -> str:
    payload = {"msg": message, "kind": kind, "fields": fields or {}}
    return sign("flash", payload, expires_at=utcnow() + timedelta(minutes=FLASH_MINUTES))


def read_flash(query: dict[str, str]) -> dict:
    """`{"msg", "kind", "fields"}` from a page's query parameters (`m` or `error`); empty if none or forged."""
    if code := query.get("error"):
        return {"msg": ERROR_MESSAGES.get(code, ""), "kind": "error", "fields": {}} if code in ERROR_MESSAGES else {}
    try:
        payload = unsign("flash", query.get("m", ""), now=utcnow())
    except InvalidToken:
        return {}
    if not isinstance(payload.get("msg"), str) or not isinstance(payload.get("fields"), dict):
        return {}
    return payload
