"""Small security primitives: token hashing, signed expiring links, passwords (and the threads that
hash them), IP and user-agent truncation."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import ipaddress
import json
import os
import re
import secrets
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from functools import partial
from typing import TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from clearbg_app.services.errors import ServiceError
from clearbg_app.settings import get_settings

password_hasher = PasswordHasher()  # Argon2id with argon2-cffi's current recommended parameters
_UNKNOWN_USER_HASH = password_hasher.hash(secrets.token_urlsafe(16))
PASSWORD_WORKERS = min(4, os.cpu_count() or 1)  # one Argon2 hash is tens of ms of CPU and 64 MiB
PASSWORD_QUEUE = 8 * PASSWORD_WORKERS
T = TypeVar("T")


class PasswordWorkBusy(ServiceError):
    """Every password thread is taken and the queue is full."""

    def __init__(self) -> None:
        super().__init__("ClearBG is busy right now; please try again in a few seconds.")


class PasswordLane:
    """Where requests run the work around a password hash or check, off the event loop: `workers`
    threads, `queue` more calls waiting; beyond that `run` refuses at once with `PasswordWorkBusy`, so a
    flood of sign-ups neither blocks other requests nor piles up."""

    def __init__(self, *, workers: int = PASSWORD_WORKERS, queue: int = PASSWORD_QUEUE) -> None:
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix="clearbg-password")
        self._slots = threading.BoundedSemaphore(workers + queue)

    async def run(self, fn: Callable[..., T], /, *args, **kwargs) -> T:
        if not self._slots.acquire(blocking=False):
            raise PasswordWorkBusy()
        try:
            future = self._executor.submit(partial(fn, *args, **kwargs))
        except BaseException:
            self._slots.release()
            raise
        future.add_done_callback(lambda _: self._slots.release())
        return await asyncio.wrap_future(future)


password_lane = PasswordLane()


def _refuse_on_event_loop() -> None:
    """Argon2 holds its thread for tens of milliseconds: on an event loop that stalls every request."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise RuntimeError("password hashing must not run on the event loop; use security.password_lane")


class InvalidToken(Exception):
    """A signed link that is malformed, tampered with, expired or meant for something else."""


def new_token() -> str:
    """A random, URL-safe secret of 256 bits."""
    return secrets.token_urlsafe(32)


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def hash_password(password: str) -> str:
    _refuse_on_event_loop()
    return password_hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Constant work whether or not there is a hash (unknown emails cost as much as known ones)."""
    _refuse_on_event_loop()
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
