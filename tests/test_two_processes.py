"""Two real app processes behind one site (`reflex run --env prod --backend-only`, as a load balancer's
pool would run them), sharing PostgreSQL, a Redis of the test's own (Reflex's page state and the rate
limits), S3 on moto and one secret, each with its own empty data dir: a session made on one is
recognised by the other, a batch sent to one is processed and downloaded from the other, and both
processes' /readyz turn 503 while the shared Redis is stopped and 200 when it is back."""

from __future__ import annotations

import io
import os
import secrets
import signal
import subprocess
import sys
import time
import uuid
import zipfile
from pathlib import Path

import httpx
import pytest
from sqlmodel import Session, create_engine, select

from clearbg_app.models import EntryKind, LedgerEntry, User
from clearbg_app.services import api_keys, credits
from clearbg_app.settings import PROJECT_ROOT
from tests.conftest import FakeClock
from tests.images import encode, horse
from tests.mail import free_port
from tests.redis_server import OwnRedis
from tests.s3_server import ACCESS_KEY, REGION, SECRET_KEY

pytestmark = pytest.mark.multiprocess

PASSWORD = "correct-horse-battery"
SMALL = encode(horse().resize((200, 155)), "JPEG", quality=85)
TOOLS_BIN = PROJECT_ROOT / ".tools" / "node_modules" / ".bin"


class AppProcess:
    def __init__(self, name: str, port: int, env: dict[str, str], log: Path) -> None:
        self.name, self.url, self.log = name, f"http://127.0.0.1:{port}", log
        with log.open("w") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "reflex", "run", "--env", "prod", "--backend-only",
                 "--backend-port", str(port), "--backend-host", "127.0.0.1"],
                cwd=PROJECT_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip

    def wait_ready(self, timeout: float = 480) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"{self.name} exited with {self.process.returncode}:\n{self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(2)
        pytest.fail(f"{self.name} was not ready within {timeout:.0f} s:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)


@pytest.fixture
def site(tmp_path, postgres_url, s3_endpoint, s3_bucket):
    redis = OwnRedis()
    redis.start()
    ports = free_port(), free_port()
    shared = {
        "CLEARBG_DATABASE_URL": postgres_url,
        "CLEARBG_SECRET_KEY": secrets.token_urlsafe(48),
        "CLEARBG_PUBLIC_URL": f"http://127.0.0.1:{ports[0]}",
        "CLEARBG_CORS_ORIGINS": f"http://127.0.0.1:{ports[1]}",
        "REFLEX_REDIS_URL": redis.url,
        "CLEARBG_REDIS_URL": redis.url.replace("/0", "/1"),
        "CLEARBG_STORAGE_URL": f"s3://{s3_bucket}/site-{uuid.uuid4().hex}",
        "CLEARBG_S3_ENDPOINT_URL": s3_endpoint,
        "CLEARBG_S3_REGION": REGION,
        "CLEARBG_S3_ACCESS_KEY_ID": ACCESS_KEY,
        "CLEARBG_S3_SECRET_ACCESS_KEY": SECRET_KEY,
        "CLEARBG_INFERENCE_WORKERS": "1",
        "GRANIAN_WORKERS": "1",  # with Redis, Reflex would start 2 x cores + 1 workers per process (docs/deploy.md)
        "CLEARBG_READINESS_TIMEOUT_SECONDS": "1",
        "PATH": f"{TOOLS_BIN}:{Path(sys.executable).parent}:{os.environ['PATH']}",
        "REFLEX_USE_SYSTEM_BUN": "1",
        "REFLEX_TELEMETRY_ENABLED": "false",
        "REFLEX_CHECK_LATEST_VERSION": "false",
    }
    base = {key: value for key, value in os.environ.items() if not key.startswith(("CLEARBG_", "REFLEX_"))}
    apps = []
    try:
        for name, port in zip("AB", ports, strict=True):
            data = tmp_path / f"data-{name}"
            env = {**base, **shared, "CLEARBG_DATA_DIR": str(data), "REFLEX_STATES_WORKDIR": str(data / "reflex-states")}
            apps.append(AppProcess(name, port, env, tmp_path / f"app-{name}.log"))
        for app in apps:
            app.wait_ready()
        yield apps, redis, postgres_url
    finally:
        for app in apps:
            app.stop()
        redis.stop()


def origin(app: AppProcess) -> dict[str, str]:
    return {"origin": app.url}


def test_two_processes_serve_one_site(site):
    (a, b), redis, db_url = site
    for app in (a, b):
        checks = httpx.get(f"{app.url}/readyz").json()["checks"]
        assert set(checks) == {"database", "storage", "model", "redis", "reflex_redis"}

    # A session made on B is recognised on A (and signing out on A ends it on B).
    signup = {"email": "ada@example.com", "display_name": "Ada", "password": PASSWORD, "adult": "on", "accept": "on"}
    assert httpx.post(f"{a.url}/auth/signup", data=signup, headers=origin(a)).status_code == 303
    login = httpx.post(f"{b.url}/auth/login", data={"email": "ada@example.com", "password": PASSWORD}, headers=origin(b))
    assert login.status_code == 303
    cookies = login.cookies
    export = f"/api/privacy/exports/{uuid.uuid4()}"
    assert httpx.get(a.url + export).json()["error"] == "Sign in to download your export."
    assert httpx.get(a.url + export, cookies=cookies).json()["error"].startswith("No such export")  # signed in on A

    # A batch sent to A is processed by the workers of the site and downloaded from B, charged once per item.
    engine = create_engine(db_url)
    with Session(engine, expire_on_commit=False) as session:
        user = session.exec(select(User).where(User.email == "ada@example.com")).one()
        user.email_verified_at = FakeClock().now
        session.add(user)
        credits.grant(session, user_id=user.id, units=1000, kind=EntryKind.PURCHASE, reason="test", reference=f"test:{uuid.uuid4()}")
        session.commit()
        _, key = api_keys.create_key(session, user=user, label="two processes")
    headers = {"X-Api-Key": key}
    files = [("image_file", (f"{n}.jpg", SMALL, "image/jpeg")) for n in range(3)]
    created = httpx.post(f"{a.url}/api/v1.0/batches", files=files, headers=headers, timeout=60)
    assert created.status_code == 202, created.text
    batch_id = created.json()["data"]["id"]
    deadline = time.monotonic() + 240
    while (shown := httpx.get(f"{b.url}/api/v1.0/batches/{batch_id}", headers=headers).json()["data"])["status"] != "done":
        assert time.monotonic() < deadline, shown
        time.sleep(1)
    archive = zipfile.ZipFile(io.BytesIO(httpx.get(f"{b.url}/api/v1.0/batches/{batch_id}/result.zip", headers=headers, timeout=60).content))
    assert sorted(archive.namelist()) == ["0.png", "1.png", "2.png"]
    with Session(engine) as session:
        charges = session.exec(select(LedgerEntry).where(LedgerEntry.kind == EntryKind.USAGE)).all()
    assert len(charges) == 3 and len({entry.reference for entry in charges}) == 3
    engine.dispose()

    # The shared Redis stops: both processes say so; it comes back: both are ready again.
    redis.stop()
    for app in (a, b):
        down = httpx.get(f"{app.url}/readyz", timeout=10)
        assert down.status_code == 503
        assert down.json()["checks"]["redis"]["status"] == down.json()["checks"]["reflex_redis"]["status"] == "down"
        assert down.json()["checks"]["database"]["status"] == "ok"
        assert httpx.get(f"{app.url}/healthz").status_code == 200
    redis.start()
    for app in (a, b):
        assert httpx.get(f"{app.url}/readyz", timeout=10).status_code == 200
