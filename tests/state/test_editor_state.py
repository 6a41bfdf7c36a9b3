"""The editor's coordinates follow the upright image (issue 16): a phone photo stored 4032x3024 with
an EXIF rotation is edited as 3024x4032, like its preview and like the images service's strokes."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from clearbg_app.services import image_edits, images
from clearbg_app.state.editor import upright_size
from tests.factories import VISITOR


@pytest.mark.parametrize(
    ("full", "preview", "expected"),
    [("770x595", "568x439", (770, 595)), ("4032x3024", "433x577", (3024, 4032)), ("500x500", "500x500", (500, 500)), ("", "", (1, 1))],
)
def test_upright_size(full, preview, expected):
    assert upright_size(full, preview) == expected


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_rotated_photo_has_the_same_coordinates_in_the_page_and_the_service(session, store, pool):
    buffer = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to show it
    Image.new("RGB", (400, 300), (200, 30, 30)).save(buffer, "JPEG", exif=exif)
    image = images.store_upload(session, store=store, data=buffer.getvalue(), filename="phone.jpg", visitor_hash=VISITOR)
    image = images.process_image(session, store=store, image_id=image.id, pool=pool, max_pixels=250_000)
    page_size = upright_size(f"{image.width}x{image.height}", f"{image.result_width}x{image.result_height}")
    assert page_size == image_edits.full_size(store, image) == (300, 400)
