"""The purge job deletes expired blobs and rows, by an injected clock, never by sleeping."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import select

from clearbg_app.jobs import build_scheduler
from clearbg_app.models import ProcessedImage
from clearbg_app.services import images
from clearbg_app.services.jobs import purge_images_job
from tests.conftest import sample_bytes

pytestmark = pytest.mark.both_blob_backends  # the local directory, and S3 on moto


def stored(session, store, clock, visitor="v" * 64) -> ProcessedImage:
    return images.store_upload(
        session, store=store, data=sample_bytes("horse.jpg"), filename="horse.jpg", visitor_hash=visitor, now=clock()
    )


def test_expired_images_are_purged_with_their_blobs(session, store, clock):
    old = stored(session, store, clock)
    clock.advance(minutes=30)
    young = stored(session, store, clock)

    clock.advance(minutes=29)
    assert images.purge_expired(session, store=store, clock=clock) == 0
    assert len(list(store.keys())) == 2

    clock.advance(minutes=2)  # 61 minutes after the first upload
    assert images.purge_expired(session, store=store, clock=clock) == 1
    assert [row.id for row in session.exec(select(ProcessedImage)).all()] == [young.id]
    assert not store.exists(old.original_key) and store.exists(young.original_key)

    clock.advance(hours=1)
    assert purge_images_job(clock=clock) == {"images_deleted": 1, "images_held": 0}
    assert session.exec(select(ProcessedImage)).all() == []
    assert list(store.keys()) == []


def test_purge_is_idempotent_when_a_blob_is_already_gone(session, store, clock):
    image = stored(session, store, clock)
    store.delete(image.original_key)  # e.g. an earlier run died between blob and row
    clock.advance(hours=2)
    assert images.purge_expired(session, store=store, clock=clock) == 1
    assert images.purge_expired(session, store=store, clock=clock) == 0


def test_scheduler_runs_the_purge_every_few_minutes(data_dir, clock):
    scheduler = build_scheduler(clock=clock)
    job = scheduler.get_job("purge_images")
    assert job.trigger.interval == timedelta(minutes=5)
    assert job.kwargs == {"clock": clock, "period": 300}  # once per period across instances
