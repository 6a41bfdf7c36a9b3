"""The first ten minutes of a new user, in Chromium: sign up (signed in at once), the first
full-resolution click refused beside the button with a way forward, confirming brings the free
allowance, images in by sample, paste, URL and a drop anywhere, and no page scrolls sideways on a phone."""

from __future__ import annotations

import base64

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import ARTIFACTS
from tests.browser.factories import PASSWORD, wait_for_mail
from tests.conftest import SAMPLES
from tests.mail import link_in

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1366, "height": 900}
HORSE_B64 = base64.b64encode((SAMPLES / "images" / "horse.jpg").read_bytes()).decode()
SIGNED_OUT_PAGES = ("/login", "/signup", "/forgot-password")
PAGES = ("/", "/pricing", "/credits", "/account", "/privacy-center", "/history", "/docs/api", "/privacy", "/terms", "/subprocessors")
SHOTS = ARTIFACTS / "first-run"


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def sign_up(page, smtp, email: str) -> str:
    """The sign-up form, by hand; returns the confirmation link from the email."""
    already = len(smtp.messages)
    page.goto("/signup")
    page.fill("#email", email)
    page.fill("#display_name", "New User")
    page.fill("#password", PASSWORD)
    page.check("#adult")
    page.check("#accept")
    page.click("#signup-form button[type=submit]")
    page.wait_for_url("**/account**")
    return link_in(wait_for_mail(smtp, page, already + 1), "/auth/verify")


def result_shown(page) -> None:
    page.locator("#progress").wait_for(state="hidden", timeout=60_000)
    page.locator("#result-image").wait_for(state="visible", timeout=60_000)
    page.wait_for_function("() => document.querySelector('#result-image')?.naturalWidth > 0", timeout=30_000)


def input_ready(page, signed_in: bool = False) -> None:
    """The page is rendered and `clearbg-input.js` listens (paste and drop handlers)."""
    page.locator(f"#input-helpers[data-signed-in={'yes' if signed_in else 'no'}]").wait_for(state="attached")
    page.wait_for_function("() => window.clearbgInput === true")


def no_sideways_scroll(page) -> None:
    widths = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1], f"{page.url} scrolls sideways at {widths[1]} px: {widths[0]} px wide"


def test_first_full_resolution_is_refused_beside_the_button_then_confirming_brings_the_allowance(page, smtp):
    verify_link = sign_up(page, smtp, "first@example.com")
    expect(page.locator("#header-pricing")).to_be_visible()  # signed in, Pricing stays in the header
    expect(page.locator("#header-balance")).to_have_text("0 credits")

    page.goto("/")
    page.set_input_files("#single-drop input[type=file]", str(SAMPLES / "images" / "horse.jpg"))
    result_shown(page)
    page.locator("#full-button").click()
    refusal = page.locator("#full-error")
    expect(refusal).to_contain_text("Insufficient credits: this costs 1 credit and your balance is 0.")
    expect(refusal).to_contain_text("free credits arrive on")
    expect(page.locator("#error-message")).to_have_count(0)  # not above the images, far from the button
    gap = page.evaluate(
        "() => document.querySelector('#full-error').getBoundingClientRect().top"
        " - document.querySelector('#full-button').getBoundingClientRect().bottom"
    )
    assert gap < 80  # beside the action
    expect(page.locator("#full-get-credits")).to_have_attribute("href", "/credits")
    shot(page, "insufficient-credits")

    page.goto("/credits")
    expect(page.locator("#allowance")).to_contain_text("Confirm your email address to get 12.5 free credits every month.")
    expect(page.locator("#orders")).to_contain_text("No orders yet.")
    page.goto(verify_link)
    page.wait_for_url("**/account**")
    expect(page.locator("#header-balance")).to_have_text("12.5 credits")
    page.goto("/credits")
    expect(page.locator("#allowance")).to_contain_text("Free allowance: 12.5 credits a month. 12.5 of this month's are left; they lapse on")
    expect(page.locator("#ledger")).to_contain_text("Free monthly allowance")

    page.goto("/")
    with page.expect_file_chooser() as chooser:  # "Remove another background" opens the file picker
        page.locator("#another-button").click()
    chooser.value.set_files(str(SAMPLES / "images" / "horse.jpg"))
    result_shown(page)
    with page.expect_download(timeout=60_000):
        page.locator("#full-button").click()
    expect(page.locator("#header-balance")).to_have_text("11.5 credits")
    page.goto("/credits")
    expect(page.locator("#ledger")).to_contain_text("Web: horse.jpg")


def test_a_sample_photo_with_its_attribution_and_another_upload(page):
    page.set_viewport_size(DESKTOP)
    page.goto("/")
    expect(page.locator(".sample-attribution")).to_have_count(4)
    expect(page.locator(".sample-attribution").first).to_contain_text("CC BY 2.0")
    shot(page, "home-1366")
    page.locator("#sample-cat").click()
    result_shown(page)
    expect(page.locator("#single-drop")).to_contain_text("Upload another")  # the big drop zone shrank
    box = page.locator("#download-button").bounding_box()
    assert box is not None and box["y"] + box["height"] <= DESKTOP["height"]  # no scrolling to download
    shot(page, "result-1366")
    with page.expect_file_chooser() as chooser:
        page.locator("#another-button").click()
    assert not chooser.value.is_multiple()


def test_paste_an_image_paste_a_url_and_drop_anywhere(page):
    page.goto("/")
    input_ready(page)
    page.evaluate(
        """(data) => {
            const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], "pasted.jpg", {type: "image/jpeg"}));
            document.body.dispatchEvent(new ClipboardEvent("paste", {clipboardData: transfer, bubbles: true}));
        }""",
        HORSE_B64,
    )
    result_shown(page)

    page.goto("/")
    input_ready(page)
    page.evaluate(
        """() => {
            const transfer = new DataTransfer();
            transfer.setData("text/plain", "http://127.0.0.1:9/internal.jpg");
            document.body.dispatchEvent(new ClipboardEvent("paste", {clipboardData: transfer, bubbles: true}));
        }"""
    )
    expect(page.locator("#error-message")).to_contain_text("The image URL points to an address we do not fetch from", timeout=30_000)
    page.fill("#image-url", "ftp://example.com/x.jpg")
    page.click("#fetch-url")
    expect(page.locator("#error-message")).to_contain_text("must be an http:// or https:// URL", timeout=30_000)

    drop_two = """(data) => {
        const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
        const transfer = new DataTransfer();
        for (const name of ["one.jpg", "two.jpg"]) transfer.items.add(new File([bytes], name, {type: "image/jpeg"}));
        window.dispatchEvent(new DragEvent("dragenter", {dataTransfer: transfer, bubbles: true}));
        window.__overlay = !!document.getElementById("drop-overlay");
        document.body.dispatchEvent(new DragEvent("drop", {dataTransfer: transfer, bubbles: true, cancelable: true}));
    }"""
    page.evaluate(drop_two, HORSE_B64)
    assert page.evaluate("window.__overlay")
    expect(page.locator("#drop-overlay")).to_have_count(0)
    expect(page.locator("#multi-drop-offer")).to_contain_text("Processing many at once (Batch) needs an account")


def test_several_files_on_one_photo_offer_the_batch_when_signed_in(page, smtp):
    sign_up(page, smtp, "dropper@example.com")
    page.goto("/")
    input_ready(page, signed_in=True)
    page.evaluate(
        """(data) => {
            const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
            const transfer = new DataTransfer();
            for (const name of ["one.jpg", "two.jpg"]) transfer.items.add(new File([bytes], name, {type: "image/jpeg"}));
            window.dispatchEvent(new DragEvent("dragenter", {dataTransfer: transfer, bubbles: true}));
            document.body.dispatchEvent(new DragEvent("drop", {dataTransfer: transfer, bubbles: true, cancelable: true}));
        }""",
        HORSE_B64,
    )
    page.locator("#multi-drop-batch").click()  # the files move to the Batch tab; the unconfirmed account has 0 credits
    expect(page.locator("#batch-cost")).to_have_text("2 images x 0.25 credit = 0.5 credit; your balance is 0 credits.")
    expect(page.locator("#batch-cost-get-credits")).to_have_attribute("href", "/credits")
    expect(page.locator("#batch-start")).to_be_disabled()  # before anything starts
    expect(page.locator(".batch-item")).to_have_count(0)
    shot(page, "batch-short-of-credits")


def test_no_page_scrolls_sideways_on_a_phone(page, smtp):
    page.set_viewport_size(PHONE)
    for path in SIGNED_OUT_PAGES:
        page.goto(path)
        page.locator("footer, .rt-Container").first.wait_for()
        page.wait_for_timeout(300)
        no_sideways_scroll(page)
        shot(page, path.strip("/") + "-390")
    verify_link = sign_up(page, smtp, "phone@example.com")
    page.goto(verify_link)
    page.wait_for_url("**/account**")
    for path in PAGES:
        page.goto(path)
        page.locator(".rt-Container").first.wait_for()
        page.wait_for_timeout(500)
        no_sideways_scroll(page)
        shot(page, (path.strip("/").replace("/", "-") or "home") + "-390")
    page.goto("/")
    page.locator("#sample-dog").click()
    result_shown(page)
    page.wait_for_timeout(300)
    no_sideways_scroll(page)  # the action row wraps, buttons full width
    width = page.locator("#download-button").bounding_box()["width"]
    assert width > PHONE["width"] * 0.7
    shot(page, "result-390")
    page.set_viewport_size(DESKTOP)
    for path in PAGES:
        page.goto(path)
        page.locator(".rt-Container").first.wait_for()
        page.wait_for_timeout(500)
        shot(page, (path.strip("/").replace("/", "-") or "home") + "-1366")


def test_a_suspended_account_is_signed_out_at_its_next_click_and_nothing_is_processed(page, smtp, app_data_dir):
    """An open tab of an account an administrator suspends: the next event signs it out, at once."""
    from sqlmodel import Session, func, select

    from clearbg_app.db import make_engine
    from clearbg_app.models import ProcessedImage, User
    from clearbg_app.services import accounts, admin

    sign_up(page, smtp, "suspended@example.com")
    page.goto("/")
    page.locator("#input-helpers[data-signed-in=yes]").wait_for(state="attached")
    engine = make_engine(f"sqlite:///{app_data_dir / 'clearbg.db'}")
    with Session(engine) as session:
        boss, _ = accounts.make_admin(session, email="boss@example.com")
        user = session.exec(select(User).where(User.email == "suspended@example.com")).one()
        admin.suspend(session, admin=boss, user_id=user.id, reason="abuse")
        images_before = session.exec(select(func.count()).select_from(ProcessedImage)).one()
    page.locator("#sample-cat").click()
    page.wait_for_url("**/login?ended=1", timeout=30_000)
    expect(page.locator("#signed-out-notice")).to_contain_text("You were signed out")
    expect(page.locator("#header-balance")).to_have_count(0)
    with Session(engine) as session:
        assert session.exec(select(func.count()).select_from(ProcessedImage)).one() == images_before
    engine.dispose()


def test_api_docs_code_blocks_stay_in_the_column_and_copy(page):
    """Each code block of /docs/api wraps inside the text column (at 390 px too) and has a copy button that copies it."""
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    for viewport in (DESKTOP, PHONE):
        page.set_viewport_size(viewport)
        page.goto("/docs/api")
        blocks = page.locator("pre")
        blocks.first.wait_for()
        count = blocks.count()
        assert count >= 4 and page.get_by_role("button", name="Copy code").count() == count
        column = page.locator(".rt-Container").first.bounding_box()
        for index in range(count):
            box = blocks.nth(index).bounding_box()
            assert box["x"] >= column["x"] - 1 and box["x"] + box["width"] <= column["x"] + column["width"] + 1, (index, box, column)
        no_sideways_scroll(page)
    page.get_by_role("button", name="Copy code").first.click()
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied.strip() and copied.strip() == blocks.first.inner_text().strip()
    assert "curl" in page.locator("pre", has_text="curl").first.inner_text()
