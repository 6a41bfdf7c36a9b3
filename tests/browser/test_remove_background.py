"""A visitor drops a photo on `/`, sees the cut-out, and downloads a transparent PNG."""

from __future__ import annotations

import pytest
from PIL import Image
from playwright.sync_api import expect
from sqlmodel import Session, select

from clearbg_app.db import make_engine
from clearbg_app.models import EntryKind, User
from clearbg_app.services import credits
from tests.browser.conftest import ARTIFACTS
from tests.browser.factories import sign_up_confirmed
from tests.conftest import SAMPLES
from tests.images import text_as_jpeg

pytestmark = pytest.mark.browser


def test_drop_horse_see_cutout_download_png(page, tmp_path):
    page.goto("/")
    page.get_by_text("Drop a photo here").wait_for()
    page.set_input_files("input[type=file]", str(SAMPLES / "images" / "horse.jpg"))

    result = page.locator("#result-image")
    result.wait_for(state="visible", timeout=60_000)
    page.wait_for_function("() => document.querySelector('#result-image').naturalWidth > 0", timeout=30_000)
    assert page.locator("#original-image").evaluate("img => img.naturalWidth") == 770
    page.screenshot(path=str(ARTIFACTS / "remove-background.png"), full_page=True)

    with page.expect_download() as download_info:
        page.locator("#download-button").click()
    download = download_info.value
    assert download.suggested_filename == "horse-no-bg-preview.png"
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


def test_signed_in_user_buys_full_resolution_for_the_shown_price(page, smtp, app_url, app_data_dir, tmp_path):
    sign_up_confirmed(page, smtp, app_url, "painter@example.com")
    engine = make_engine(f"sqlite:///{app_data_dir / 'clearbg.db'}")
    with Session(engine) as session:  # two credits, as an order or an admin would grant them
        user = session.exec(select(User).where(User.email == "painter@example.com")).one()
        credits.grant(session, user_id=user.id, units=200, kind=EntryKind.PURCHASE, reason="test", reference="browser-test")
        session.commit()
    engine.dispose()

    page.goto("/")
    expect(page.locator("#header-balance")).to_have_text("14.5 credits")  # 12.5 free + 2
    page.set_input_files("input[type=file]", str(SAMPLES / "images" / "horse.jpg"))
    full_button = page.locator("#full-button")
    expect(full_button).to_have_text("Full resolution 770x595 · 1 credit", timeout=60_000)
    with page.expect_download(timeout=60_000) as download_info:
        full_button.click()
    saved = tmp_path / "full.png"
    download_info.value.save_as(saved)
    assert download_info.value.suggested_filename == "horse-no-bg.png"
    assert Image.open(saved).size == (770, 595) and Image.open(saved).mode == "RGBA"
    expect(page.locator("#header-balance")).to_have_text("13.5 credits")
    page.screenshot(path=str(ARTIFACTS / "full-resolution.png"), full_page=True)
