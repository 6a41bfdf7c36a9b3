"""The editor's mask edit in the images service (issue 16), on SQLite and PostgreSQL: strokes checked,
applied at any resolution, kept beside the model's own cut-out; bad stroke lists change nothing."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from clearbg_app.inference import Cutout, RenderOptions
from clearbg_app.inference.render import Shadow
from clearbg_app.services import image_edits, images
from clearbg_app.services.errors import NotFound
from clearbg_app.services.image_edits import EditedRender, EditRejected, FullResolutionMissing, Stroke
from tests import images as make
from tests.conftest import sample_bytes
from tests.factories import ACROSS_THE_HORSE, HORSE_SIZE, give, uploaded


def alpha_of(rendered) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(rendered.content)).getchannel("A"))


def solid(size: tuple[int, int]) -> Cutout:
    """An opaque grey image of `size`."""
    return Cutout(Image.new("RGB", size, (90, 90, 90)), Image.new("L", size, 255))


@pytest.mark.parametrize("size", [(400, 300), (200, 150), (1600, 1200)])
def test_strokes_land_in_the_same_place_at_every_resolution(size):
    """Strokes are in the 400x300 source's coordinates, applied to cut-outs of three sizes."""
    strokes = image_edits.parse_strokes([{"mode": "erase", "radius": 20, "soft": False, "points": [[100, 150], [300, 150]]}], (400, 300))
    alpha = np.asarray(image_edits.apply_strokes(solid(size), strokes, source_size=(400, 300), original=None).alpha)
    scale = size[0] / 400
    assert alpha[int(150 * scale), int(200 * scale)] == 0  # on the path
    assert alpha[int(150 * scale), int(60 * scale)] == 255 and alpha[int(100 * scale), int(200 * scale)] == 255  # beyond its ends and sides
    erased = (alpha == 0).sum() / alpha.size
    assert abs(erased - (200 * 40 + np.pi * 400) / (400 * 300)) < 0.01  # a 200x40 band with round caps


def test_restore_brings_back_the_original_colours_and_order_matters():
    cutout = Cutout(Image.new("RGB", (100, 100), (0, 0, 0)), Image.new("L", (100, 100), 0))
    original = Image.new("RGB", (100, 100), (10, 200, 30))
    strokes = image_edits.parse_strokes(
        [
            {"mode": "restore", "radius": 10, "soft": False, "points": [[20, 50], [80, 50]]},
            {"mode": "erase", "radius": 5, "soft": False, "points": [[50, 50]]},
        ],
        (100, 100),
    )
    edited = image_edits.apply_strokes(cutout, strokes, source_size=(100, 100), original=original)
    assert edited.alpha.getpixel((30, 50)) == 255 and edited.rgb.getpixel((30, 50)) == (10, 200, 30)
    assert edited.alpha.getpixel((50, 50)) == 0  # the later erase wins
    assert cutout.alpha.getpixel((30, 50)) == 0  # the input is not changed


def test_a_soft_edge_fades_out():
    strokes = image_edits.parse_strokes([{"mode": "erase", "radius": 20, "soft": True, "points": [[50, 50]]}], (100, 100))
    alpha = np.asarray(image_edits.apply_strokes(solid((100, 100)), strokes, source_size=(100, 100), original=None).alpha)
    assert alpha[50, 50] < 10 and 40 < alpha[50, 70] < 220 and alpha[50, 95] == 255


def test_points_outside_the_image_are_moved_to_its_edge():
    (stroke,) = image_edits.parse_strokes([{"mode": "erase", "radius": 5, "points": [[-50, 20], [900, 1e6]]}], (100, 80))
    assert stroke == Stroke("erase", 5.0, False, ((0.0, 20.0), (100.0, 80.0)))


HUGE = [{"mode": "erase", "radius": 5, "points": [[1, 1]]}] * (image_edits.MAX_STROKES + 1)
TOO_MANY_POINTS = [{"mode": "erase", "radius": 5, "points": [[1, 1]] * (image_edits.MAX_POINTS_PER_STROKE + 1)}]


@pytest.mark.parametrize(
    ("strokes", "message"),
    [
        ("{not json", "not valid JSON"),
        ({"mode": "erase"}, "must be a list"),
        (HUGE, "At most 400 strokes"),
        (TOO_MANY_POINTS, "at most 2000 points"),
        ([{"mode": "erase", "radius": 5, "points": [[1, 1]] * 1500}] * 30, "40000 in all"),
        (["erase"], "must be an object"),
        ([{"mode": "paint", "radius": 5, "points": [[1, 1]]}], "mode must be erase or restore"),
        ([{"mode": "erase", "radius": 0, "points": [[1, 1]]}], "radius must be"),
        ([{"mode": "erase", "radius": 10_000, "points": [[1, 1]]}], "radius must be"),
        ([{"mode": "erase", "radius": "5", "points": [[1, 1]]}], "radius must be a finite number"),
        ([{"mode": "erase", "radius": float("nan"), "points": [[1, 1]]}], "finite number"),
        ([{"mode": "erase", "radius": 5, "points": []}], "non-empty list"),
        ([{"mode": "erase", "radius": 5, "points": [[1, 2, 3]]}], r"\[x, y\] pair"),
        ([{"mode": "erase", "radius": 5, "points": [[1, float("inf")]]}], "finite number"),
        ([{"mode": "erase", "radius": 5, "points": [[True, 1]]}], "finite number"),
        ([{"mode": "erase", "radius": 5, "soft": "yes", "points": [[1, 1]]}], "soft must be"),
        ("[" * 100_000 + "]" * 100_000, "not valid JSON"),
        ("x" * (image_edits.MAX_STROKES_JSON + 1), "too large"),
    ],
    ids=lambda value: str(value)[:30],
)
def test_malformed_strokes_get_a_clear_message_and_change_nothing(session, store, pool, owner, strokes, message):
    image = uploaded(session, store, pool, owner)
    image_edits.set_edits(session, store=store, image=image, strokes=[ACROSS_THE_HORSE])
    kept = image.edit_strokes
    with pytest.raises(EditRejected, match=message):
        image_edits.set_edits(session, store=store, image=image, strokes=strokes)
    session.expire_all()
    assert session.get(type(image), image.id).edit_strokes == kept


def test_an_edit_erases_in_the_preview_keeps_the_model_mask_and_resets(session, store, pool, owner):
    image = uploaded(session, store, pool, owner)
    model_result = store.get(image.result_key)
    before = alpha_of(image_edits.render_edited(store, image, EditedRender()))
    scale = image.result_width / HORSE_SIZE[0]
    at = (round(300 * scale), round(350 * scale))  # row, column on the horse's body
    assert before[at] == 255
    assert image_edits.set_edits(session, store=store, image=image, strokes=json.dumps([ACROSS_THE_HORSE])) == 1
    session.expire_all()
    again = session.get(type(image), image.id)  # as a reloaded page sees it
    assert image_edits.strokes_json(again) == [ACROSS_THE_HORSE | {"radius": 30.0, "points": [[250.0, 300.0], [450.0, 300.0]]}]
    after = alpha_of(image_edits.render_edited(store, again, EditedRender()))
    assert after[at] == 0 and after[round(100 * scale), round(600 * scale)] == before[round(100 * scale), round(600 * scale)]
    assert store.get(image.result_key) == model_result  # the model's own cut-out is kept
    image_edits.set_edits(session, store=store, image=again, strokes=[])  # undo of the only stroke
    assert again.edit_strokes is None
    image_edits.set_edits(session, store=store, image=again, strokes=[ACROSS_THE_HORSE])
    image_edits.reset_edits(session, image=again)
    assert np.array_equal(alpha_of(image_edits.render_edited(store, again, EditedRender())), before)


def test_full_resolution_carries_the_edit_at_full_size(session, store, pool, owner):
    give(session, owner, 200)
    image = uploaded(session, store, pool, owner)
    image_edits.set_edits(session, store=store, image=image, strokes=[ACROSS_THE_HORSE])
    with pytest.raises(FullResolutionMissing):
        image_edits.render_edited(store, image, EditedRender(full=True))
    images.make_full_resolution(session, store=store, image=image, user_id=owner.id, pool=pool)
    full = alpha_of(image_edits.render_edited(store, image, EditedRender(full=True)))
    assert full.shape == (HORSE_SIZE[1], HORSE_SIZE[0])
    model = np.asarray(Image.open(io.BytesIO(store.get(image.full_result_key))).getchannel("A"))
    assert model[300, 350] == 255 and (full[272:329, 250:451] == 0).all()  # the whole 60 px band is erased...
    assert np.array_equal(full[:, 485:], model[:, 485:]) and np.array_equal(full[:260], model[:260])  # ...and nothing else


def test_jpg_on_white_with_a_shadow_and_a_blurred_original(session, store, pool, owner):
    image = uploaded(session, store, pool, owner)
    on_white = Image.open(io.BytesIO(image_edits.render_edited(store, image, EditedRender(RenderOptions(format="jpeg", background=(255, 255, 255)))).content))
    assert on_white.format == "JPEG" and min(on_white.getpixel((2, 2))) > 245
    shadowed = image_edits.render_edited(store, image, EditedRender(RenderOptions(format="jpeg", background=(255, 255, 255), shadow=Shadow())))
    white, shaded = np.asarray(on_white.convert("L")), np.asarray(Image.open(io.BytesIO(shadowed.content)).convert("L"))
    assert ((white > 245) & (shaded < 215)).sum() > 500  # background turned grey: the shadow
    assert abs(int(shaded[2, 2]) - int(white[2, 2])) < 4  # the far corner stays white
    blurred = image_edits.render_edited(store, image, EditedRender(RenderOptions(format="jpeg", background_blur=0.05)))
    corner = np.asarray(Image.open(io.BytesIO(blurred.content)).convert("L"), dtype=np.float32)[-30:, :30]
    photo = np.asarray(Image.open(io.BytesIO(sample_bytes("horse.jpg"))).convert("L").resize(blurred.size), dtype=np.float32)[-30:, :30]
    assert photo.mean() < 200 and abs(corner.mean() - photo.mean()) < 15  # the meadow's tones, not white


def test_background_photo_is_checked_kept_and_replaced(session, store, pool, owner):
    image = uploaded(session, store, pool, owner)
    keys = set(store.keys())
    for bad, message in ((make.text_as_jpeg(), "not an image"), (make.decompression_bomb(), "megapixels"), (b"", "empty")):
        with pytest.raises(EditRejected, match=message):
            image_edits.set_background_photo(session, store=store, image=image, data=bad)
        assert image.background_key is None and set(store.keys()) == keys
    with pytest.raises(EditRejected, match="Upload a background photo first"):
        image_edits.render_edited(store, image, EditedRender(photo=True))
    green = make.encode(Image.new("RGB", (64, 48), (0, 200, 0)), "PNG")
    image_edits.set_background_photo(session, store=store, image=image, data=green)
    first = image.background_key
    rendered = Image.open(io.BytesIO(image_edits.render_edited(store, image, EditedRender(RenderOptions(format="png"), photo=True)).content))
    assert rendered.getpixel((2, 2))[:3] == (0, 200, 0)
    image_edits.set_background_photo(session, store=store, image=image, data=make.encode(Image.new("RGB", (8, 8), (9, 9, 9)), "PNG"))
    assert first not in set(store.keys()) and image.background_key in set(store.keys())
    images.delete_image(session, store=store, image=image)
    assert set(store.keys()) == set()  # the photo goes with the image


def test_another_visitors_or_an_expired_image_is_not_found(session, store, pool, owner, clock):
    image = uploaded(session, store, pool, owner)
    with pytest.raises(NotFound):
        images.owned_image(session, image_id=image.id, visitor_hash="b" * 64)
    with pytest.raises(NotFound):
        images.owned_image(session, image_id=image.id, visitor_hash=image.visitor_hash, now=image.expires_at)


def test_download_names_say_what_the_file_is(session, store, pool, owner):
    image = uploaded(session, store, pool, owner)
    assert image_edits.download_name(image, EditedRender(full=True), "transparent") == "horse-no-bg.png"
    assert image_edits.download_name(image, EditedRender(RenderOptions(format="jpeg"), full=True), "white") == "horse-on-white.jpg"
    assert image_edits.download_name(image, EditedRender(RenderOptions(format="webp", crop=True)), "blur") == "horse-on-blur-cropped-preview.webp"
