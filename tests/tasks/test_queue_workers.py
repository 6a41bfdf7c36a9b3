"""Worker processes on the machine's Redis (a database number of this module's own, flushed after)
and PostgreSQL: `python -m clearbg_app worker` serves single images for `CLEARBG_INFERENCE=queue`
(results, domain errors and the busy answer come back through Redis), two workers share a batch,
and a worker killed while it holds an item leaves it to the other, charged once. A broker that is
down at start-up is a clear error."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from dramatiq import Message
from dramatiq.brokers.redis import RedisBroker
from sqlmodel import select

from clearbg_app.db import get_engine, session_scope
from clearbg_app.inference import InferenceConfig, Job, ModelNotFound, ServerBusy
from clearbg_app.inference.remote import WORKER_PREFIX, QueuePool
from clearbg_app.models import BatchItem, ItemStatus, LedgerEntry
from clearbg_app.services import batches, removal
from clearbg_app.settings import PROJECT_ROOT
from tests.factories import HORSE, SMALL, balance
from tests.mail import free_port
from tests.queue_workers import FAST_RECOVERY, WorkerProcess, held_keys, item_keys

pytestmark = [pytest.mark.multiprocess, pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)]

REDIS_DB = 14  # this module's own database on the machine's Redis


@pytest.fixture
def owner_credits() -> int:
    return 1000


@pytest.fixture
def queue_url():
    url = f"redis://127.0.0.1:6379/{REDIS_DB}"
    client = redis.Redis.from_url(url)
    client.flushdb()
    yield url
    client.flushdb()
    client.close()


def worker_env(db_url: str, data_dir: Path, queue_url: str, name: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("CLEARBG_")}
    return env | FAST_RECOVERY | {
        "CLEARBG_DATABASE_URL": db_url, "CLEARBG_DATA_DIR": str(data_dir), "CLEARBG_QUEUE_URL": queue_url,
        "CLEARBG_SECRET_KEY": "k" * 40, "CLEARBG_INFERENCE_WORKERS": "1", "CLEARBG_INFERENCE_THREADS": "1",
        "CLEARBG_INFERENCE_WARM_UP": "false",
    }  # fmt: skip


@pytest.fixture
def workers(db_url, data_dir, queue_url, tmp_path):
    started: list[WorkerProcess] = []

    def start(name: str) -> WorkerProcess:
        process = WorkerProcess(name, worker_env(db_url, data_dir, queue_url, name), tmp_path / f"{name}.log")
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


def queue_pool(queue_url: str, timeout: float = 60) -> QueuePool:
    sender = RedisBroker(url=queue_url, namespace="clearbg")
    return QueuePool(InferenceConfig(workers=1, queue_size=4), redis.Redis.from_url(queue_url), sender.enqueue, timeout=timeout)


def test_single_images_go_through_the_queue_to_a_worker_and_its_errors_come_back(workers, queue_url, pool):
    remote = queue_pool(queue_url, timeout=3)
    with pytest.raises(ServerBusy):  # no worker yet: the caller is told to come back, not kept waiting
        remote.process(Job(SMALL, max_pixels=50_000_000))
    assert not remote.models
    worker = workers("solo")
    worker.wait_serving()
    remote.timeout = 120
    deadline = time.monotonic() + 20
    while not remote.models and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "u2net" in remote.available_models()
    queued = remote.process(Job(HORSE, max_pixels=50_000_000), lane="web")
    local = pool.process(Job(HORSE, max_pixels=50_000_000))
    assert queued.rendered.size == local.rendered.size and queued.rendered.content[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ModelNotFound, match="no-such-model"):
        remote.process(Job(SMALL, max_pixels=50_000_000, model="no-such-model"))
    with pytest.raises(ServerBusy):
        remote.process(Job(SMALL, max_pixels=50_000_000), timeout=0.001)  # gave up at once: the job is withdrawn
    client = redis.Redis.from_url(queue_url)
    client.set("clearbg:job:forged", b'{"job": "80049500"}')  # unreadable: ends as an error, the worker goes on
    RedisBroker(url=queue_url, namespace="clearbg").enqueue(
        Message(queue_name="inference", actor_name="infer", args=("clearbg:job:forged",), kwargs={}, options={})
    )
    assert remote.process(Job(SMALL, max_pixels=50_000_000)).rendered.size
    assert worker.process.poll() is None and client.get("clearbg:job:forged") is None
    assert any(key.startswith(WORKER_PREFIX.encode()) for key in client.keys())  # its heartbeat


def processing(item_id) -> bool:
    with session_scope() as session:
        return session.get_one(BatchItem, item_id).status == ItemStatus.PROCESSING


def test_two_workers_share_a_batch_and_a_killed_workers_item_finishes_on_the_other_charged_once(
    workers, queue_url, session, owner, store, clock
):
    first, second = workers("worker-a"), workers("worker-b")
    first.wait_serving()
    second.wait_serving()
    options = removal.RemovalOptions()
    sources = [batches.Source(filename=f"{n}.jpg", data=SMALL) for n in range(8)]
    batch = batches.create_batch(session, store=store, user_id=owner.id, sources=sources, options=options, now=clock())
    items = batches.batch_items(session, batch_id=batch.id)
    sender = RedisBroker(url=queue_url, namespace="clearbg")
    for item in items:
        sender.enqueue(Message(queue_name="batch", actor_name="process_batch_item", args=(str(item.id),), kwargs={}, options={}))
    keys = item_keys([item.id for item in items])
    deadline = time.monotonic() + 120
    taken_by_b: set[int] = set()
    while not (held := [keys[key] for key in held_keys(get_engine(), "worker-a") & set(keys) if processing(keys[key])]) or not taken_by_b:
        taken_by_b |= held_keys(get_engine(), "worker-b") & set(keys)  # both workers take items of the one batch
        assert time.monotonic() < deadline, "the two workers did not both take items"
        time.sleep(0.01)
    first.kill()  # mid-item: its lock goes with its connection, its unacknowledged messages go back
    victim = held[0]
    deadline = time.monotonic() + 180
    while True:
        session.expire_all()
        statuses = [session.get_one(BatchItem, item.id).status for item in items]
        if all(status == ItemStatus.DONE for status in statuses):
            break
        assert time.monotonic() < deadline, statuses
        time.sleep(0.2)
    for item in items:
        charged = session.exec(select(LedgerEntry).where(LedgerEntry.reference == f"batch-item:{item.id}")).all()
        assert len(charged) == 1, item.id
    assert balance(session, owner) == 1000 - 8 * 25
    assert session.get_one(BatchItem, victim).attempts >= 2  # taken again by worker-b after worker-a died holding it


def test_a_worker_and_a_web_process_refuse_to_start_when_the_broker_is_down(db_url, data_dir, tmp_path):
    env = worker_env(db_url, data_dir, f"redis://127.0.0.1:{free_port()}/0", "nobody")
    done = subprocess.run([sys.executable, "-m", "clearbg_app", "worker"], cwd=PROJECT_ROOT, env=env, capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert done.returncode == 1
    assert "The task queue at CLEARBG_QUEUE_URL cannot be reached" in done.stderr
    without = {key: value for key, value in env.items() if key != "CLEARBG_QUEUE_URL"}
    refused = subprocess.run([sys.executable, "-m", "clearbg_app", "worker"], cwd=PROJECT_ROOT, env=without, capture_output=True,
                             text=True, timeout=120)  # fmt: skip
    assert refused.returncode == 1 and "set CLEARBG_QUEUE_URL" in refused.stderr
    app = subprocess.run([sys.executable, "-c", "import clearbg_app.clearbg_app"], cwd=PROJECT_ROOT, env=env, capture_output=True,
                         text=True, timeout=120)  # fmt: skip  # the web process's start-up checks
    assert app.returncode == 1 and "The task queue at CLEARBG_QUEUE_URL cannot be reached" in app.stderr


def test_readyz_says_the_queue_is_down(db_url, monkeypatch):
    from starlette.testclient import TestClient

    from clearbg_app.api import build_api
    from tests.conftest import _clear_caches

    monkeypatch.setenv("CLEARBG_QUEUE_URL", f"redis://127.0.0.1:{free_port()}/0")
    _clear_caches()
    answer = TestClient(build_api()).get("/readyz")
    assert answer.status_code == 503 and answer.json()["checks"]["queue"]["status"] == "down"
