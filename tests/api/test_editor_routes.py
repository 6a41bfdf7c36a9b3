"""The editor's routes (issue 16) through Starlette's TestClient: the edited image on each background,
the kept strokes, and bad queries or other people's images refused, never a 5xx."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from starlette.testclient import TestClient

from clearbg_app.api import build_api
from clearbg_app.http.cookies import VISITOR_COOKIE
from clearbg_app.services import image_edits, images
from tests.factories import ACROSS_THE_HORSE, HORSE_SIZE


@pytest.fixture
def client(db_url) -> TestClient:
    """The site's routes as the app serves them (conftest's `processed` uploads through this client)."""
    return TestClient(build_api())


def opened(response) -> Image.Image:
    assert response.status_code == 200, response.text
    return Image.open(io.BytesIO(response.content))


def test_the_edited_preview_carries_the_strokes_and_the_strokes_come_back(processed, session, store):
    browser, image = processed
    scale = image.result_width / HORSE_SIZE[0]
    at = (round(350 * scale), round(300 * scale))  # x, y on the horse
    assert opened(browser.get(f"/api/images/{image.id}/edited")).getchannel("A").getpixel(at) == 255
    image_edits.set_edits(session, store=store, image=image, strokes=[ACROSS_THE_HORSE])
    edited = opened(browser.get(f"/api/images/{image.id}/edited?v=1"))
    assert edited.mode == "RGBA" and edited.getchannel("A").getpixel(at) == 0
    assert browser.get(f"/api/images/{image.id}/edits").json()["strokes"][0]["mode"] == "erase"
    assert opened(browser.get(f"/api/images/{image.id}/result")).getchannel("A").getpixel(at) == 255  # the model's own


def test_jpg_on_white_and_file_names(processed):
    browser, image = processed
    response = browser.get(f"/api/images/{image.id}/edited?format=jpg&bg=ffffff&download=1")
    jpg = opened(response)
    assert jpg.format == "JPEG" and all(min(jpg.getpixel(corner)) > 245 for corner in ((1, 1), (jpg.width - 2, jpg.height - 2)))
    assert response.headers["content-disposition"] == 'attachment; filename="my_horse-on-white-preview.jpg"'
    assert response.headers["cache-control"] == "private, no-store"
    png = browser.get(f"/api/images/{image.id}/edited?download=1&shadow=1&crop=1&margin=10")
    assert png.headers["content-disposition"] == 'attachment; filename="my_horse-no-bg-shadow-cropped-preview.png"'
    assert opened(png).size < (image.result_width, image.result_height)
    webp = opened(browser.get(f"/api/images/{image.id}/edited?format=webp&bg=blur&blur=80"))
    assert webp.format == "WEBP" and np.asarray(webp.convert("L"))[-10:, :10].mean() < 200  # the blurred meadow


@pytest.mark.parametrize(
    "query",
    [
        "size=huge", "format=gif", "bg=notacolour", "bg=blur&blur=1000", "bg=blur&blur=-1", "margin=90", "margin=1e3",
        "shadow=perhaps", "shadow_offset=99%25%2099%25", "shadow_opacity=2", "bg=photo", "photo_fit=stretch", "format=" + "x" * 5000,
    ],
)
def test_bad_queries_are_a_clear_400(processed, query):
    browser, image = processed
    response = browser.get(f"/api/images/{image.id}/edited?{query}")
    assert response.status_code == 400 and response.json()["error"], response.text


def test_full_size_before_it_was_made_is_a_409_not_a_charge(processed):
    browser, image = processed
    response = browser.get(f"/api/images/{image.id}/edited?size=full")
    assert response.status_code == 409 and "full-resolution" in response.json()["error"]


def test_strangers_and_bad_ids_get_404(processed, db_url):
    _, image = processed
    stranger = TestClient(build_api())
    stranger.cookies.set(VISITOR_COOKIE, "forged-" + "x" * 40)
    for path in (f"/api/images/{image.id}/edited", f"/api/images/{image.id}/edits", "/api/images/nope/edited", "/api/images/nope/edits"):
        assert stranger.get(path).status_code == 404


def test_an_expired_image_is_gone(processed, session, store):
    browser, image = processed
    images.purge_expired(session, store=store, clock=lambda: image.expires_at)
    assert browser.get(f"/api/images/{image.id}/edited").status_code == 404
    assert browser.get(f"/api/images/{image.id}/edits").status_code == 404
