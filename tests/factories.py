"""What several test modules build the same way: accounts, credits, API and batch requests, uploaded
images and the editor's strokes, policy versions, admin states, a gated inference pool, migrations and
`clearbg check`. Fixtures live in conftest.py; these are plain helpers."""

from __future__ import annotations

import io
import subprocess
import sys
import threading
import uuid
from datetime import timedelta
from urllib.parse import parse_qs, parse_qsl, urlsplit

import httpx
import pytest
import reflex as rx
from alembic.config import Config
from PIL import Image
from reflex.istate.data import RouterData
from sqlmodel import select
from starlette.testclient import TestClient

from clearbg_app.api import build_api
from clearbg_app.api.deps import ApiDeps
from clearbg_app.api.middleware.event_socket import scrubbed_headers
from clearbg_app.api.web import google
from clearbg_app.db import make_engine
from clearbg_app.http.cookies import SESSION_COOKIE, VISITOR_COOKIE
from clearbg_app.http.flash import read_flash
from clearbg_app.inference import InferenceConfig, InferencePool
from clearbg_app.models import CreditLot, EntryKind, User
from clearbg_app.services import accounts, credits, images, policies
from clearbg_app.services.ratelimit import RateLimiter
from clearbg_app.settings import PROJECT_ROOT, get_settings
from tests.images import encode, horse
from tests.oidc_provider import CLIENT_SECRET
from tests.samples import sample_bytes

# Accounts ---------------------------------------------------------------------------------------------------

PASSWORD = "correct-horse-battery"


def sign_up(session, clock, email="ada@example.com", name="Ada Lovelace", password=PASSWORD, **overrides):
    params = {"adult_confirmed": True, "policy_accepted": True, "ip": "127.0.0.1", **overrides}
    return accounts.sign_up(session, email=email, display_name=name, password=password, now=clock(), **params)


def verified_user(session, clock, **kwargs) -> User:
    user = sign_up(session, clock, **kwargs)
    user.email_verified_at = clock()
    session.add(user)
    session.commit()
    return user


# Credits ----------------------------------------------------------------------------------------------------


def give(session, user, units: int) -> None:
    credits.grant(session, user_id=user.id, units=units, kind=EntryKind.PURCHASE, reason="test", reference=f"test:{uuid.uuid4()}")
    session.commit()


def balance(session, user) -> int:
    session.expire_all()
    return credits.balance(session, user_id=user.id)


def assert_consistent(session, user, expected_units):
    """The cached balance, the ledger's sum and the unspent lots all agree."""
    lots = session.exec(select(CreditLot).where(CreditLot.user_id == user.id)).all()
    assert credits.balance(session, user_id=user.id) == expected_units
    assert credits.ledger_sum(session, user_id=user.id) == expected_units
    assert sum(lot.remaining_units for lot in lots) == expected_units


# The public API and its batches -----------------------------------------------------------------------------

ENDPOINT = "/api/v1.0/removebg"
HORSE = sample_bytes("horse.jpg")
HORSE_SIZE = (770, 595)
BATCHES = "/api/v1.0/batches"
SMALL = encode(horse().resize((200, 155)), "JPEG", quality=85)
SQLITE_ONLY = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # image options: the DB adds nothing


def api_client(pool, **kwargs) -> TestClient:
    limiter = kwargs.pop("limiter", None) or RateLimiter()
    return TestClient(build_api(ApiDeps(pool=pool, limiter=limiter, **kwargs)))


def post(client, key, files=None, **data):
    """POST the horse (or `files`) to the removal endpoint with the form fields `data`."""
    return client.post(ENDPOINT, files=files or {"image_file": ("horse.jpg", HORSE, "image/jpeg")}, data=data, headers={"X-Api-Key": key})


def opened(response) -> Image.Image:
    return Image.open(io.BytesIO(response.content))


def files(*named: tuple[str, bytes]) -> list:
    return [("image_file", (name, data, "application/octet-stream")) for name, data in named]


def create(client, key, named=(("a.jpg", SMALL),), **data):
    """POST a batch of the `named` (filename, bytes) images."""
    return client.post(BATCHES, files=files(*named), data=data, headers={"X-Api-Key": key})


def run_all(worker) -> int:
    done = 0
    while worker.run_once():
        done += 1
    return done


# Uploaded images and the editor's strokes -------------------------------------------------------------------

VISITOR = "v" * 64  # a visitor hash
ACROSS_THE_HORSE = {"mode": "erase", "radius": 30, "soft": False, "points": [[250, 300], [450, 300]]}  # in HORSE_SIZE


def upload(session, store, clock, user=None):
    """The horse, uploaded by `VISITOR` (and `user`, if given) and not processed."""
    return images.store_upload(
        session, store=store, data=sample_bytes("horse.jpg"), filename="horse.jpg", visitor_hash=VISITOR,
        user_id=user.id if user else None, now=clock(),
    )  # fmt: skip


def uploaded(session, store, pool, user, name="horse.jpg"):
    """The sample photo `name`, uploaded by `VISITOR` and `user` and processed at preview size on `pool`."""
    image = images.store_upload(session, store=store, data=sample_bytes(name), filename=name, visitor_hash=VISITOR, user_id=user.id)
    return images.process_image(session, store=store, image_id=image.id, pool=pool, max_pixels=250_000)


def visitor_client(client: TestClient) -> tuple[TestClient, str]:
    """`client` with the visitor cookie the site sets on a first request, and that cookie's token."""
    response = client.get("/api/images/00000000-0000-0000-0000-000000000000/result")
    assert response.status_code == 404
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    return client, client.cookies[VISITOR_COOKIE]


# The site's form posts --------------------------------------------------------------------------------------

ORIGIN = {"origin": "http://testserver"}
SIGN_UP = {"email": "ada@example.com", "display_name": "Ada", "password": PASSWORD, "adult": "on", "accept": "on"}


def flash_of(response) -> dict:
    assert response.status_code == 303
    return read_flash({key: values[0] for key, values in parse_qs(urlsplit(response.headers["location"]).query).items()})


def sign_up_and_in(client) -> None:
    """Signing up signs in."""
    assert client.post("/auth/signup", data=SIGN_UP, headers=ORIGIN).status_code == 303
    assert SESSION_COOKIE in client.cookies


# Policies and admin states ----------------------------------------------------------------------------------

POLICY_BODY = "# Privacy policy\n\nWe now keep request logs for 30 days.\n"


def draft(session, clock, admin, **overrides):
    params = {"kind": "privacy", "label": "2", "body": POLICY_BODY, "summary": "Shorter log retention", "now": clock(), **overrides}
    return policies.create_draft(session, admin=admin, **params)


def publish_material(session, clock, admin, *, effective_in=timedelta(0), material=True, label="2"):
    version = draft(session, clock, admin, label=label, material=material, effective_at=clock() + effective_in)
    return policies.publish(session, admin=admin, version_id=version.id, revision=1, now=clock())


def state_for(state_cls, cookie: str = "", path: str = "/admin"):
    """A state instance as the server builds it for one websocket whose handshake had this Cookie header
    (and reached Reflex as `api/event_socket.py` leaves it), on the page at `path`."""
    headers = {name.decode(): value.decode() for name, value in scrubbed_headers([(b"cookie", cookie.encode())])}
    root = rx.State(_reflex_internal_init=True)
    root.router = RouterData.from_router_data({"headers": headers, "pathname": path, "asPath": path})
    return root.get_substate(state_cls.get_full_name().split("."))


# Inference --------------------------------------------------------------------------------------------------


class GatedPool(InferencePool):
    """A real pool whose workers each wait at `gate` before a job, recording the order jobs start in."""

    def __init__(self, config: InferenceConfig) -> None:
        super().__init__(config)
        self.gate, self.started = threading.Event(), []

    def _run(self, job, submitted):
        self.started.append(job)
        self.gate.wait(60)
        return super()._run(job, submitted)


# Google sign-in against the loopback OIDC provider (the fixtures are in conftest.py) -------------------------

APP_URL = "http://testserver"
CONSENTS = "adult=1&accept=1"


def configure_google(monkeypatch, client_id: str, discovery_url: str) -> None:
    """Point the app's Google sign-in at `discovery_url` (an empty `client_id` turns it off)."""
    monkeypatch.setenv("CLEARBG_GOOGLE_CLIENT_ID", client_id)
    monkeypatch.setenv("CLEARBG_GOOGLE_CLIENT_SECRET", CLIENT_SECRET)
    monkeypatch.setenv("CLEARBG_GOOGLE_DISCOVERY_URL", discovery_url)
    monkeypatch.setenv("CLEARBG_PUBLIC_URL", APP_URL)
    get_settings.cache_clear()
    google.clear_caches()


def start(client: TestClient, query: str = CONSENTS) -> httpx.Response:
    """Consents come from the sign-up page's form (a POST); a plain sign-in is a GET link."""
    params = dict(parse_qsl(query))
    if "adult" in params or "accept" in params:
        response = client.post("/auth/google/login", data=params, headers={"origin": APP_URL})
    else:
        response = client.get(f"/auth/google/login?{query}")
    assert response.status_code == 302, response.text
    return response


def approve(authorization_url: str) -> str:
    """The provider's answer to the browser: the callback URL with the code (or an error) and the state."""
    response = httpx.get(authorization_url, follow_redirects=False, timeout=10)
    assert response.status_code == 302, response.text
    callback_url = response.headers["location"]
    assert callback_url.startswith(f"{APP_URL}/auth/google/callback?")
    return callback_url


def sign_in(client: TestClient, query: str = CONSENTS) -> tuple[httpx.Response, str]:
    """The whole round trip; returns the callback's response and the callback URL used."""
    callback_url = approve(start(client, query).headers["location"])
    return client.get(callback_url), callback_url


# Migrations and start-up checks -----------------------------------------------------------------------------


def alembic(url: str, action, revision: str) -> None:
    """Run an Alembic `action` (`command.upgrade`, `command.downgrade`) to `revision` on the database at `url`."""
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.attributes["configure_logger"] = False
    engine = make_engine(url)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        action(config, revision)
    engine.dispose()


def run_check(env_overrides: dict[str, str], tmp_path) -> subprocess.CompletedProcess:
    """`python -m clearbg_app check` in a clean environment with a data dir under `tmp_path`."""
    env = {"PATH": "/usr/bin:/bin", "CLEARBG_DATA_DIR": str(tmp_path / "data"), **env_overrides}
    return subprocess.run(
        [sys.executable, "-m", "clearbg_app", "check"], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True
    )
