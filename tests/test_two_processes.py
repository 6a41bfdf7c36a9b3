"""Two real app processes behind one site (`reflex run --env prod --backend-only`, as a load balancer's
pool would run them), sharing PostgreSQL, a Redis of the test's own (Reflex's page state and the rate
limits), S3 on moto and one secret, each with its own empty data dir: a session made on one is
recognised by the other, a browser tab's page state is one record in Redis that both serve (over
Reflex's event socket), a batch sent to one is processed and downloaded from the other, and both
processes' /readyz turn 503 while the shared Redis is stopped and 200 when it is back. The web
processes hold no model (`CLEARBG_INFERENCE=queue`): two `python -m clearbg_app worker` processes
serve their single images and batches through the task queue on that Redis, and a worker killed
while it holds a batch item leaves it to the other, charged once."""

from __future__ import annotations

import asyncio
import io
import json
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
import redis as redis_client
import socketio
from sqlmodel import Session, select

from clearbg_app.clock import utcnow
from clearbg_app.db import make_engine
from clearbg_app.models import BatchItem, ItemStatus, LedgerEntry
from clearbg_app.services import api_keys, batches, credits
from clearbg_app.settings import PROJECT_ROOT
from tests.factories import BATCHES, ENDPOINT, give, verified_user
from tests.images import encode, horse
from tests.mail import free_port
from tests.queue_workers import FAST_RECOVERY, WorkerProcess, held_keys, item_keys
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
        "CLEARBG_INFERENCE_THREADS": "1",
        "CLEARBG_QUEUE_URL": redis.url.replace("/0", "/2"),
        "CLEARBG_INFERENCE": "queue",  # the web processes send images to the workers
        "GRANIAN_WORKERS": "1",  # with Redis, Reflex would start 2 x cores + 1 workers per process (docs/deploy.md)
        "CLEARBG_READINESS_TIMEOUT_SECONDS": "1",
        "PATH": f"{TOOLS_BIN}:{Path(sys.executable).parent}:{os.environ['PATH']}",
        "REFLEX_USE_SYSTEM_BUN": "1",
        "REFLEX_TELEMETRY_ENABLED": "false",
        "REFLEX_CHECK_LATEST_VERSION": "false",
    }
    base = {key: value for key, value in os.environ.items() if not key.startswith(("CLEARBG_", "REFLEX_"))}
    apps, workers = [], []
    try:
        for name in ("worker-1", "worker-2"):
            env = {**base, **shared, **FAST_RECOVERY, "CLEARBG_DATA_DIR": str(tmp_path / f"data-{name}")}
            workers.append(WorkerProcess(name, env, tmp_path / f"{name}.log"))
        for name, port in zip("AB", ports, strict=True):
            data = tmp_path / f"data-{name}"
            env = {**base, **shared, "CLEARBG_DATA_DIR": str(data), "REFLEX_STATES_WORKDIR": str(data / "reflex-states")}
            apps.append(AppProcess(name, port, env, tmp_path / f"app-{name}.log"))
        for worker in workers:
            worker.wait_serving()
        for app in apps:
            app.wait_ready()  # ready only once a worker's heartbeat names its models
        yield apps, redis, postgres_url, workers
    finally:
        for process in [*apps, *workers]:
            process.stop()
        redis.stop()


def origin(app: AppProcess) -> dict[str, str]:
    return {"origin": app.url}


STATE = "reflex___state____state"
BATCH_STATE = f"{STATE}.clearbg_app___state___base____session_state.clearbg_app___state___batch____batch_state"


async def tab_event(app: AppProcess, token: str, name: str, payload: dict) -> list[dict]:
    """One event of a browser tab (`token`) over Reflex's event socket on `app`; the state updates it got."""
    client = socketio.AsyncClient(reconnection=False)
    updates: list[dict] = []
    final = asyncio.Event()

    @client.on("event", namespace="/_event")
    async def on_update(update):
        updates.append(update)
        if update.get("final", True):
            final.set()

    await client.connect(f"{app.url}?token={token}", socketio_path="/_event", transports=["websocket"],
                         namespaces=["/_event"], headers={"Origin": app.url}, wait_timeout=20)  # fmt: skip
    try:
        await client.emit("event", {"name": name, "payload": payload, "router_data": {"pathname": "/", "asPath": "/"}}, namespace="/_event")
        await asyncio.wait_for(final.wait(), 30)
    finally:
        await client.disconnect()
    return updates


def tab_state_in_redis(redis_url: str, token: str) -> tuple[bytes, int]:
    """The tab's batch state as Reflex stored it in the shared Redis (pickled), and its time to live."""
    client = redis_client.Redis.from_url(redis_url)
    try:
        [key] = [key for key in client.keys(f"{token}*") if key.decode().endswith("batch____batch_state")]
        return client.get(key), client.ttl(key)
    finally:
        client.close()


def test_a_tabs_page_state_is_one_record_in_redis_that_both_processes_serve(site):
    (a, b), redis, *_ = site
    tab = uuid.uuid4().hex
    full, preview = "Full resolution (1 credit each)", "Preview (0.25 credit each)"  # preview is the default
    assert full in json.dumps(asyncio.run(tab_event(a, tab, f"{BATCH_STATE}.set_size_label", {"label": full})))
    stored, ttl = tab_state_in_redis(redis.url, tab)
    assert full.encode() in stored and 0 < ttl <= 60 * 60  # CLEARBG_STATE_EXPIRY_MINUTES
    assert preview in json.dumps(asyncio.run(tab_event(b, tab, f"{BATCH_STATE}.set_size_label", {"label": preview})))
    stored, _ = tab_state_in_redis(redis.url, tab)
    assert preview.encode() in stored and full.encode() not in stored  # B changed the record A wrote
    assert full in json.dumps(asyncio.run(tab_event(a, tab, f"{BATCH_STATE}.set_size_label", {"label": full})))
    assert full.encode() in tab_state_in_redis(redis.url, tab)[0]


def test_single_images_and_a_batch_go_to_the_workers_and_a_killed_workers_item_is_charged_once(site):
    (a, b), _, postgres_url, (first, second) = site
    engine = make_engine(postgres_url)
    with Session(engine, expire_on_commit=False) as session:
        owner = verified_user(session, utcnow, email="queue@example.com")
        give(session, owner, 1000)
        key = api_keys.create_key(session, user=owner, label="queue", now=utcnow())[1]
        before = credits.balance(session, user_id=owner.id)
    headers = {"X-Api-Key": key}
    single = httpx.post(f"{a.url}{ENDPOINT}", files={"image_file": ("a.jpg", SMALL, "image/jpeg")}, headers=headers, timeout=120)
    assert single.status_code == 200 and single.content[:4] == b"\x89PNG"  # web process A holds no model
    assert httpx.get(f"{b.url}/readyz", timeout=10).json()["checks"]["queue"]["status"] == "ok"
    created = httpx.post(f"{a.url}{BATCHES}", files=[("image_file", (f"{n}.jpg", SMALL, "image/jpeg")) for n in range(6)],
                         headers=headers, timeout=60)  # fmt: skip
    assert created.status_code == 202, created.text
    batch_id = created.json()["data"]["id"]
    with Session(engine) as session:
        item_ids = [item.id for item in batches.batch_items(session, batch_id=uuid.UUID(batch_id))]
    keys = item_keys(item_ids)
    deadline = time.monotonic() + 180
    while not (held := held_keys(engine, first.name) & set(keys)):
        assert time.monotonic() < deadline, "worker-1 never took an item"
        time.sleep(0.01)
    first.kill()  # while it holds an item
    deadline = time.monotonic() + 240
    while (view := httpx.get(f"{b.url}{BATCHES}/{batch_id}", headers=headers, timeout=10).json()["data"])["status"] != "done":
        assert time.monotonic() < deadline, view["counts"]
        time.sleep(0.5)
    assert view["counts"]["done"] == 6
    archive = zipfile.ZipFile(io.BytesIO(httpx.get(f"{b.url}{BATCHES}/{batch_id}/result.zip", headers=headers, timeout=60).content))
    assert len(archive.namelist()) == 6
    with Session(engine) as session:
        victim = session.get(BatchItem, keys[next(iter(held))])
        assert victim is not None and victim.status == ItemStatus.DONE
        for item_id in item_ids:
            assert len(session.exec(select(LedgerEntry).where(LedgerEntry.reference == f"batch-item:{item_id}")).all()) == 1
        assert credits.balance(session, user_id=owner.id) == before - 25 - 6 * 25  # the single image and each item once
    engine.dispose()
