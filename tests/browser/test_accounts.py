"""A person signs up, confirms the address from the email, signs in, creates an API key and signs out."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import ARTIFACTS
from tests.browser.factories import PASSWORD, sign_up_confirmed, wait_for_mail
from tests.mail import link_in
from tests.oidc_provider import TestUser

pytestmark = pytest.mark.browser
def test_sign_up_verify_sign_in_create_key_sign_out(page, smtp):
    already = len(smtp.messages)
    page.goto("/signup")
    page.locator("#signup-form").wait_for()
    page.fill("#email", "Ada@Example.com")
    page.fill("#display_name", "Ada Lovelace")
    page.fill("#password", PASSWORD)
    page.check("#adult")
    page.check("#accept")
    page.screenshot(path=str(ARTIFACTS / "signup.png"), full_page=True)
    page.click("#signup-form button[type=submit]")
    page.wait_for_url("**/account**")  # signed in at once, no second typing of the password
    expect(page.locator("#flash-message")).to_contain_text("you are signed in")
    expect(page.locator("#flash-message")).to_contain_text("free monthly credits, buy credits and create API keys")

    mail = wait_for_mail(smtp, page, already + 1)
    assert mail["To"] == "ada@example.com"
    verify_link = link_in(mail, "/auth/verify")
    page.locator("#unverified-badge").wait_for()
    expect(page.locator("input[name=display_name]")).to_have_value("Ada Lovelace")
    assert "Ada" not in page.locator("#header-account").inner_text()  # the header names no one

    page.goto(verify_link)
    page.wait_for_url("**/account**")
    expect(page.locator("#flash-message")).to_have_text("Your email address is confirmed. This month's free credits are on your account.")
    expect(page.locator("#header-balance")).to_have_text("12.5 credits")

    page.fill("input[name=label]", "Shop importer")
    page.click("#create-key")
    expect(page.locator("#new-key")).to_be_visible()
    expect(page.locator("#new-key-secret")).to_have_value(re.compile(r"^cbg_live_[\w-]{40,}$"))
    secret = page.input_value("#new-key-secret")
    page.screenshot(path=str(ARTIFACTS / "account.png"), full_page=True)
    assert "Shop importer" in page.locator("#api-keys").inner_text()
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.locator("#new-key button", has_text="Copy").click()
    assert page.evaluate("navigator.clipboard.readText()") == secret
    page.reload()
    page.screenshot(path=str(ARTIFACTS / "account-reloaded.png"), full_page=True)
    page.locator("#api-keys", has_text="Shop importer").wait_for()
    assert "cbg_live_" in page.locator("#api-keys").inner_text()  # the prefix, to recognise the key
    expect(page.locator("#new-key")).to_be_hidden()  # the secret was shown once only
    assert page.input_value("#new-key-secret") == "" and secret not in page.content()

    page.goto("/admin")  # not an admin: the server refuses, whatever the UI shows
    page.locator("#forbidden").wait_for()
    assert page.locator("#admin-users").count() == 0

    page.goto("/account")
    page.locator("#sign-out").click()
    page.get_by_role("link", name="Sign in").wait_for()
    page.goto("/account")
    page.wait_for_url("**/login**")

    # Back in with "Google": the loopback provider vouches for the same, verified address.
    page.click("#google-login button")
    page.wait_for_url(lambda url: "/account" in url and "/login" not in url)
    page.screenshot(path=str(ARTIFACTS / "google-sign-in.png"), full_page=True)
    page.locator("#account-email", has_text="ada@example.com").wait_for()
    expect(page.locator("input[name=display_name]")).to_have_value("Ada Lovelace")


def test_sign_up_with_google_needs_the_consents_on_our_page(page, oidc):
    oidc.user = TestUser(sub="google-sub-2002", email="grace@example.com", name="Grace Hopper")
    page.goto("/signup")
    page.locator("#google-signup").wait_for()
    page.check("#google_adult")
    page.check("#google_accept")
    page.click("#google-signup button[type=submit]")
    page.wait_for_url("**/account**")
    page.locator("#account-email", has_text="grace@example.com").wait_for()
    expect(page.locator("input[name=display_name]")).to_have_value("Grace Hopper")


def test_account_forms_answer_beside_themselves_and_keep_what_was_typed(page, smtp, app_url):
    """The display-name and create-key forms: each error or confirmation shows in the form's own section,
    not at the top of /account, and a refused value stays typed; a created key's label is cleared."""
    sign_up_confirmed(page, smtp, app_url, "forms@example.com")
    page.goto("/account")
    name = page.locator("#account-display-name")
    expect(name).to_have_value("Buyer")
    name.fill("   ")
    page.click("#save-name")
    expect(page.locator("#profile #profile-notice")).to_contain_text("Enter a display name")
    expect(name).to_have_value("   ")  # what was typed stays
    assert page.locator("#keys-notice, #sessions-notice, #flash-message").count() == 0
    page.set_viewport_size({"width": 1366, "height": 900})
    page.screenshot(path=str(ARTIFACTS / "account-name-refused-1366.png"), full_page=True)
    name.fill("Ada Byron")
    page.click("#save-name")
    expect(page.locator("#profile #profile-notice")).to_have_text("Your display name is saved.")
    expect(name).to_have_value("Ada Byron")

    label = page.locator("#key-label")
    label.fill("  ")
    page.click("#create-key")
    expect(page.locator("#keys #keys-notice")).to_contain_text("Give the key a label")
    expect(page.locator("#profile-notice")).to_have_count(0)  # one answer at a time, beside its form
    expect(label).to_have_value("  ")
    page.set_viewport_size({"width": 390, "height": 844})
    page.locator("#keys-notice").scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "account-key-refused-390.png"), full_page=True)
    label.fill("Shop importer")
    page.click("#create-key")
    expect(page.locator("#keys #keys-notice")).to_contain_text("shown only this once")
    expect(page.locator("#new-key-secret")).to_have_value(re.compile(r"^cbg_live_[\w-]{40,}$"))
    expect(label).to_have_value("")  # created: the form is ready for the next key
    page.screenshot(path=str(ARTIFACTS / "account-key-created-390.png"), full_page=True)
