"""One-time messages for the page a form redirects to: encrypted and authenticated (Fernet) and
short-lived, so a crafted link cannot put words in ClearBG's mouth, and the form fields a message
may carry back (an email, a name) are not readable in the page's URL, which browsers keep in their
history and Reflex in the tab's state."""

from __future__ import annotations

import base64
import hashlib
import json

from cryptography.fernet import Fernet, InvalidToken

from clearbg_app.settings import get_settings

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


def _fernet() -> Fernet:
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(b"flash:" + get_settings().signing_key()).digest()))


def flash(message: str, *, kind: str = "error", fields: dict | None = None) -> str:
    payload = {"msg": message, "kind": kind, "fields": fields or {}}
    return _fernet().encrypt(json.dumps(payload, separators=(",", ":")).encode()).decode()


def read_flash(query: dict[str, str]) -> dict:
    """`{"msg", "kind", "fields"}` from a page's query parameters (`m` or `error`); empty if none or forged."""
    if code := query.get("error"):
        return {"msg": ERROR_MESSAGES.get(code, ""), "kind": "error", "fields": {}} if code in ERROR_MESSAGES else {}
    try:
        payload = json.loads(_fernet().decrypt(query.get("m", "")[:4096], ttl=FLASH_MINUTES * 60))
    except (InvalidToken, ValueError):
        return {}
    if not isinstance(payload, dict) or not isinstance(payload.get("msg"), str) or not isinstance(payload.get("fields"), dict):
        return {}
    return payload
