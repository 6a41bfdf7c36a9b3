"""Password hashing off the event loop, a few at a time, and the per-network and per-address limits on
sign-ups and reset requests, through the real ASGI app (SQLite and PostgreSQL) and the service."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from urllib.parse import urlsplit

import httpx
import pytest
from argon2 import PasswordHasher
from sqlmodel import select
from starlette.testclient import TestClient

from clearbg_app.api import build_api
from clearbg_app.models import OutboxMail, User
from clearbg_app.services import accounts, security
from clearbg_app.services.ratelimit import RateLimiter
from clearbg_app.settings import get_settings
from tests.factories import ORIGIN, SIGN_UP, flash_of
from tests.privacy_helpers import PASSWORD, new_user

BUSY = "ClearBG is busy right now; please try again in a few seconds."


class WatchedHasher(PasswordHasher):
    """Argon2 for real; each call records its thread and whether an event loop runs there, and (off the
    loop) first waits at `gate` while it is closed."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.gate.set()
        self.calls: list[tuple[str, bool]] = []
        self.waited_out = False

    def _enter(self) -> None:
        try:
            asyncio.get_running_loop()
            on_loop = True
        except RuntimeError:
            on_loop = False
        self.calls.append((threading.current_thread().name, on_loop))
        if not on_loop and not self.gate.wait(timeout=20):
            self.waited_out = True

    def hash(self, password, **kwargs):
        self._enter()
        return super().hash(password, **kwargs)

    def verify(self, hash, password):
        self._enter()
        return super().verify(hash, password)


@pytest.fixture
def hasher(monkeypatch) -> WatchedHasher:
    watched = WatchedHasher()
    monkeypatch.setattr(security, "password_hasher", watched)
    return watched


def generous_limits(monkeypatch) -> None:
    monkeypatch.setenv("CLEARBG_SIGNUP_RESET_PER_NETWORK_PER_HOUR", "1000")
    monkeypatch.setenv("CLEARBG_SIGNUP_RESET_PER_ADDRESS_PER_HOUR", "1000")
    get_settings.cache_clear()


def test_twenty_concurrent_sign_ups_hash_in_two_threads_while_other_requests_are_answered(db_url, hasher, monkeypatch):
    generous_limits(monkeypatch)
    monkeypatch.setattr(security, "password_lane", security.PasswordLane(workers=2, queue=3))

    async def scenario():
        transport = httpx.ASGITransport(app=build_api(), client=("127.0.0.1", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            assert (await client.post("/auth/signup", data=SIGN_UP, headers=ORIGIN)).status_code == 303
            hasher.gate.clear()
            hasher.calls.clear()
            sign_ups = [asyncio.create_task(client.post("/auth/signup", data=SIGN_UP, headers=ORIGIN)) for _ in range(20)]
            deadline = time.monotonic() + 20
            while len(hasher.calls) < 2 and time.monotonic() < deadline:
                await asyncio.sleep(0.01)  # the loop is free: it gets here while both threads hash
            unrelated = await asyncio.wait_for(client.get("/api/v1.0/account"), timeout=20)
            inside_while_answered = len(hasher.calls)
            hasher.gate.set()
            return unrelated, inside_while_answered, await asyncio.gather(*sign_ups)

    unrelated, inside_while_answered, responses = asyncio.run(scenario())
    assert unrelated.status_code == 403  # answered (no key) while every password thread was inside Argon2
    assert inside_while_answered == 2  # two at a time: the lane's workers
    assert all(not on_loop and name.startswith("clearbg-password") for name, on_loop in hasher.calls), hasher.calls
    assert not hasher.waited_out
    flashes = [flash_of(response) for response in responses]
    assert all(response.status_code == 303 for response in responses)
    busy = [flash for flash in flashes if flash["msg"] == BUSY]
    assert len(busy) == 15 and all(flash["kind"] == "error" for flash in busy)  # 2 running + 3 waiting got in
    assert sum(urlsplit(response.headers["location"]).path == "/login" for response in responses) == 5
    assert len(hasher.calls) == 5


@pytest.mark.parametrize("work", [lambda: security.hash_password("a long enough password"), lambda: security.verify_password(None, "x")])
def test_hashing_on_an_event_loop_is_refused(work):
    async def on_the_loop():
        work()

    with pytest.raises(RuntimeError, match="must not run on the event loop"):
        asyncio.run(on_the_loop())
    work()  # in a plain thread it runs


@pytest.fixture
def client(db_url) -> TestClient:
    return TestClient(build_api(), follow_redirects=False)


def test_every_route_that_hashes_or_checks_a_password_does_it_in_the_lane(client, session, clock, hasher):
    new_user(session, clock, email="ada@example.com")
    hasher.calls.clear()

    def post(path: str, **data):
        return client.post(path, data=data, headers=ORIGIN)

    post("/auth/signup", **SIGN_UP)  # an existing address
    post("/auth/signup", **{**SIGN_UP, "email": "new@example.com"})
    post("/auth/login", email="nobody@example.com", password="wrong-password!")
    for _ in range(get_settings().login_max_failures + 1):  # the last one while locked
        post("/auth/login", email="ada@example.com", password="wrong-password!")
    post("/auth/login", email="new@example.com", password=PASSWORD)
    post("/auth/password", current_password=PASSWORD, new_password="another-good-one")
    post("/auth/email", new_email="newer@example.com", password="another-good-one")
    post("/auth/reset-password", token="not-a-token", password="a-brand-new-secret")
    assert flash_of(post("/privacy/delete", password="another-good-one", confirm="on"))["kind"] == "info"
    assert len(hasher.calls) >= 12
    assert all(not on_loop and name.startswith("clearbg-password") for name, on_loop in hasher.calls), hasher.calls


# Rate limits on sign-ups and reset requests -----------------------------------------------------------


def sign_up(session, clock, email: str, ip: str) -> User | None:
    return accounts.sign_up(session, email=email, display_name="Someone", password=PASSWORD, adult_confirmed=True,
                            policy_accepted=True, ip=ip, now=clock())  # fmt: skip


def limits(monkeypatch, *, network: int, address: int) -> None:
    monkeypatch.setenv("CLEARBG_SIGNUP_RESET_PER_NETWORK_PER_HOUR", str(network))
    monkeypatch.setenv("CLEARBG_SIGNUP_RESET_PER_ADDRESS_PER_HOUR", str(address))
    get_settings.cache_clear()


def test_one_network_cannot_try_many_addresses(session, clock, monkeypatch):
    limits(monkeypatch, network=5, address=3)
    for number in range(3):
        sign_up(session, clock, f"user{number}@example.com", ip=f"127.0.0.{number + 1}")
    accounts.request_password_reset(session, email="user0@example.com", ip="127.0.0.9", now=clock())
    accounts.request_password_reset(session, email="unknown@example.com", ip="127.0.0.9", now=clock())
    queued_before = len(session.exec(select(OutboxMail)).all())
    for attempt in (
        lambda: sign_up(session, clock, "another@example.com", ip="127.0.0.200"),  # same /24, another host
        lambda: accounts.request_password_reset(session, email="victim@example.com", ip="127.0.0.77", now=clock()),
    ):
        with pytest.raises(accounts.AccountError, match=r"^Too many sign-ups or password resets from your network; try again in \d+ minutes\.$"):
            attempt()
    assert session.exec(select(User).where(User.email == "another@example.com")).first() is None
    assert len(session.exec(select(OutboxMail)).all()) == queued_before  # nothing queued, nothing hashed
    assert sign_up(session, clock, "another@example.com", ip="127.0.1.1") is not None  # other networks are not held up


def test_many_networks_cannot_flood_one_address(session, clock, monkeypatch):
    limits(monkeypatch, network=5, address=3)
    new_user(session, clock, email="victim@example.com")
    refused = 0
    for network in range(12):
        try:
            if network % 2:
                accounts.request_password_reset(session, email="Victim@Example.com", ip=f"127.0.{network}.1", now=clock())
            else:
                sign_up(session, clock, "victim@example.com", ip=f"127.0.{network}.1")
        except accounts.AccountError as error:
            assert str(error).startswith("Too many sign-ups or password resets for this email address; try again in")
            refused += 1
    mails = session.exec(select(OutboxMail).where(OutboxMail.kind != "verify_email")).all()
    assert refused == 10 and len(mails) == 2  # the victim's inbox gets three mails an hour at most (one was the sign-up)
    sign_up(session, clock, "someone.else@example.com", ip="127.0.0.1")  # the limit is the address's, not theirs


def test_floods_through_the_routes_get_a_clear_answer_never_a_5xx(client, session, clock, monkeypatch):
    limits(monkeypatch, network=4, address=1000)
    statuses, messages = [], []
    for number in range(6):
        for path, data in (
            ("/auth/forgot-password", {"email": f"flood{number}@example.com"}),
            ("/auth/signup", {**SIGN_UP, "email": f"flood{number}@example.com"}),
        ):
            response = client.post(path, data=data, headers=ORIGIN)
            statuses.append(response.status_code)
            messages.append(flash_of(response)["msg"])
    assert set(statuses) == {303}
    refused = [message for message in messages if message.startswith("Too many sign-ups or password resets from your network")]
    assert len(refused) == 8 and len(session.exec(select(User)).all()) == 2
    assert client.post("/auth/login", data={"email": "flood0@example.com", "password": PASSWORD}, headers=ORIGIN).status_code == 303


def test_the_hourly_limits_are_shared_through_redis_by_every_instance():
    prefix = f"clearbg-test-{uuid.uuid4().hex}"
    first, second = (RateLimiter("redis://127.0.0.1:6379", key_prefix=prefix) for _ in range(2))
    assert first.hit_hourly("signup-reset-network", "a-network", per_hour=2).allowed
    assert second.hit_hourly("signup-reset-network", "a-network", per_hour=2).allowed
    refused = first.hit_hourly("signup-reset-network", "a-network", per_hour=2)
    assert not refused.allowed and 3500 < refused.reset_at - time.time() <= 3600  # a moving hour
    assert second.hit_hourly("signup-reset-network", "another-network", per_hour=2).allowed
