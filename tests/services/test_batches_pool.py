"""Batch items use the inference pool's low-priority lane: a single request is served while a large
batch is queued, and the in-process queue worker stops cleanly."""

from __future__ import annotations

import time

import pytest
from sqlmodel import func, select

from clearbg_app.db import session_scope
from clearbg_app.inference import InferenceConfig, InferencePool, Job
from clearbg_app.models import BatchItem, ItemStatus
from clearbg_app.tasks import worker as queue_worker
from tests.factories import ENDPOINT, HORSE, SMALL, api_client, create
from tests.loopback import loopback_only


@pytest.fixture
def owner_credits() -> int:
    return 1000

pytestmark = pytest.mark.both_blob_backends  # the local directory, and S3 on moto


@pytest.fixture
def one_worker_pool():
    pool = InferencePool(InferenceConfig(workers=1, queue_size=4, warm_up=False))
    yield pool
    pool.close()


def counts() -> dict[str, int]:
    with session_scope() as session:
        rows = session.exec(select(BatchItem.status, func.count()).group_by(BatchItem.status)).all()
    return {status: n for status, n in rows}


def wait_for(condition, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_submit_if_idle_never_queues_behind_or_ahead_of_requests(one_worker_pool):
    job = Job(HORSE, max_pixels=50_000_000)
    running = one_worker_pool.submit(job)
    assert one_worker_pool.submit_if_idle(job) is None  # the only worker is busy: the batch waits, nothing queued
    assert one_worker_pool.in_flight == 1
    running.result()
    background = one_worker_pool.submit_if_idle(job)
    assert background is not None
    background.result()


def test_a_single_request_is_served_while_a_large_batch_is_queued(db_url, one_worker_pool, key, store):
    client = api_client(one_worker_pool, url_policy=loopback_only)
    assert create(client, key, [(f"{n}.jpg", SMALL) for n in range(12)]).status_code == 202
    worker = queue_worker.start(pool=one_worker_pool, threads=2)
    try:
        wait_for(lambda: counts().get(ItemStatus.DONE, 0) >= 1)
        started = time.perf_counter()
        response = client.post(ENDPOINT, files={"image_file": ("horse.jpg", HORSE, "image/jpeg")}, headers={"X-Api-Key": key})
        waited = time.perf_counter() - started
        left = counts()
        assert response.status_code == 200, response.text
        assert left.get(ItemStatus.QUEUED, 0) >= 6, (left, waited)  # served long before the batch's end
    finally:
        worker.stop()
    assert counts().get(ItemStatus.PROCESSING, 0) == 0  # stopped cleanly: nothing left half-done
    worker = queue_worker.start(pool=one_worker_pool, threads=2)
    try:
        wait_for(lambda: counts().get(ItemStatus.DONE, 0) == 12)
    finally:
        worker.stop()
