"""The task queue in its embedded mode (no CLEARBG_QUEUE_URL: Dramatiq's in-process broker and a
worker thread, no Redis): batch items go through the queue, duplicate and malformed messages end
without effect, an item whose workers kept dying is dead-lettered uncharged, an item another live
worker holds is left to it (PostgreSQL), and each charge is made once."""

from __future__ import annotations

import time
import uuid

import dramatiq
import pytest
from sqlmodel import select

from clearbg_app.db import make_engine, session_scope
from clearbg_app.http.cookies import SESSION_COOKIE
from clearbg_app.models import Batch, BatchItem, BatchStatus, ItemStatus, LedgerEntry
from clearbg_app.services import accounts, batch_worker, batches
from clearbg_app.services.job_runs import single_runner
from clearbg_app.settings import get_settings
from clearbg_app.state.admin import AdminState
from clearbg_app.tasks import actors, broker, worker as queue_worker
from tests.factories import SMALL, balance, create, state_for
from tests.loopback import loopback_only


@pytest.fixture
def owner_credits() -> int:
    return 1000


@pytest.fixture
def served(db_url, pool):
    running = queue_worker.start(pool=pool, url_policy=loopback_only, threads=2)
    yield running
    running.stop()


def items_of(batch_id: str) -> list[BatchItem]:
    with session_scope() as session:
        return batches.batch_items(session, batch_id=uuid.UUID(batch_id))


def wait_until_done(batch_id: str, timeout: float = 120) -> Batch:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with session_scope() as session:
            batch = session.get_one(Batch, uuid.UUID(batch_id))
            if batch.status == BatchStatus.DONE:
                return batch
        time.sleep(0.05)
    pytest.fail(f"batch {batch_id} not done: {[item.status for item in items_of(batch_id)]}")


def drain(timeout: float = 60) -> None:
    """Wait until the in-process queues hold no message due now (delayed ones, such as a mail's retry, stay)."""
    deadline = time.monotonic() + timeout
    while any(broker.broker.queues[name].unfinished_tasks for name in broker.QUEUES):
        assert time.monotonic() < deadline, "the queue did not drain"
        time.sleep(0.02)


def charges(session, item_id) -> int:
    return len(session.exec(select(LedgerEntry).where(LedgerEntry.reference == f"batch-item:{item_id}")).all())


def test_the_embedded_default_needs_no_broker():
    assert broker.embedded and get_settings().queue_url == ""
    broker.check()  # nothing to reach
    assert set(broker.depths()) == set(broker.QUEUES)


def test_a_batch_is_processed_through_the_in_process_queue_and_each_item_charged_once(client, session, owner, key, served):
    batch_id = create(client, key, [(f"{n}.jpg", SMALL) for n in range(3)]).json()["data"]["id"]
    wait_until_done(batch_id)
    items = items_of(batch_id)
    assert [item.status for item in items] == [ItemStatus.DONE] * 3
    for item in items:  # at-least-once: the same message again, twice, does nothing
        actors.process_batch_item.send(str(item.id))
        actors.process_batch_item.send(str(item.id))
    drain()
    session.expire_all()
    assert all(charges(session, item.id) == 1 for item in items)
    assert balance(session, owner) == 1000 - 3 * 25
    assert broker.dead_letters() == 0


@pytest.mark.parametrize("payload", [123, "not-a-uuid", str(uuid.uuid4()), "", "x" * 5000, None])
def test_malformed_messages_end_cleanly_and_the_queue_goes_on(client, key, served, payload):
    actors.process_batch_item.send(payload)
    actors.deliver_webhook.send(payload)
    actors.infer.send(payload)
    drain()
    assert broker.dead_letters() == 0  # handled, not retried into Dramatiq's dead letters
    batch_id = create(client, key, (("a.jpg", SMALL),)).json()["data"]["id"]
    assert wait_until_done(batch_id) and items_of(batch_id)[0].status == ItemStatus.DONE


def test_an_item_whose_workers_kept_dying_is_dead_lettered_uncharged_and_the_batch_reports_it(
    client, session, owner, key, pool, db_url, clock
):
    batch_id = create(client, key, (("a.jpg", SMALL), ("b.jpg", SMALL))).json()["data"]["id"]
    poison, fine = items_of(batch_id)
    processor = batch_worker.BatchWorker(pool=pool, url_policy=loopback_only)
    # What a worker that dies holding the item leaves behind, `queue_max_attempts` times over.
    with session_scope() as scope:
        row = scope.get_one(BatchItem, poison.id)
        row.status, row.attempts = ItemStatus.PROCESSING, get_settings().queue_max_attempts
    assert processor.process_item(fine.id).webhook_due is False
    outcome = processor.process_item(poison.id)
    assert outcome.batch_id == poison.batch_id
    session.expire_all()
    dead = session.get_one(BatchItem, poison.id)
    assert dead.status == ItemStatus.FAILED and dead.error_code == "dead_letter" and dead.credits_units == 0
    assert charges(session, poison.id) == 0 and charges(session, fine.id) == 1
    assert balance(session, owner) == 1000 - 25
    view = client.get(f"/api/v1.0/batches/{batch_id}", headers={"X-Api-Key": key}).json()["data"]
    assert view["status"] == "done" and view["counts"]["failed"] == 1
    assert view["items"][0]["errors"][0]["code"] == "dead_letter"
    assert [item.id for item in batch_worker.dead_letters(session)] == [poison.id]
    admin = accounts.make_admin(session, email="ops@example.com", now=clock())[0]
    state = state_for(AdminState, f"{SESSION_COOKIE}={accounts.start_session(session, user=admin, user_agent='t', ip='10.0.0.1')}")
    state.load()  # /admin lists it
    assert [(row.item, row.file, row.attempts) for row in state.dead_items] == [(str(poison.id), "a.jpg", "3")]
    assert processor.process_item(poison.id).requeued is False  # a later delivery changes nothing


def test_an_interrupted_item_under_the_limit_is_taken_over_and_charged_once(client, session, owner, key, pool, db_url):
    batch_id = create(client, key, (("a.jpg", SMALL),)).json()["data"]["id"]
    (item,) = items_of(batch_id)
    processor = batch_worker.BatchWorker(pool=pool, url_policy=loopback_only)
    with session_scope() as scope:  # a worker died holding it once
        row = scope.get_one(BatchItem, item.id)
        row.status, row.attempts = ItemStatus.PROCESSING, 1
    assert processor.process_item(item.id).webhook_due is False
    session.expire_all()
    done = session.get_one(BatchItem, item.id)
    assert done.status == ItemStatus.DONE and done.attempts == 2 and charges(session, item.id) == 1


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)  # the lock is PostgreSQL's; SQLite serves one process
def test_an_item_another_live_worker_holds_is_left_to_it(client, session, owner, key, pool, db_url):
    batch_id = create(client, key, (("a.jpg", SMALL),)).json()["data"]["id"]
    (item,) = items_of(batch_id)
    processor = batch_worker.BatchWorker(pool=pool, url_policy=loopback_only)
    other = make_engine(db_url)  # another worker's connection
    try:
        with single_runner(f"batch-item:{item.id}", other) as held:
            assert held
            assert processor.process_item(item.id).batch_id is None  # nothing done, nothing charged
            assert items_of(batch_id)[0].status == ItemStatus.QUEUED
        processor.process_item(item.id)  # the lock is gone with its holder: the item is processed
    finally:
        other.dispose()
    session.expire_all()
    assert items_of(batch_id)[0].status == ItemStatus.DONE


def test_copies_of_one_message_at_once_process_the_item_once(client, session, owner, key, served):
    batch_id = create(client, key, (("a.jpg", SMALL),)).json()["data"]["id"]
    (item,) = items_of(batch_id)
    actors.process_batch_item.send(str(item.id))  # the worker's other thread gets a copy while the first runs
    wait_until_done(batch_id)
    drain()
    session.expire_all()
    done = session.get_one(BatchItem, item.id)
    assert done.status == ItemStatus.DONE and done.attempts == 1 and charges(session, item.id) == 1


def test_a_requested_export_is_built_by_the_queue_once_and_bad_messages_do_nothing(session, clock, owner, served, store):
    from clearbg_app.models import DataExport, ExportStatus  # noqa: PLC0415
    from clearbg_app.services import exports  # noqa: PLC0415

    export = exports.request_export(session, user=owner)
    drain()
    session.expire_all()
    built = session.get_one(DataExport, export.id)
    assert built.status == ExportStatus.READY and built.blob_key and store.exists(built.blob_key)
    ready_at, key = built.ready_at, built.blob_key
    for message in (str(export.id), str(uuid.uuid4()), "not-an-id", "", 42, None):  # a copy, an unknown id, malformed
        actors.build_export.send(message)
    drain()
    session.expire_all()
    again = session.get_one(DataExport, export.id)
    assert (again.status, again.ready_at, again.blob_key) == (ExportStatus.READY, ready_at, key)  # built once
    assert len(session.exec(select(DataExport).where(DataExport.user_id == owner.id)).all()) == 1


FAILING_CALLS: list[int] = []


@dramatiq.actor(queue_name="default", max_retries=1, min_backoff=10, max_backoff=20)
def always_fails() -> None:
    FAILING_CALLS.append(1)
    raise RuntimeError("a task that keeps failing")


def test_task_outcomes_and_queue_depths_are_metrics(db_url, served, client, monkeypatch):
    from clearbg_app import metrics  # noqa: PLC0415

    def sample(outcome: str) -> float:
        return metrics.REGISTRY.get_sample_value("clearbg_tasks_total", {"actor": "always_fails", "outcome": outcome}) or 0.0

    FAILING_CALLS.clear()
    before = sample("retried"), sample("given_up")
    always_fails.send()
    deadline = time.monotonic() + 30
    while sample("given_up") < before[1] + 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert (len(FAILING_CALLS), sample("retried") - before[0], sample("given_up") - before[1]) == (2, 1, 1)  # tried, retried once, given up
    monkeypatch.setenv("CLEARBG_METRICS_TOKEN", "scrape-token-for-tests")
    get_settings.cache_clear()
    text = client.get("/metrics", headers={"Authorization": "Bearer scrape-token-for-tests"}).text
    assert 'clearbg_task_queue_depth{queue="batch"}' in text and "clearbg_task_dead_letters" in text
    assert 'clearbg_tasks_total{actor="always_fails",outcome="given_up"}' in text
