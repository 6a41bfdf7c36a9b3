"""Full resolution in the web app costs what the page shows, charged with the result or not at all."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from clearbg_app.models import EntryKind
from clearbg_app.services import credits, images, removal
from clearbg_app.services.errors import NotFound
from tests.conftest import sample_bytes
from tests.factories import VISITOR, give, uploaded, verified_user


@pytest.fixture(scope="module")
def pool():
    return removal.default_pool()


def test_full_resolution_costs_one_credit_once(session, store, pool, owner):
    give(session, owner, 200)
    image = uploaded(session, store, pool, owner)
    assert images.full_resolution_price(image) == 100
    done = images.make_full_resolution(session, store=store, image=image, user_id=owner.id, pool=pool)
    full = Image.open(io.BytesIO(store.get(done.full_result_key)))
    assert full.mode == "RGBA" and full.size == (770, 595)
    assert credits.balance(session, user_id=owner.id) == 100 and done.charged_units == 100
    again = images.make_full_resolution(session, store=store, image=done, user_id=owner.id, pool=pool)
    assert again.full_result_key == done.full_result_key and credits.balance(session, user_id=owner.id) == 100


def test_small_images_are_full_size_already_and_free(session, store, pool, owner):
    small = Image.open(io.BytesIO(sample_bytes("girl.png")))
    assert small.width * small.height <= 250_000
    image = uploaded(session, store, pool, owner, "girl.png")
    assert images.full_resolution_price(image) == 0 and (image.result_width, image.result_height) == small.size


def test_short_balance_is_refused_before_any_work(session, store, pool, owner):
    image = uploaded(session, store, pool, owner)
    blobs = set(store.keys())
    with pytest.raises(credits.InsufficientCredits, match="Insufficient credits: this costs 1 credit"):
        images.make_full_resolution(session, store=store, image=image, user_id=owner.id, pool=pool)
    assert set(store.keys()) == blobs and session.get(type(image), image.id).full_result_key is None


def test_a_failure_while_recording_charges_nothing_and_leaves_no_blob(session, store, pool, owner, monkeypatch):
    give(session, owner, 100)
    image = uploaded(session, store, pool, owner)
    blobs = set(store.keys())

    def crash():
        raise RuntimeError("crash between charge and result write")

    monkeypatch.setattr(session, "commit", crash)
    with pytest.raises(RuntimeError):
        images.make_full_resolution(session, store=store, image=image, user_id=owner.id, pool=pool)
    monkeypatch.undo()
    session.expire_all()
    assert credits.balance(session, user_id=owner.id) == 100
    assert set(store.keys()) == blobs
    assert session.get(type(image), image.id).full_result_key is None


def test_signed_in_uploader_owns_the_image_from_any_browser(session, store, pool, owner, clock):
    image = uploaded(session, store, pool, owner)
    assert images.owned_image(session, image_id=image.id, visitor_hash=None, user_id=owner.id).id == image.id
    other = verified_user(session, clock, email="eve@example.com", name="Eve")
    with pytest.raises(NotFound):
        images.owned_image(session, image_id=image.id, visitor_hash="x" * 64, user_id=other.id)


def test_the_shown_size_is_the_delivered_one_after_exif_rotation(session, store, pool, owner):
    """A phone photo stored landscape with "rotate 90°" in its EXIF is delivered portrait: the page's
    button and the credit history say the delivered size, and the history names the file."""
    give(session, owner, 100)
    landscape = Image.open(io.BytesIO(sample_bytes("horse.jpg")))  # 770x595
    exif = landscape.getexif()
    exif[0x0112] = 6  # Orientation: rotate 90° clockwise to view
    out = io.BytesIO()
    landscape.save(out, "JPEG", exif=exif.tobytes(), quality=90)
    stored = images.store_upload(session, store=store, data=out.getvalue(), filename="phone.jpg", visitor_hash=VISITOR, user_id=owner.id)
    assert (stored.width, stored.height) == (595, 770)
    image = images.process_image(session, store=store, image_id=stored.id, pool=pool, max_pixels=250_000)
    done = images.make_full_resolution(session, store=store, image=image, user_id=owner.id, pool=pool)
    assert Image.open(io.BytesIO(store.get(done.full_result_key))).size == (595, 770)
    entries, _ = credits.ledger_page(session, user_id=owner.id, page=1)
    usage = next(entry for entry in entries if entry.kind == EntryKind.USAGE)
    assert usage.reason == "Full resolution 595x770"
    assert credits.reference_labels(session, [usage.reference]) == {usage.reference: "Web: phone.jpg"}
