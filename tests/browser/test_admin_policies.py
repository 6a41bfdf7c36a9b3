"""An admin publishes a material privacy-policy v2 (whose draft carries a script tag and a
`javascript:` link: previewed and published, nothing runs); a user sees the banner, acknowledges it,
it is gone; `/privacy` shows v2 with a link to v1. Plus the 403 for a user, and `/subprocessors`."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from sqlmodel import Session

from clearbg_app.db import make_engine
from clearbg_app.services import accounts
from tests.browser.conftest import ARTIFACTS
from tests.browser.factories import sign_up_confirmed

pytestmark = pytest.mark.browser

HOSTILE = (
    "# Privacy policy\n\nWe now keep request logs for 30 days.\n\n"
    "<script>window.__pwned = 1; alert('script ran')</script>\n\n"
    "<img src=x onerror=\"window.__pwned = 2\">\n\n"
    "[click me](javascript:window.__pwned=3) and [data link](data:text/html,<script>alert(1)</script>)\n\n"
    "See the [subprocessors](/subprocessors).\n"
)


def watch_for_dialogs(page) -> list[str]:
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    return dialogs


def assert_inert(page, dialogs: list[str]) -> None:
    """Nothing from the document ran, and no link in the page has a script or data URL."""
    assert page.evaluate("window.__pwned") is None
    assert dialogs == []
    assert page.locator("a[href^='javascript' i], a[href^='data' i]").count() == 0
    assert page.locator("script:has-text('script ran')").count() == 0


def test_material_change_banner_acknowledgement_and_versions(browser, page, smtp, app_url, app_data_dir):
    sign_up_confirmed(page, smtp, app_url, "boss@example.com")
    reader_context = browser.new_context(base_url=app_url, viewport={"width": 1280, "height": 900})
    reader = reader_context.new_page()
    sign_up_confirmed(reader, smtp, app_url, "reader@example.com")

    reader.goto("/admin/policies")  # a user is refused by the server, whatever the page shows
    reader.locator("#forbidden").wait_for()
    assert reader.locator("#policy-versions").count() == 0

    engine = make_engine(f"sqlite:///{app_data_dir / 'clearbg.db'}")
    with Session(engine) as session:
        accounts.make_admin(session, email="boss@example.com")
    engine.dispose()

    page.goto("/admin")
    page.locator("#admin-jobs").wait_for()
    expect(page.locator("#stat-users")).to_contain_text("new in 7 days")
    page.screenshot(path=str(ARTIFACTS / "admin-dashboard.png"), full_page=True)

    dialogs = watch_for_dialogs(page)
    page.goto("/admin/policies")
    page.locator("#policy-versions").wait_for()
    page.click("#new-privacy-draft")
    page.locator("#policy-body-input").wait_for()
    expect(page.locator("#policy-label")).to_have_value("2")
    page.fill("#policy-body-input", "")
    page.click("#policy-save")
    expect(page.locator("#admin-notice")).to_contain_text("The document is empty")  # refused, nothing saved

    page.fill("#policy-body-input", HOSTILE)
    page.fill("#policy-summary", "Request logs are kept 30 days instead of 90.")
    page.check("#policy-material")
    page.click("#policy-save")
    expect(page.locator("#admin-notice")).to_contain_text("Draft 2 saved")
    preview = page.locator("#policy-preview")
    expect(preview).to_contain_text("We now keep request logs for 30 days.")
    expect(preview).to_contain_text("<script>window.__pwned = 1;")  # shown as text, not run
    expect(preview).to_contain_text("[click me](javascript:window.__pwned=3)")
    assert preview.locator("a", has_text="subprocessors").get_attribute("href") == "/subprocessors"
    assert_inert(page, dialogs)
    page.screenshot(path=str(ARTIFACTS / "admin-policy-preview.png"), full_page=True)
    expect(page.locator("#effective-help")).to_contain_text("never takes effect retroactively")

    page.click("#policy-publish")  # a material change: confirmed first, with how many are emailed
    expect(page.locator("#publish-recipients")).to_have_text(re.compile(r"^[1-9][0-9]*$"))  # at least the admin and the reader
    page.wait_for_timeout(400)  # the dialog fades in
    page.screenshot(path=str(ARTIFACTS / "admin-policy-publish-confirm.png"))
    page.click("#policy-publish-confirm")
    expect(page.locator("#admin-notice")).to_contain_text("Published")
    expect(page.locator("#policy-versions")).to_contain_text("in effect since")
    assert_inert(page, dialogs)

    reader.goto("/")
    banner = reader.locator(".policy-banner")
    expect(banner).to_have_count(1)
    expect(banner).to_contain_text("We changed our privacy policy")
    expect(banner).to_contain_text("Request logs are kept 30 days instead of 90.")
    reader.screenshot(path=str(ARTIFACTS / "policy-banner.png"))
    reader.locator(".policy-ack").click()
    expect(banner).to_have_count(0)
    reader.reload()
    reader.locator("#header-account").wait_for()
    reader.wait_for_timeout(1000)  # the banner loads on mount: give it the chance to come back
    expect(reader.locator(".policy-banner")).to_have_count(0)

    reader_dialogs = watch_for_dialogs(reader)
    reader.goto("/privacy")
    expect(reader.locator("#policy-version")).to_have_text("Version 2")
    expect(reader.locator("#policy-body")).to_contain_text("We now keep request logs for 30 days.")
    assert_inert(reader, reader_dialogs)
    reader.screenshot(path=str(ARTIFACTS / "privacy-v2.png"), full_page=True)
    reader.click("#policy-versions-link")
    reader.wait_for_url("**/privacy/versions")
    list_ = reader.locator("#policy-version-list")
    expect(list_).to_contain_text("material change")
    list_.get_by_role("link", name="1", exact=True).click()
    reader.wait_for_url("**/privacy/versions/1")
    expect(reader.locator("#policy-version")).to_have_text("Version 1")
    expect(reader.locator("#policy-not-current")).to_be_visible()
    expect(reader.locator("#policy-body")).to_contain_text("/privacy-center")
    reader.screenshot(path=str(ARTIFACTS / "privacy-v1.png"), full_page=True)
    reader.goto("/privacy/versions/99")
    expect(reader.locator("#policy-missing")).to_contain_text("no published privacy policy version")
    reader_context.close()


def test_subprocessors_page_lists_the_active_ones_from_the_footer(page):
    page.goto("/")
    page.get_by_role("link", name="Subprocessors").click()
    page.wait_for_url("**/subprocessors")
    table = page.locator("#subprocessor-list")
    expect(table).to_contain_text("Stripe")
    expect(table).to_contain_text("Hosting provider (to be named by the operator)")
    assert page.locator("#subprocessor-list a", has_text="DPA").first.get_attribute("href").startswith("https://")
    expect(page.locator("#subprocessors-changed")).to_contain_text("2026")
    page.screenshot(path=str(ARTIFACTS / "subprocessors.png"), full_page=True)
