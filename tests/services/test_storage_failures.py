"""S3 going away mid-run (a loopback proxy in front of moto, cut and restored): every path that touches
blobs answers a clear, retryable error, loses nothing, charges nothing, and works again once S3 is back."""

from __future__ import annotations

import io
import uuid
import zipfile

import pytest
from sqlmodel import select
from starlette.testclient import TestClient

from clearbg_app.api import build_api
from clearbg_app.http.cookies import VISITOR_COOKIE
from clearbg_app.models import Batch, BatchItem, ItemStatus, LedgerEntry, ProcessedImage
from clearbg_app.services import batch_worker, exports, images
from clearbg_app.services.jobs import exports_job, purge_images_job
from clearbg_app.services.security import sha256_hex
from clearbg_app.storage import StorageUnavailable, get_blob_store
from tests.conftest import s3_settings
from tests.factories import HORSE, SMALL, api_client, balance, create
from tests.loopback import loopback_only
from tests.privacy_helpers import signed_in
from tests.tcp_proxy import tcp_proxy


@pytest.fixture
def owner_credits() -> int:
    """Enough for the batches here."""
    return 1000


@pytest.fixture
def s3(db_url, s3_endpoint, s3_bucket, monkeypatch):
    """The app's blobs in moto's bucket, reached through a proxy the test can cut."""
    monkeypatch.setenv("CLEARBG_S3_CONNECT_TIMEOUT_SECONDS", "1")
    monkeypatch.setenv("CLEARBG_S3_READ_TIMEOUT_SECONDS", "2")
    monkeypatch.setenv("CLEARBG_S3_MAX_ATTEMPTS", "2")
    with tcp_proxy(s3_endpoint) as proxy:
        s3_settings(monkeypatch, proxy.url, f"s3://{s3_bucket}/fail-{uuid.uuid4().hex}")
        yield proxy


def test_readiness_check_follows_the_service(s3):
    get_blob_store().check()
    s3.cut()
    with pytest.raises(StorageUnavailable, match="failed to answer"):
        get_blob_store().check()
    s3.restore()
    get_blob_store().check()


def test_a_batch_sent_while_s3_is_down_is_refused_whole_and_uncharged(s3, session, pool, key, owner):
    client = api_client(pool, url_policy=loopback_only)
    before = balance(session, owner)
    s3.cut()
    response = create(client, key, named=(("a.jpg", SMALL), ("b.jpg", SMALL)))
    assert response.status_code == 503 and response.headers["retry-after"] == "5"
    assert response.json()["errors"][0]["code"] == "storage_unavailable"
    session.expire_all()
    assert session.exec(select(Batch)).all() == [] and session.exec(select(BatchItem)).all() == []
    assert balance(session, owner) == before
    s3.restore()
    assert create(client, key).status_code == 202


def test_a_batch_item_waits_while_s3_is_down_then_is_done_and_charged_once(s3, session, pool, key, owner, clock, monkeypatch):
    monkeypatch.setattr(batch_worker, "STORAGE_RETRY_SECONDS", 0)
    client = api_client(pool, url_policy=loopback_only)
    assert create(client, key).status_code == 202
    worker = batch_worker.BatchWorker(pool=pool, store=get_blob_store(), url_policy=loopback_only, clock=clock)
    before = balance(session, owner)
    s3.cut()
    assert worker.run_once() is True
    session.expire_all()
    item = session.exec(select(BatchItem)).one()
    assert (item.status, item.error_code, item.result_key) == (ItemStatus.QUEUED, None, None)
    assert balance(session, owner) == before
    s3.restore()
    assert worker.run_once() is True
    session.expire_all()
    item = session.exec(select(BatchItem)).one()
    assert item.status == ItemStatus.DONE and get_blob_store().exists(item.result_key)
    charges = session.exec(select(LedgerEntry).where(LedgerEntry.reference == f"batch-item:{item.id}")).all()
    assert len(charges) == 1 and balance(session, owner) == before - item.credits_units


def test_downloads_answer_503_while_s3_is_down_and_the_image_survives(s3, session, db_url):
    browser = TestClient(build_api())
    browser.get("/api/images/00000000-0000-0000-0000-000000000000/original")  # gets the visitor cookie
    token = browser.cookies[VISITOR_COOKIE]
    image = images.store_upload(session, store=get_blob_store(), data=HORSE, filename="horse.jpg", visitor_hash=sha256_hex(token))
    s3.cut()
    down = browser.get(f"/api/images/{image.id}/original")
    assert down.status_code == 503 and down.headers["retry-after"] == "5" and "retry" in down.json()["error"]
    assert TestClient(build_api()).get(f"/api/images/{image.id}/original").status_code == 404  # the check comes first
    s3.restore()
    back = browser.get(f"/api/images/{image.id}/original")
    assert back.status_code == 200 and back.content == HORSE


def test_an_upload_while_s3_is_down_leaves_no_row(s3, session):
    s3.cut()
    with pytest.raises(StorageUnavailable):
        images.store_upload(session, store=get_blob_store(), data=HORSE, filename="horse.jpg", visitor_hash="v" * 64)
    session.rollback()
    assert session.exec(select(ProcessedImage)).all() == []


def test_the_purge_keeps_rows_while_s3_is_down_and_deletes_everything_once_back(s3, session, clock):
    store = get_blob_store()
    image = images.store_upload(session, store=store, data=HORSE, filename="horse.jpg", visitor_hash="v" * 64, now=clock())
    image_id, key = image.id, image.original_key
    clock.advance(minutes=61)
    s3.cut()
    with pytest.raises(StorageUnavailable):
        purge_images_job(clock=clock)
    session.expire_all()
    assert session.exec(select(ProcessedImage.id)).all() == [image_id]  # nothing forgotten: the next run retries it
    s3.restore()
    assert store.exists(key)
    assert purge_images_job(clock=clock) == {"images_deleted": 1, "images_held": 0}
    session.expire_all()
    assert session.exec(select(ProcessedImage.id)).all() == [] and not store.exists(key) and list(store.keys()) == []


def test_an_export_download_answers_503_while_s3_is_down_then_works(s3, session, clock):
    client = TestClient(build_api(), follow_redirects=False)
    user = signed_in(client, session, clock)
    export = exports.request_export(session, user=user)
    exports_job()
    s3.cut()
    down = client.get(f"/api/privacy/exports/{export.id}")
    assert down.status_code == 503 and down.headers["retry-after"] == "5" and "retry" in down.json()["error"]
    s3.restore()
    back = client.get(f"/api/privacy/exports/{export.id}")
    assert back.status_code == 200 and exports.DOCUMENT in zipfile.ZipFile(io.BytesIO(back.content)).namelist()
