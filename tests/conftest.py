"""Shared fixtures: an isolated data dir and database (SQLite, and PostgreSQL for the data layer)."""

from __future__ import annotations

import logging
import os
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import psycopg
import pytest
from alembic import command
from sqlmodel import Session
from starlette.testclient import TestClient

import clearbg_app.models  # noqa: F401 - registers the tables
from clearbg_app.api.web import google
from clearbg_app.db import get_engine
from clearbg_app.inference import InferenceConfig, InferencePool
from clearbg_app.models import ProcessedImage, User
from clearbg_app.services import api_keys, batch_worker, images, removal
from clearbg_app.services.ratelimit import default_limiter
from clearbg_app.services.security import sha256_hex
from clearbg_app.settings import PROJECT_ROOT, get_settings
from clearbg_app.storage import BlobStore, get_blob_store
from tests.factories import alembic, api_client, configure_google, give, verified_user, visitor_client
from tests.loopback import loopback_only, serve_images
from tests.oidc_provider import CLIENT_ID, OIDCProvider
from tests.s3_server import ACCESS_KEY, REGION, SECRET_KEY, moto_server
from tests.samples import SAMPLES, sample_bytes  # noqa: F401 - many tests import them from here

PG_ADMIN_DSN = os.environ.get("CLEARBG_TEST_PG_DSN", "host=127.0.0.1 port=5432 user=postgres dbname=postgres")


def _clear_caches() -> None:
    for cached in (get_settings, get_engine, get_blob_store, default_limiter):
        cached.cache_clear()


def migrate(url: str) -> None:
    """Bring the database at `url` to the newest schema through Alembic, as the app does."""
    alembic(url, command.upgrade, "head")


def pg_url(name: str) -> str:
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"


@pytest.fixture(scope="session")
def postgres_admin() -> Iterator[psycopg.Connection]:
    try:
        admin = psycopg.connect(PG_ADMIN_DSN, autocommit=True)
    except psycopg.OperationalError as error:  # pragma: no cover - environment problem
        pytest.fail(f"PostgreSQL is not reachable at {PG_ADMIN_DSN!r} (start it, see TOOLING.md): {error}")
    yield admin
    admin.close()


@pytest.fixture(scope="session")
def postgres_template(postgres_admin) -> Iterator[str]:
    """A database for this test run, migrated once; each test gets a copy of it."""
    name = f"clearbg_tmpl_{uuid.uuid4().hex[:12]}"
    postgres_admin.execute(f'CREATE DATABASE "{name}"')
    migrate(pg_url(name))
    yield name
    postgres_admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture
def postgres_url(postgres_admin, postgres_template) -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for one test, dropped afterwards."""
    name = f"clearbg_test_{uuid.uuid4().hex[:12]}"
    postgres_admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{postgres_template}"')
    yield pg_url(name)
    get_engine().dispose()
    postgres_admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 server for this test run (started on first use)."""
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture(scope="session")
def s3_bucket(s3_endpoint) -> str:
    name = f"clearbg-test-{uuid.uuid4().hex[:12]}"
    s3_client(s3_endpoint).create_bucket(Bucket=name)
    return name


def s3_client(endpoint: str):
    return boto3.client("s3", endpoint_url=endpoint, region_name=REGION, aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY)


def s3_settings(monkeypatch, endpoint: str, url: str) -> None:
    """Point the app's blob store at `url` (s3://bucket/prefix) on the S3 service at `endpoint`."""
    for name, value in (
        ("CLEARBG_STORAGE_URL", url),
        ("CLEARBG_S3_ENDPOINT_URL", endpoint),
        ("CLEARBG_S3_REGION", REGION),
        ("CLEARBG_S3_ACCESS_KEY_ID", ACCESS_KEY),
        ("CLEARBG_S3_SECRET_ACCESS_KEY", SECRET_KEY),
    ):
        monkeypatch.setenv(name, value)
    _clear_caches()


@pytest.fixture
def blob_backend(request, monkeypatch) -> str:
    """The blob store the app uses in this test: local by default; tests marked `both_blob_backends` run
    once with each, S3 under a prefix of their own in moto's bucket."""
    backend = getattr(request, "param", "local")
    monkeypatch.delenv("CLEARBG_STORAGE_URL", raising=False)
    if backend == "s3":
        bucket = request.getfixturevalue("s3_bucket")
        s3_settings(monkeypatch, request.getfixturevalue("s3_endpoint"), f"s3://{bucket}/t-{uuid.uuid4().hex}")
    return backend


def pytest_generate_tests(metafunc) -> None:
    if "blob_backend" in metafunc.fixturenames and metafunc.definition.get_closest_marker("both_blob_backends"):
        metafunc.parametrize("blob_backend", ["local", "s3"], indirect=True)


@pytest.fixture
def data_dir(tmp_path, monkeypatch, blob_backend) -> Iterator[Path]:
    """Settings pointed at a private data dir (SQLite file and blobs inside it)."""
    monkeypatch.setenv("CLEARBG_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("CLEARBG_DATABASE_URL", raising=False)
    _clear_caches()
    yield tmp_path / "data"
    get_engine().dispose()
    _clear_caches()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, data_dir, monkeypatch) -> Iterator[str]:
    """The URL of a migrated, empty database, once per backend; the app's engine points at it."""
    if request.param == "sqlite":
        url = f"sqlite:///{data_dir / 'clearbg.db'}"
        data_dir.mkdir(parents=True, exist_ok=True)
        migrate(url)
    else:
        url = request.getfixturevalue("postgres_url")
    monkeypatch.setenv("CLEARBG_DATABASE_URL", url)
    _clear_caches()
    return url


@pytest.fixture
def session(db_url) -> Iterator[Session]:
    with Session(get_engine(), expire_on_commit=False) as db_session:
        yield db_session


@pytest.fixture
def store(data_dir) -> BlobStore:
    """The app's blob store (see `blob_backend`)."""
    return get_blob_store()


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2027, 1, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


# The public API, its batches and the image URLs they fetch ---------------------------------------------------


@pytest.fixture(scope="module")
def pool() -> Iterator[InferencePool]:
    """A real inference pool, one per test module."""
    pool = InferencePool(InferenceConfig(workers=1, queue_size=4, warm_up=False))
    yield pool
    pool.close()


@pytest.fixture
def owner_credits() -> int:
    """What `owner` starts with, in hundredths of a credit; a module overrides this fixture to change it."""
    return 0


@pytest.fixture
def owner(session, clock, owner_credits) -> User:
    """A confirmed account."""
    user = verified_user(session, clock)
    if owner_credits:
        give(session, user, owner_credits)
    return user


@pytest.fixture
def key(session, clock, owner) -> str:
    """A secret API key of `owner`."""
    _, secret = api_keys.create_key(session, user=owner, label="tests", now=clock())
    return secret


@pytest.fixture
def client(db_url, pool) -> TestClient:
    """The public API on `pool`, allowed to fetch image URLs from the tests' loopback servers."""
    return api_client(pool, url_policy=loopback_only)


@pytest.fixture
def worker(pool, store, clock) -> batch_worker.BatchWorker:
    """The batch worker on `pool`; `run_all(worker)` processes what is queued."""
    return batch_worker.BatchWorker(pool=pool, store=store, url_policy=loopback_only, clock=clock)


@pytest.fixture
def processed(session, store, client) -> tuple[TestClient, ProcessedImage]:
    """A browser (`client` with its visitor cookie) and the horse it uploaded as "my horse.jpg", processed
    at preview size; modules that test the site's routes give `client` as `TestClient(build_api())`."""
    browser, token = visitor_client(client)
    image = images.store_upload(
        session, store=store, data=sample_bytes("horse.jpg"), filename="my horse.jpg", visitor_hash=sha256_hex(token)
    )
    image = images.process_image(session, store=store, image_id=image.id, pool=removal.default_pool(), max_pixels=250_000)
    return browser, image


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """The base URL of the loopback image server (`tests.loopback.ImageHandler`)."""
    with serve_images() as base:
        yield base


# Google sign-in against the loopback OIDC provider ----------------------------------------------------------


@pytest.fixture(scope="module")
def running_provider() -> Iterator[OIDCProvider]:
    provider = OIDCProvider()
    with provider.serve():
        yield provider


@pytest.fixture
def provider(running_provider, db_url, monkeypatch, caplog) -> Iterator[OIDCProvider]:
    """The loopback provider, well-behaved again, with the app configured to use it."""
    running_provider.reset()
    configure_google(monkeypatch, CLIENT_ID, running_provider.discovery_url)
    caplog.set_level(logging.WARNING, logger=google.__name__)
    yield running_provider
    google.clear_caches()


# No secret in any log line: every record of the whole run, and the browser tests' server log. -----------

TEST_PASSWORDS = ("correct-horse-battery", "analytical-engine-1843", "a-brand-new-secret", "another-good-one")
SECRET_SHAPES = (
    re.compile(r"cbg_live_[A-Za-z0-9_-]{20,}"),
    re.compile(r"[?&]token=[A-Za-z0-9_.-]{20,}"),
    re.compile(r"clearbg_(session|visitor)=[A-Za-z0-9_-]{20,}"),
)


class RecordingHandler(logging.Handler):
    """Keeps every formatted line the code under test logs (httpx's are the test client's own)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if not record.name.startswith("httpx"):
            self.lines.append(self.format(record))


log_recorder = RecordingHandler()


def pytest_configure(config) -> None:
    logging.getLogger().addHandler(log_recorder)
    logging.getLogger("clearbg_app").setLevel(logging.INFO)


def leaked_secrets(lines: list[str]) -> list[str]:
    return [
        line[:200]
        for line in lines
        if any(password in line for password in TEST_PASSWORDS) or any(shape.search(line) for shape in SECRET_SHAPES)
    ]


def pytest_sessionfinish(session, exitstatus) -> None:
    server_logs = sorted((PROJECT_ROOT / "test-artifacts").glob("app*.log"))  # one per app the browser tests ran
    lines = log_recorder.lines + [line for log in server_logs for line in log.read_text().splitlines()]
    if leaks := leaked_secrets(lines):
        print("\nSECRETS IN LOGS:\n" + "\n".join(leaks))
        session.exitstatus = 1
