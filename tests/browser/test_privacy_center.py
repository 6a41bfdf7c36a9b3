"""A person turns consents on and off, keeps an image in the processing history, requests a copy of
their data and downloads the ZIP, deletes the account, then signs in during the grace period and keeps
it after all."""

from __future__ import annotations

import json
import zipfile

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import ARTIFACTS
from tests.browser.factories import wait_for_mail
from tests.conftest import SAMPLES

pytestmark = pytest.mark.browser
PASSWORD = "a-brand-new-secret"
EMAIL = "lin@example.com"


def sign_up_and_in(page) -> None:
    page.goto("/signup")
    page.locator("#signup-form").wait_for()
    page.fill("#email", EMAIL)
    page.fill("#display_name", "Lin Privacy")
    page.fill("#password", PASSWORD)
    page.check("#adult")
    page.check("#accept")
    page.click("#signup-form button[type=submit]")
    page.wait_for_url("**/account**")  # signing up signs in


def test_consents_history_export_and_deletion(page, smtp, tmp_path):
    sign_up_and_in(page)
    page.click("#account-privacy-link")
    page.wait_for_url("**/privacy-center")
    analytics = page.locator("#consent-product_analytics")
    analytics.wait_for()
    assert analytics.get_attribute("data-state") == "unchecked"
    analytics.click()
    page.locator("#consents #consents-notice", has_text="consent given").wait_for()
    assert analytics.get_attribute("data-state") == "checked"
    analytics.click()
    page.locator("#consents #consents-notice", has_text="consent withdrawn").wait_for()
    assert "withdrawn" in page.locator("#consent-history").inner_text()

    page.locator("#consent-processing_history").click()
    page.locator("#consents #consents-notice", has_text="consent given").wait_for()
    page.goto("/")
    page.get_by_text("Drop a photo here").wait_for()
    page.set_input_files("input[type=file]", str(SAMPLES / "images" / "horse.jpg"))
    page.locator("#result-image").wait_for(state="visible", timeout=60_000)
    page.goto("/history")
    page.locator("#history-items", has_text="horse.jpg").wait_for()
    page.wait_for_function("() => [...document.querySelectorAll('#history-items img')].every(i => i.naturalWidth > 0)")
    page.screenshot(path=str(ARTIFACTS / "history.png"), full_page=True)

    page.goto("/privacy-center")
    before = len(smtp.messages)
    page.locator("#request-export").click()
    page.locator("#export-ready").wait_for(timeout=60_000)
    expect(page.locator("#export #export-notice")).to_have_text("Your export is ready.")  # beside the button, not at the top
    expect(page.locator("#consents-notice")).to_have_count(0)
    mail = wait_for_mail(smtp, page, before + 1)
    assert mail["Subject"] == "Your ClearBG data export is ready" and mail["To"] == EMAIL
    with page.expect_download() as download_info:
        page.locator("#export-download").click()
    saved = tmp_path / download_info.value.suggested_filename
    download_info.value.save_as(saved)
    with zipfile.ZipFile(saved) as archive:
        document = json.loads(archive.read("clearbg-data.json"))
        assert any(name.startswith("images/") for name in archive.namelist())
    assert document["tables"]["user_account"]["rows"][0]["email"] == EMAIL
    assert len(document["tables"]["consent_event"]["rows"]) == 3
    page.screenshot(path=str(ARTIFACTS / "privacy-center.png"), full_page=True)

    page.fill("#delete-password", "not-my-password")
    page.check("#delete-confirm")
    page.click("#delete-account")
    page.locator("#delete-message", has_text="password is not correct").wait_for()  # beside the form
    assert "/privacy-center" in page.url
    page.fill("#delete-password", PASSWORD)
    page.check("#delete-confirm")
    page.click("#delete-account")
    page.wait_for_url("**/login**")
    # The tab's Reflex state still holds the last page's message until the new page's load replaces it.
    expect(page.locator("#flash-message")).to_contain_text("will be deleted")
    page.goto("/privacy-center")
    page.wait_for_url("**/login**")  # signed out everywhere

    page.fill("#email", EMAIL)
    page.fill("#password", PASSWORD)
    page.click("#login-form button[type=submit]")
    page.wait_for_url("**/restore-account**")
    expect(page.locator("#flash-message")).to_contain_text("scheduled for deletion")
    page.click("#restore-account")
    page.wait_for_url("**/privacy-center**")
    page.locator("#flash-message", has_text="will not be deleted").wait_for()


def test_the_deletion_form_names_what_ends_and_deleting_cancels_the_subscription_at_stripe(page, smtp, app_url, app_data_dir, stripe_loopback):
    """An account with 12.5 credits and an active subscription (made at the loopback Stripe): the form says the
    credits are lost and the subscription ends; confirming cancels it at Stripe, whose event then arrives."""
    from sqlmodel import Session, select

    from clearbg_app.db import make_engine
    from clearbg_app.models import CreditAccount, User
    from clearbg_app.services import credits
    from tests.browser.factories import PASSWORD as BUYER_PASSWORD, sign_up_confirmed

    sign_up_confirmed(page, smtp, app_url, "subscriber@example.com")
    fake = stripe_loopback
    customer = fake.ls.post("/v1/customers", data={"email": "subscriber@example.com"}).json()["id"]
    price = fake.create_price({"currency": "eur", "unit_amount": "900", "recurring": {"interval": "month"}})["id"]
    status, subscription = fake.create_subscription({"customer": customer, "items": [{"price": price}]})
    assert status == 200
    engine = make_engine(f"sqlite:///{app_data_dir / 'clearbg.db'}")
    with Session(engine) as session:
        user_id = session.exec(select(User.id).where(User.email == "subscriber@example.com")).one()
        account = credits.locked_account(session, user_id=user_id)
        account.stripe_customer_id, account.subscription_id, account.subscription_status = customer, subscription["id"], "active"
        session.add(account)
        session.commit()
    for width, height in ((1366, 900), (390, 844)):
        page.set_viewport_size({"width": width, "height": height})
        page.goto("/privacy-center")
        losses = page.locator(".deletion-loss")
        expect(losses).to_have_count(2)
        expect(losses.first).to_contain_text("12.5 credits will be lost")
        expect(losses.last).to_contain_text("we cancel it at Stripe at once, so it does not renew")
        assert "cancel it first" not in page.locator("#delete").inner_text()
        page.locator("#delete").scroll_into_view_if_needed()
        page.screenshot(path=str(ARTIFACTS / f"privacy-center-deletion-{width}.png"), full_page=True)
    page.fill("#delete-password", BUYER_PASSWORD)
    page.check("#delete-confirm")
    page.click("#delete-account")
    page.wait_for_url("**/login**")
    expect(page.locator("#flash-message")).to_contain_text("will be deleted")
    assert fake.subscriptions[subscription["id"]]["status"] == "canceled"
    assert ("DELETE", f"/v1/subscriptions/{subscription['id']}", {}) in fake.requests
    with Session(engine) as session:
        for _ in range(50):  # Stripe's customer.subscription.deleted arrives a few seconds later, and changes nothing
            if any(e["data"]["object"]["id"] == subscription["id"] for e, code in fake.deliveries if code == 200):
                break
            page.wait_for_timeout(200)
        else:
            raise AssertionError(f"no delivered subscription event: {fake.deliveries[-3:]}")
        assert session.get(CreditAccount, user_id).subscription_status == "canceled"
    engine.dispose()
