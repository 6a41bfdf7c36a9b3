"""Batch mode on `/`: anonymous visitors are told to sign in; a signed-in user drops three files (one
of them not an image), sees two done and one failed with a clear message, and downloads the ZIP."""

from __future__ import annotations

import io
import re
import zipfile

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


def test_batch_of_three_with_one_bad_file(page, smtp, app_url, app_data_dir, tmp_path):
    page.goto("/")
    page.locator("#batch-tab").click()
    expect(page.locator("#batch-sign-in")).to_contain_text("Batch mode is for signed-in accounts")

    sign_up_confirmed(page, smtp, app_url, "batcher@example.com")
    engine = make_engine(f"sqlite:///{app_data_dir / 'clearbg.db'}")
    with Session(engine) as session:
        user = session.exec(select(User).where(User.email == "batcher@example.com")).one()
        credits.grant(session, user_id=user.id, units=200, kind=EntryKind.PURCHASE, reason="test", reference="batch-browser-test")
        session.commit()
    engine.dispose()

    horse = (SAMPLES / "images" / "horse.jpg").read_bytes()
    paths = []
    for name, data in (("horse.jpg", horse), ("notes.jpg", text_as_jpeg()), ("pony.jpg", horse)):
        (tmp_path / name).write_bytes(data)
        paths.append(str(tmp_path / name))

    page.goto("/")
    expect(page.locator("#header-balance")).to_have_text("14.5 credits")  # 12.5 free + 2
    page.locator("#batch-tab").click()
    expect(page.locator("#batch-price")).to_contain_text("your balance is 14.5 credits, enough for 58 images")
    page.get_by_text("Drop many photos here").wait_for()
    page.locator("input[type=file]").last.set_input_files(paths)

    rows = page.locator(".batch-item")
    expect(rows).to_have_count(3, timeout=30_000)
    expect(page.locator(".batch-item[data-status=done]")).to_have_count(2, timeout=120_000)
    failed = page.locator(".batch-item[data-status=failed]")
    expect(failed).to_have_count(1, timeout=30_000)
    expect(failed).to_contain_text("notes.jpg")
    expect(failed).to_contain_text("not an image we can read")
    expect(page.locator("#batch-summary")).to_contain_text("2 done, 1 failed of 3 · 0.5 credits charged")
    expect(page.locator("#header-balance")).to_have_text("14 credits")
    expect(page.locator("#batch-retry")).to_have_count(0)  # an unreadable file fails the same way again
    expect(page.locator(".batch-item[data-status=done] .batch-thumb")).to_have_count(2)
    expect(page.locator(".batch-item[data-status=done] .batch-item-download").first).to_have_attribute("href", re.compile(r"/result\?download=1$"))
    expect(page.locator("#recent-batches")).to_contain_text("3 images: 2 done, 1 failed")
    page.screenshot(path=str(ARTIFACTS / "batch.png"), full_page=True)
    assert page.locator("#show-webhook-secret").count() == 0  # the signing secret lives on /account

    with page.expect_download(timeout=60_000) as download_info:
        page.locator("#batch-download").click()
    saved = tmp_path / "batch.zip"
    download_info.value.save_as(saved)
    with zipfile.ZipFile(saved) as archive:
        assert archive.namelist() == ["horse.png", "pony.png"]
        cutout = Image.open(io.BytesIO(archive.read("pony.png")))
    assert cutout.mode == "RGBA" and cutout.width * cutout.height <= 250_000  # previews

    page.reload()  # a reload loses nothing: the recent batches keep their ZIPs
    page.locator("#batch-tab").click()
    expect(page.locator("#recent-batches a", has_text="ZIP")).to_have_count(1)


def test_the_webhook_signing_secret_is_on_the_account_page(page, smtp, app_url):
    sign_up_confirmed(page, smtp, app_url, "hooks@example.com")
    page.goto("/account")
    page.locator("#show-webhook-secret").click()
    expect(page.locator("#webhook-secret")).to_have_value(re.compile(r"^whsec_[0-9a-f]{64}$"))
    expect(page.locator("#api-keys")).to_contain_text("No API keys yet.")
