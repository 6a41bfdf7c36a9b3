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
    batch_input = page.locator(".batch-drop input[type=file]")
    batch_input.set_input_files(paths[:2])  # nothing starts yet: the price first, kept true as photos come and go
    cost = page.locator("#batch-cost")
    expect(cost).to_have_text("2 images x 0.25 credit = 0.5 credit; your balance is 14.5 credits.")
    batch_input.set_input_files(paths[1:])  # added to those chosen; notes.jpg chosen twice counts once
    expect(cost).to_have_text("3 images x 0.25 credit = 0.75 credit; your balance is 14.5 credits.")
    expect(page.locator(".batch-chosen")).to_have_count(3)
    page.locator("#batch-size").click()
    page.get_by_role("option", name="Full resolution (1 credit each)").click()
    expect(cost).to_have_text("3 images x 1 credit = 3 credits; your balance is 14.5 credits.")
    page.get_by_role("button", name="Remove pony.jpg").click()
    expect(cost).to_have_text("2 images x 1 credit = 2 credits; your balance is 14.5 credits.")
    expect(page.locator("#batch-cost-get-credits")).to_have_count(0)  # enough credits
    page.locator("#batch-size").click()
    page.get_by_role("option", name="Preview (0.25 credit each)").click()
    batch_input.set_input_files(paths[2:])
    expect(cost).to_have_text("3 images x 0.25 credit = 0.75 credit; your balance is 14.5 credits.")
    assert page.locator(".batch-item").count() == 0
    page.screenshot(path=str(ARTIFACTS / "batch-chosen.png"), full_page=True)
    page.locator("#batch-start").click()

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
    expect(page.locator("#batch-chosen")).to_have_count(0)  # sent: the next photos start a new choice
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


def test_the_price_shows_before_starting_with_get_credits_when_short(page, smtp, app_url, tmp_path):
    """12.5 free credits: 13 photos at full resolution cost more, so "Get credits" shows and nothing can start;
    removing one makes it fit."""
    sign_up_confirmed(page, smtp, app_url, "short@example.com")
    horse = (SAMPLES / "images" / "horse.jpg").read_bytes()
    paths = []
    for number in range(13):
        (tmp_path / f"horse-{number}.jpg").write_bytes(horse)
        paths.append(str(tmp_path / f"horse-{number}.jpg"))
    for width, height in ((1366, 900), (390, 844)):
        page.set_viewport_size({"width": width, "height": height})
        page.goto("/")
        page.locator("#batch-tab").click()
        page.locator("#batch-size").click()
        page.get_by_role("option", name="Full resolution (1 credit each)").click()
        page.locator(".batch-drop input[type=file]").set_input_files(paths)
        cost = page.locator("#batch-cost")
        expect(cost).to_have_text("13 images x 1 credit = 13 credits; your balance is 12.5 credits.")
        expect(page.locator("#batch-cost-get-credits")).to_have_attribute("href", "/credits")
        expect(page.locator("#batch-start")).to_be_disabled()
        page.screenshot(path=str(ARTIFACTS / f"batch-short-before-start-{width}.png"), full_page=True)
        widths = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
        assert widths[0] <= widths[1], widths
        page.get_by_role("button", name="Remove horse-12.jpg").click()
        expect(cost).to_have_text("12 images x 1 credit = 12 credits; your balance is 12.5 credits.")
        expect(page.locator("#batch-cost-get-credits")).to_have_count(0)
        expect(page.locator("#batch-start")).to_be_enabled()
        page.locator("#batch-clear").click()
        expect(page.locator("#batch-chosen")).to_have_count(0)
    assert page.locator(".batch-item").count() == 0  # nothing was started


def test_the_webhook_signing_secret_is_on_the_account_page(page, smtp, app_url):
    sign_up_confirmed(page, smtp, app_url, "hooks@example.com")
    page.goto("/account")
    page.locator("#show-webhook-secret").click()
    expect(page.locator("#webhook-secret")).to_have_value(re.compile(r"^whsec_[0-9a-f]{64}$"))
    expect(page.locator("#api-keys")).to_contain_text("No API keys yet.")
