"""Uploads through the service layer, on SQLite and PostgreSQL: odd images work, bad ones leave nothing."""

from __future__ import annotations

import io
import re

import pytest
from PIL import Image
from sqlmodel import select

from clearbg_app.clock import as_utc
from clearbg_app.inference import InferenceConfig, InferencePool, Job
from clearbg_app.models import DailyCount, ImageStatus, ProcessedImage
from clearbg_app.models.stats import IMAGES_WEB
from clearbg_app.services import images, removal
from clearbg_app.services.errors import NotFound, UploadRejected
from clearbg_app.settings import get_settings
from tests import images as make
from tests.conftest import sample_bytes

pytestmark = pytest.mark.both_blob_backends  # the local directory, and S3 on moto

VISITOR = "a" * 64


@pytest.fixture(scope="module")
def pool():
    return removal.default_pool()


def upload_and_process(session, store, data: bytes, pool, *, filename="photo.jpg", clock=None):
    now = clock() if clock else None
    image = images.store_upload(session, store=store, data=data, filename=filename, visitor_hash=VISITOR, now=now)
    return images.process_image(
        session, store=store, image_id=image.id, pool=pool, max_pixels=get_settings().preview_pixels, now=now
    )


def assert_nothing_stored(session, store) -> None:
    assert session.exec(select(ProcessedImage)).all() == []
    assert list(store.keys()) == []


@pytest.mark.parametrize(
    ("make_input", "message"),
    [
        (lambda: b"", "The file is empty."),
        (make.text_as_jpeg, "not an image we can read"),
        (make.truncated_jpeg, "truncated"),
        (lambda: make.oversized_file(get_settings().max_upload_bytes), "The file is 25.1 MB, over the 25 MB limit."),
        (make.decompression_bomb, "20000x20000 pixels (400.0 megapixels); the limit is 50 megapixels"),
    ],
    ids=["empty", "text-renamed-jpg", "truncated-jpeg", "over-byte-limit", "decompression-bomb"],
)
def test_bad_input_is_refused_clearly_and_leaves_nothing(session, store, pool, make_input, message):
    with pytest.raises(UploadRejected, match=re.escape(message)):
        upload_and_process(session, store, make_input(), pool)
    assert_nothing_stored(session, store)


@pytest.mark.parametrize(
    "make_input",
    [make.cmyk_jpeg, make.palette_png_with_transparency, make.png_16bit, make.animated_gif,
     lambda: make.encode(make.horse(), "HEIF"), lambda: make.encode(make.horse(), "AVIF")],
    ids=["cmyk-jpeg", "palette-png-transparency", "16-bit-png", "animated-gif", "heic", "avif"],
)  # fmt: skip
def test_unusual_but_valid_images_work(session, store, pool, make_input):
    image = upload_and_process(session, store, make_input(), pool)
    assert image.status == ImageStatus.DONE
    cutout = Image.open(io.BytesIO(store.get(image.result_key)))
    assert cutout.mode == "RGBA"
    alpha = cutout.getchannel("A")
    # The horse stands in the middle; the top-left corner is sky.
    width, height = cutout.size
    assert alpha.getpixel((width // 2, int(height * 0.55))) > 200
    assert alpha.getpixel((2, 2)) < 30


def test_sixteen_bit_png_is_scaled_not_clipped(session, store, pool):
    image = upload_and_process(session, store, make.png_16bit(), pool)
    cutout = Image.open(io.BytesIO(store.get(image.result_key))).convert("RGB")
    extrema = cutout.convert("L").getextrema()
    assert extrema[1] - extrema[0] > 100, "a clipped 16-bit image would be almost all white"


def test_anonymous_result_is_preview_size_and_original_kept_whole(session, store, pool):
    data = sample_bytes("bike.jpg")
    image = upload_and_process(session, store, data, pool)
    assert (image.width, image.height) == (3000, 2000)
    assert image.result_width * image.result_height <= 250_000
    assert store.get(image.original_key) == data
    assert image.original_content_type == "image/jpeg"


def test_result_expires_an_hour_after_processing(session, store, pool, clock):
    image = upload_and_process(session, store, sample_bytes("horse.jpg"), pool, clock=clock)
    assert as_utc(image.expires_at) == clock.now.replace(hour=13)


def test_only_the_owner_gets_the_image_until_it_expires(session, store, pool, clock):
    image = upload_and_process(session, store, sample_bytes("horse.jpg"), pool, clock=clock)
    assert images.owned_image(session, image_id=image.id, visitor_hash=VISITOR, now=clock()).id == image.id
    for other in ("b" * 64, None):
        with pytest.raises(NotFound):
            images.owned_image(session, image_id=image.id, visitor_hash=other, now=clock())
    clock.advance(hours=1)
    with pytest.raises(NotFound):
        images.owned_image(session, image_id=image.id, visitor_hash=VISITOR, now=clock())


def test_processing_twice_does_not_leak_a_second_result(session, store, pool):
    image = upload_and_process(session, store, sample_bytes("horse.jpg"), pool)
    again = images.process_image(session, store=store, image_id=image.id, pool=pool, max_pixels=None)
    assert again.result_key == image.result_key
    assert session.exec(select(DailyCount.name, DailyCount.count)).all() == [(IMAGES_WEB, 1)]  # counted once
    assert len(list(store.keys())) == 2


def test_failed_commit_leaves_no_blob(session, store, monkeypatch):
    def broken_commit():
        raise RuntimeError("database went away")

    monkeypatch.setattr(session, "commit", broken_commit)
    with pytest.raises(RuntimeError):
        images.store_upload(session, store=store, data=sample_bytes("horse.jpg"), filename="h.jpg", visitor_hash=VISITOR)
    assert list(store.keys()) == []


def test_a_busy_pool_says_when_to_try_again_and_keeps_the_upload_for_it(session, store):
    busy_pool = InferencePool(InferenceConfig(workers=1, queue_size=0, warm_up=False))
    try:
        running = busy_pool.submit(Job(sample_bytes("bike.jpg"), max_pixels=50_000_000), lane="web")  # the only slot
        image = images.store_upload(session, store=store, data=sample_bytes("horse.jpg"), filename="h.jpg", visitor_hash=VISITOR)
        with pytest.raises(images.Busy, match=r"^ClearBG is busy right now; please try again in \d+ seconds\.$") as busy:
            images.process_image(session, store=store, image_id=image.id, pool=busy_pool, max_pixels=250_000)
        assert busy.value.retry_after >= 1 and store.exists(image.original_key)
        running.result()
        done = images.process_image(session, store=store, image_id=image.id, pool=busy_pool, max_pixels=250_000)
        assert done.status == ImageStatus.DONE  # the page's retry
    finally:
        busy_pool.close()
