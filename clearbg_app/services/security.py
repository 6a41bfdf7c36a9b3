"""Small security primitives: token hashing, signed expiring links, passwords, IP and user-agent truncation."""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import re
import secrets
from datetime import datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from clearbg_app.settings import get_settings

password_hasher = PasswordHasher()  # Argon2id with argon2-cffi's current recommended parameters
_UNKNOWN_USER_HASH = password_hasher.hash(secrets.token_urlsafe(16))


class InvalidToken(Exception):
    """A signed link that is malformed, tampered with, expired or meant for something else."""


def new_token() -> str:
    """A random, URL-safe secret of 256 bits."""
    return secrets.token_urlsafe(32)


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def hash_password(password: str) -> str:
    return password_hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Constant work whether or not there is a hash (unknown emails cost as much as known ones)."""
    try:
        return password_hasher.verify(password_hash or _UNKNOWN_USER_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return password_hasher.check_needs_rehash(password_hash)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(purpose: str, body: str) -> str:
    return _b64(hmac.new(get_settings().signing_key(), f"{purpose}.{body}".encode(), hashlib.sha256).digest())


def sign(purpose: str, payload: dict, *, expires_at: datetime) -> str:
    """A URL-safe token carrying `payload`, valid for `purpose` until `expires_at`."""
    body = _b64(json.dumps({**payload, "exp": int(expires_at.timestamp())}, separators=(",", ":")).encode())
    return f"{body}.{_mac(purpose, body)}"


def unsign(purpose: str, token: str, *, now: datetime) -> dict:
    """The payload of a token made by `sign` for the same purpose; raises `InvalidToken`."""
    body, _, mac = (token or "").partition(".")
    if not body or not hmac.compare_digest(mac, _mac(purpose, body)):
        raise InvalidToken("This link is not valid. Ask for a new one.")
    try:
        payload = json.loads(_unb64(body))
    except ValueError:
        raise InvalidToken("This link is not valid. Ask for a new one.") from None
    if payload.get("exp", 0) <= now.timestamp():
        raise InvalidToken("This link has expired. Ask for a new one.")
    return payload


def ip_prefix(address: str | None) -> str:
    """The network, not the host: IPv4 truncated to /24, IPv6 to /48 ("approximate region")."""
    try:
        ip = ipaddress.ip_address((address or "").strip())
    except ValueError:
        return ""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    prefix = 24 if ip.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


# Browser family and major version, most specific first: Edge and Opera also say "Chrome", Chrome also says "Safari".
_BROWSERS = (
    ("Edge", r"Edg(?:e|A|iOS)?/(\d+)"), ("Opera", r"OPR/(\d+)"), ("Samsung Internet", r"SamsungBrowser/(\d+)"),
    ("Firefox", r"(?:Firefox|FxiOS)/(\d+)"), ("Chrome", r"(?:HeadlessChrome|Chrome|CriOS)/(\d+)"),
    ("Safari", r"Version/(\d+)[.\d]* (?:Mobile/\S+ )?Safari/"), ("curl", r"\bcurl/(\d+)"), ("Wget", r"\bWget/(\d+)"),
    ("python-requests", r"python-requests/(\d+)"), ("python-httpx", r"python-httpx/(\d+)"),
    ("Python", r"Python-urllib/(\d+)"), ("aiohttp", r"aiohttp/(\d+)"), ("Go", r"Go-http-client/(\d+)"),
    ("okhttp", r"okhttp/(\d+)"), ("Postman", r"PostmanRuntime/(\d+)"), ("axios", r"axios/(\d+)"), ("Node", r"node-fetch/(\d+)"),
)  # fmt: skip
_SYSTEMS = (("Android", "Android"), ("iOS", "iPhone"), ("iOS", "iPad"), ("ChromeOS", "CrOS"), ("Windows", "Windows"),
            ("macOS", "Mac OS X"), ("Linux", "Linux"))  # fmt: skip


def coarse_user_agent(user_agent: str | None, *, with_system: bool = False) -> str:
    """What ClearBG keeps of a User-Agent: the browser family and major version ("Chrome 156", "curl 8",
    "other"), and with `with_system` the operating system ("Firefox 128 on Windows"). Never the rest."""
    text = (user_agent or "")[:512]
    browser = next((f"{name} {match.group(1)[:4]}" for name, pattern in _BROWSERS if (match := re.search(pattern, text))), "other")
    if not with_system:
        return browser
    system = next((name for name, marker in _SYSTEMS if marker in text), "")
    return f"{browser} on {system}" if system else browser
