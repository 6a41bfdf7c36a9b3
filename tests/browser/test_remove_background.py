"""A visitor drops a photo on `/`, sees the cut-out, and downloads a transparent PNG."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from tests.browser.conftest import ARTIFACTS
from tests.conftest import SAMPLES
from tests.images import text_as_jpeg

pytestmark = pytest.mark.browser


def test_drop_horse_see_cutout_download_png(page, tmp_path):
    page.goto("/")
    page.get_by_text("Drop a photo here").wait_for()
    page.set_input_files("input[type=file]", str(SAMPLES / "images" / "horse.jpg"))

    result = page.locator("#result-image")
    result.wait_for(state="visible", timeout=60_000)
    page.wait_for_function("document.querySelector('#result-image').naturalWidth > 0", timeout=30_000)
    assert page.locator("#original-image").evaluate("img => img.naturalWidth") == 770
    page.screenshot(path=str(ARTIFACTS / "remove-background.png"), full_page=True)

    with page.expect_download() as download_info:
        page.locator("#download-button").click()
    download = download_info.value
    assert download.suggested_filename == "horse-no-bg.png"
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)

    cutout = Image.open(saved)
    assert cutout.format == "PNG" and cutout.mode == "RGBA"
    width, height = cutout.size
    assert width * height <= 250_000  # anonymous visitors get a preview
    alpha = cutout.getchannel("A")
    corners = [(0, 0), (width - 1, 0), (0, height - 1), (width - 1, height - 1)]
    assert all(alpha.getpixel(corner) < 10 for corner in corners)
    assert alpha.getpixel((int(width * 0.45), int(height * 0.5))) > 245  # the horse's body


def test_a_text_file_named_jpg_gets_a_clear_message(page, tmp_path):
    fake = tmp_path / "holiday.jpg"
    fake.write_bytes(text_as_jpeg())
    page.goto("/")
    page.get_by_text("Drop a photo here").wait_for()
    page.set_input_files("input[type=file]", str(fake))
    error = page.locator("#error-message")
    error.wait_for(state="visible", timeout=30_000)
    assert "not an image we can read" in error.inner_text()
    assert page.locator("#result-image").count() == 0
    page.screenshot(path=str(ARTIFACTS / "bad-input.png"), full_page=True)


def test_a_file_over_the_byte_limit_is_refused_before_upload(page, tmp_path):
    huge = tmp_path / "huge.jpg"
    huge.write_bytes((SAMPLES / "images" / "horse.jpg").read_bytes() + b"\0" * 26_000_000)
    page.goto("/")
    page.get_by_text("Drop a photo here").wait_for()
    page.set_input_files("input[type=file]", str(huge))
    error = page.locator("#error-message")
    error.wait_for(state="visible", timeout=30_000)
    assert error.inner_text() == "The file is over the 25 MB limit; send a smaller image."
