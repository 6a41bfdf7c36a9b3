"""Batch jobs through the API (SQLite and PostgreSQL, a real inference pool): creation, per-item status
and errors, charging, result.zip, cancelling, limits, ownership, crash recovery, retention."""

from __future__ import annotations

import base64
import io
import uuid
import zipfile
from datetime import timedelta

import pytest
from PIL import Image
from sqlmodel import select

from clearbg_app.clock import as_utc
from clearbg_app.db import session_scope
from clearbg_app.models import Batch, BatchItem, EntryKind, ItemStatus, LedgerEntry
from clearbg_app.services import api_keys, batch_worker, batches
from clearbg_app.services.errors import NotFound
from clearbg_app.services.jobs import batch_webhooks_job, purge_batches_job, scheduled_jobs
from tests.conftest import _clear_caches
from tests.factories import BATCHES, SMALL, api_client, balance, create, files, give, run_all, verified_user
from tests.images import text_as_jpeg

pytestmark = pytest.mark.both_blob_backends  # the local directory, and S3 on moto



@pytest.fixture
def owner_credits() -> int:
    return 1000


def show(client, key, batch_id):
    return client.get(f"{BATCHES}/{batch_id}", headers={"X-Api-Key": key})


def zip_of(client, key, batch_id) -> zipfile.ZipFile:
    response = client.get(f"{BATCHES}/{batch_id}/result.zip", headers={"X-Api-Key": key})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    return zipfile.ZipFile(io.BytesIO(response.content))


def test_a_bad_file_among_good_ones_fails_alone_and_costs_nothing(client, session, owner, key, worker):
    response = create(client, key, (("horse.jpg", SMALL), ("notes.jpg", text_as_jpeg()), ("pony.jpg", SMALL)))
    assert response.status_code == 202, response.text
    batch_id = response.json()["data"]["id"]
    assert response.headers["location"] == f"{BATCHES}/{batch_id}"
    assert [item["status"] for item in response.json()["data"]["items"]] == ["queued"] * 3

    assert run_all(worker) == 3
    view = show(client, key, batch_id).json()["data"]
    assert view["status"] == "done" and view["counts"]["done"] == 2 and view["counts"]["failed"] == 1
    good, bad, other = view["items"]
    assert (good["status"], other["status"], bad["status"]) == ("done", "done", "failed")
    assert bad["errors"][0]["code"] == "invalid_image" and bad["errors"][0]["title"] and bad["errors"][0]["detail"]
    assert bad["credits_charged"] == "0" and good["credits_charged"] == "0.25"
    assert view["credits_charged"] == "0.5"
    assert balance(session, owner) == 1000 - 50
    references = session.exec(select(LedgerEntry.reference).where(LedgerEntry.kind == EntryKind.USAGE)).all()
    assert sorted(references) == sorted(f"batch-item:{item['id']}" for item in (good, other))

    archive = zip_of(client, key, batch_id)
    assert archive.namelist() == ["horse.png", "pony.png"]
    cutout = Image.open(io.BytesIO(archive.read("horse.png")))
    assert cutout.mode == "RGBA" and cutout.size == (200, 155)


def test_zip_names_are_safe_and_deduplicated(client, key, worker):
    named = (("../../etc/passwd.jpg", SMALL), ("photo.jpg", SMALL), ("PHOTO.jpeg", SMALL), ("C:\\Users\\me\\photo.jpg", SMALL), ("..", SMALL))
    batch_id = create(client, key, named, format="jpg").json()["data"]["id"]
    run_all(worker)
    names = zip_of(client, key, batch_id).namelist()
    assert names == ["passwd.jpg", "photo.jpg", "PHOTO (2).jpg", "photo (3).jpg", "image-5.jpg"]
    assert not any("/" in name or "\\" in name for name in names)


def test_json_batches_take_urls_and_base64_and_the_options(client, key, worker, server):
    base = server
    if True:
        body = {
            "images_b64": [base64.b64encode(SMALL).decode(), {"filename": "named.jpg", "data": base64.b64encode(SMALL).decode()}],
            "image_urls": [f"{base}/horse.jpg", "http://169.254.169.254/latest/meta-data/", "http://10.0.0.1/cat.jpg"],
            "bg_color": "red",
            "size": "preview",
        }
        response = client.post(BATCHES, json=body, headers={"X-Api-Key": key})
        assert response.status_code == 202, response.text
        run_all(worker)
    items = show(client, key, response.json()["data"]["id"]).json()["data"]["items"]
    assert [item["status"] for item in items] == ["done", "done", "done", "failed", "failed"]
    assert [item["filename"] for item in items[:3]] == ["image-1", "named.jpg", "horse.jpg"]
    assert {item["errors"][0]["code"] for item in items[3:]} == {"url_refused"}
    archive = zip_of(client, key, response.json()["data"]["id"])
    assert archive.namelist() == ["image-1.jpg", "named.jpg", "horse.jpg"]  # bg_color makes an opaque JPG
    assert Image.open(io.BytesIO(archive.read("named.jpg"))).getpixel((0, 0))[0] > 200  # red background


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"images_b64": ["aGVsbG8=", "not base64!"]}, "invalid_parameter"),
        ({"images_b64": []}, "missing_source"),
        ({"image_urls": "http://example.com/a.jpg"}, "invalid_parameter"),
        ({"images_b64": [{"filename": 3, "data": "aGVsbG8="}]}, "invalid_parameter"),
        ({"image_urls": [""]}, "missing_source"),
        ({"image_url": "http://example.com/a.jpg"}, "invalid_parameter"),
        ({"images_b64": ["aGVsbG8="], "size": "gigantic"}, "invalid_parameter"),
        ({"images_b64": ["aGVsbG8="], "webhook_url": "ftp://example.com/hook"}, "webhook_refused"),
    ],
)
def test_bad_batches_are_refused_whole_and_store_nothing(client, session, key, store, body, code):
    response = client.post(BATCHES, json=body, headers={"X-Api-Key": key})
    assert response.status_code == 400, response.text
    assert response.json()["errors"][0]["code"] == code
    assert session.exec(select(Batch)).all() == [] and list(store.keys()) == []


def test_zero_items_in_a_form(client, key):
    response = client.post(BATCHES, data={"size": "preview"}, headers={"X-Api-Key": key})
    assert response.status_code == 400 and response.json()["errors"][0]["code"] == "missing_source"


def test_an_image_file_sent_as_text_is_refused_not_dropped(client, key):
    response = client.post(BATCHES, files=files(("a.jpg", SMALL)), data={"image_file": "hello"}, headers={"X-Api-Key": key})
    assert response.status_code == 400 and "must be a file upload" in response.json()["errors"][0]["detail"]


def test_too_many_items_and_too_many_bytes(client, key, monkeypatch):
    monkeypatch.setenv("CLEARBG_BATCH_MAX_ITEMS", "3")
    monkeypatch.setenv("CLEARBG_BATCH_MAX_BYTES", str(len(SMALL) * 2 + 10))
    _clear_caches()
    too_many = create(client, key, [(f"{n}.jpg", b"x") for n in range(4)])
    assert too_many.status_code == 400 and too_many.json()["errors"][0]["code"] == "too_many_items"
    assert "at most 3" in too_many.json()["errors"][0]["detail"]
    too_big = create(client, key, [(f"{n}.jpg", SMALL) for n in range(3)])
    assert too_big.status_code == 413 and too_big.json()["errors"][0]["code"] == "file_too_large"
    assert create(client, key, [(f"{n}.jpg", SMALL) for n in range(2)]).status_code == 202


@pytest.mark.parametrize("target", ["http://127.0.0.1:9/hook", "http://10.0.0.1/hook", "http://169.254.169.254/latest", "http://[::1]/hook"])
def test_webhook_urls_inside_the_network_are_refused_at_creation(db_url, pool, key, target, session):
    response = create(api_client(pool), key, webhook_url=target)  # the production address policy
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "webhook_refused"
    assert session.exec(select(Batch)).all() == []


def test_only_the_owner_sees_a_batch(client, session, clock, key, worker):
    batch_id = create(client, key).json()["data"]["id"]
    run_all(worker)
    stranger = verified_user(session, clock, email="stranger@example.com")
    other_key = api_keys.create_key(session, user=stranger, label="other", now=clock())[1]
    for path in (f"{BATCHES}/{batch_id}", f"{BATCHES}/{batch_id}/result.zip"):
        assert client.get(path, headers={"X-Api-Key": other_key}).status_code == 404
    assert client.delete(f"{BATCHES}/{batch_id}", headers={"X-Api-Key": other_key}).status_code == 404
    for unknown in (uuid.uuid4(), "not-a-uuid"):
        answer = client.get(f"{BATCHES}/{unknown}", headers={"X-Api-Key": key})
        assert answer.status_code == 404 and answer.json()["errors"][0]["code"] == "not_found"
    assert client.get(f"{BATCHES}/{batch_id}").status_code == 403  # no key at all
    assert client.get(f"/api/batches/{batch_id}/result.zip").status_code == 404  # the page's route needs the session


def test_result_zip_before_anything_is_done_is_409_then_empty_when_all_failed(client, key, worker):
    batch_id = create(client, key, (("a.jpg", text_as_jpeg()),)).json()["data"]["id"]
    early = client.get(f"{BATCHES}/{batch_id}/result.zip", headers={"X-Api-Key": key})
    assert early.status_code == 409 and early.json()["errors"][0]["code"] == "batch_not_ready"
    assert early.headers["retry-after"]
    run_all(worker)
    assert zip_of(client, key, batch_id).namelist() == []


def test_cancel_stops_what_has_not_started_and_charges_nothing_for_it(client, session, owner, key, worker):
    batch_id = create(client, key, [(f"{n}.jpg", SMALL) for n in range(4)]).json()["data"]["id"]
    assert worker.run_once()
    response = client.delete(f"{BATCHES}/{batch_id}", headers={"X-Api-Key": key})
    assert response.status_code == 200
    view = response.json()["data"]
    assert view["status"] == "done" and view["counts"] == {"queued": 0, "processing": 0, "done": 1, "failed": 0, "cancelled": 3}
    assert not worker.run_once()
    assert balance(session, owner) == 1000 - 25


def test_insufficient_credits_fail_the_items_left_and_the_rest_go_on(client, session, clock, worker):
    poor = verified_user(session, clock, email="poor@example.com")
    give(session, poor, 50)  # two previews
    key = api_keys.create_key(session, user=poor, label="poor", now=clock())[1]
    batch_id = create(client, key, [(f"{n}.jpg", SMALL) for n in range(3)]).json()["data"]["id"]
    run_all(worker)
    items = show(client, key, batch_id).json()["data"]["items"]
    assert [item["status"] for item in items] == ["done", "done", "failed"]
    assert items[2]["errors"][0]["code"] == "insufficient_credits"
    assert balance(session, poor) == 0


def test_an_item_interrupted_by_a_crash_is_requeued_and_charged_once(client, session, owner, key, worker, clock):
    batch_id = create(client, key, (("a.jpg", SMALL),)).json()["data"]["id"]
    with session_scope() as scope:
        claimed = batch_worker.claim_next(scope, now=clock())  # the process dies here
    assert claimed is not None and claimed.status == ItemStatus.PROCESSING
    assert not worker.run_once()  # nothing queued: the item is stuck in processing
    with session_scope() as scope:
        assert batch_worker.requeue_interrupted(scope, now=clock()) == 0  # it may be another instance's
    clock.advance(minutes=11)
    with session_scope() as scope:
        assert batch_worker.requeue_interrupted(scope, now=clock()) == 1  # what start() and the purge job do
        assert batch_worker.requeue_interrupted(scope, now=clock()) == 0
    assert worker.run_once()
    # A crash after the charge committed but before anything else: processing the item again charges nothing more.
    with session_scope() as scope:
        item = scope.get(BatchItem, claimed.id)
        item.status = ItemStatus.QUEUED
    assert worker.run_once()
    session.expire_all()
    charges = session.exec(select(LedgerEntry).where(LedgerEntry.reference == f"batch-item:{claimed.id}")).all()
    assert len(charges) == 1 and balance(session, owner) == 1000 - 25
    assert show(client, key, batch_id).json()["data"]["status"] == "done"


def test_results_are_purged_after_the_retention_blobs_first(client, session, key, worker, store, clock):
    batch_id = create(client, key, (("a.jpg", SMALL), ("b.jpg", SMALL))).json()["data"]["id"]
    run_all(worker)
    assert len(list(store.keys())) == 4  # two sources, two results
    clock.advance(hours=23, minutes=59)
    assert purge_batches_job(clock=clock) == {"batches_deleted": 0, "items_requeued": 0}
    clock.advance(minutes=2)
    assert purge_batches_job(clock=clock) == {"batches_deleted": 1, "items_requeued": 0}
    assert list(store.keys()) == []
    session.expire_all()
    assert session.exec(select(BatchItem)).all() == [] and session.get(Batch, uuid.UUID(batch_id)) is None
    assert show(client, key, batch_id).status_code == 404


def test_the_scheduler_runs_the_batch_jobs():
    jobs = [job for job, _ in scheduled_jobs()]
    assert purge_batches_job in jobs and batch_webhooks_job in jobs


def test_web_and_api_batch_items_are_labelled_by_their_file_in_usage_and_history(client, session, owner, key, worker, store):
    """A batch from the batch page (no key) reads "Web batch: horse.jpg" in "API usage" and the credit
    history, not "deleted key" / "API preview 200x155"; an API batch keeps its key and reads "API batch: ..."."""
    from clearbg_app.http.removebg_params import removal_options
    from clearbg_app.services import credits, removal

    web = batches.create_batch(
        session, store=store, user_id=owner.id, sources=[batches.Source("horse.jpg", data=SMALL), batches.Source("notes.jpg", data=text_as_jpeg())],
        options=removal_options({"size": "preview"}, None),
    )  # fmt: skip
    assert web.channel == "web"
    api_batch = create(client, key, (("pony.jpg", SMALL),)).json()["data"]["id"]
    run_all(worker)
    sources = [source for _, source in removal.recent_usage(session, user_id=owner.id)]
    assert sorted(s for s in sources if s.startswith("Web")) == ["Web batch: horse.jpg", "Web batch: notes.jpg"]
    [api_source] = [s for s in sources if not s.startswith("Web")]
    assert key.startswith(api_source.removesuffix("…")) and "deleted key" not in sources
    entries = session.exec(select(LedgerEntry).where(LedgerEntry.kind == EntryKind.USAGE)).all()
    labels = credits.reference_labels(session, [entry.reference for entry in entries])
    assert sorted(labels.values()) == ["API batch: pony.jpg", "Web batch: horse.jpg"]  # notes.jpg failed: no charge
    assert session.get(Batch, uuid.UUID(api_batch)).channel == "api"
    assert credits.reference_labels(session, ["image:not-a-uuid:full", "batch-item:", "api:123", ""]) == {}


def test_retry_failed_requeues_only_what_a_retry_can_fix(client, session, owner, key, worker):
    """An unreadable file fails the same way every time; a busy server or a short balance may not."""
    batch_id = create(client, key, (("notes.jpg", text_as_jpeg()), ("horse.jpg", SMALL), ("pony.jpg", SMALL))).json()["data"]["id"]
    run_all(worker)
    batch = session.get(Batch, uuid.UUID(batch_id))
    items = {item.filename: item for item in batches.batch_items(session, batch_id=batch.id)}
    busy = items["pony.jpg"]
    busy.status, busy.error_code, busy.error_detail, busy.result_key = ItemStatus.FAILED, "server_busy", "Busy", None
    session.add(busy)
    session.commit()
    assert batches.retry_failed(session, batch=batch) == 1
    session.refresh(items["notes.jpg"])
    assert items["notes.jpg"].status == ItemStatus.FAILED and items["notes.jpg"].error_code == "invalid_image"
    assert session.get(BatchItem, busy.id).status == ItemStatus.QUEUED


def test_recent_batches_and_each_finished_image(client, session, owner, key, worker, store, clock):
    batch_id = create(client, key, (("horse.jpg", SMALL), ("notes.jpg", text_as_jpeg()))).json()["data"]["id"]
    run_all(worker)
    [(batch, counts)] = batches.recent_batches(session, user_id=owner.id, hours=24)
    assert str(batch.id) == batch_id and (counts["done"], counts["failed"]) == (1, 1)
    later = as_utc(batch.created_at) + timedelta(hours=24, minutes=1)
    assert batches.recent_batches(session, user_id=owner.id, hours=24, now=later) == []
    items = {item.filename: item for item in batches.batch_items(session, batch_id=batch.id)}
    data, name = batches.item_result(session, store=store, batch_id=batch_id, item_id=str(items["horse.jpg"].id), user_id=owner.id)
    assert name == "horse.png" and Image.open(io.BytesIO(data)).mode == "RGBA"
    stranger = verified_user(session, clock, email="stranger@example.com")
    for batch_ref, item_ref, user_id in ((batch_id, str(items["horse.jpg"].id), stranger.id),  # another's batch
                                         (batch_id, str(items["notes.jpg"].id), owner.id),  # failed: no result
                                         (batch_id, "not-an-id", owner.id), ("not-a-batch", "x", owner.id)):  # fmt: skip
        with pytest.raises(NotFound):
            batches.item_result(session, store=store, batch_id=batch_ref, item_id=item_ref, user_id=user_id)


def test_the_page_route_for_a_finished_image_needs_the_owner_s_cookie(db_url, session, owner, key, worker, client):
    from starlette.testclient import TestClient

    from clearbg_app.api import build_api

    batch_id = create(client, key, (("horse.jpg", SMALL),)).json()["data"]["id"]
    run_all(worker)
    [item] = batches.batch_items(session, batch_id=uuid.UUID(batch_id))
    browser = TestClient(build_api())
    path = f"/api/batches/{batch_id}/items/{item.id}/result"
    assert browser.get(path).status_code == 404  # signed out
    from clearbg_app.http.cookies import SESSION_COOKIE
    from clearbg_app.services import accounts

    browser.cookies.set(SESSION_COOKIE, accounts.start_session(session, user=owner, user_agent=None, ip="127.0.0.1"))
    shown = browser.get(path)
    assert shown.status_code == 200 and shown.headers["content-type"] == "image/png" and "content-disposition" not in shown.headers
    saved = browser.get(path + "?download=1")
    assert saved.headers["content-disposition"] == 'attachment; filename="horse.png"'
    assert browser.get(f"/api/batches/{batch_id}/items/%00/result").status_code == 404
