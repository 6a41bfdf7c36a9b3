"""Privacy operations in the real app and headless Chromium: a visitor sends a request from /contact, its
confirmation link is caught by the SMTP sink and opened; an admin finds it in /admin/requests, replies
(the reply arrives), and holds and closes accounts at /admin/users/{id}; the news composer refuses raw
HTML, previews, and sends to the one consenting account, whose mail carries the one-click unsubscribe.
Screenshots at 1366 and 390 px wide."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor

import pytest
from playwright.sync_api import expect
from sqlmodel import Session

from clearbg_app.db import make_engine
from clearbg_app.services import accounts, consents, privacy_choices
from tests.browser.conftest import ARTIFACTS
from tests.browser.factories import sign_up_confirmed, wait_for_mail
from tests.mail import link_in

pytestmark = pytest.mark.browser
WIDTHS = (1366, 390)


def shoot(page, name: str) -> None:
    """The page at each width the house checks."""
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        page.wait_for_timeout(300)
        page.screenshot(path=str(ARTIFACTS / f"{name}-{width}.png"), full_page=True)
    page.set_viewport_size({"width": 1366, "height": 900})


def in_db(app_data_dir, work) -> None:
    """Run `work(session)` on the app's database, in a thread of its own (Playwright's event loop runs in
    this one, and password hashing refuses to run on an event loop)."""

    def run() -> None:
        engine = make_engine(f"sqlite:///{app_data_dir / 'clearbg.db'}")
        with Session(engine) as session:
            work(session)
        engine.dispose()

    with ThreadPoolExecutor(1) as pool:
        pool.submit(run).result()


def test_contact_request_confirmed_from_mail_then_answered_from_the_queue(page, smtp, app_url, app_data_dir):
    page.goto("/contact")
    page.locator("#contact-form").wait_for()
    expect(page.locator("#footer-operator")).to_contain_text("Operated by Example Imaging Ltd")
    page.select_option("#contact-kind", "access")
    page.fill("#contact-email", "visitor@example.com")
    page.fill("#contact-message", "I have no account any more. What do you hold about me?")
    page.click("#contact-submit")  # the box is not ticked: the browser refuses, nothing is sent
    assert page.locator("#contact-notice").count() == 0
    page.check("#contact-confirm")
    shoot(page, "contact")
    already = len(smtp.messages)
    page.click("#contact-submit")
    expect(page.locator("#contact-notice")).to_contain_text("emailed you a link")
    confirm = wait_for_mail(smtp, page, already + 1)
    assert confirm["To"] == "visitor@example.com" and "Confirm your request" in confirm["Subject"]
    assert "ClearBG is operated by Example Imaging Ltd" in confirm.get_content()
    page.goto(link_in(confirm, "/contact/confirm"))
    expect(page.locator("#flash-message")).to_contain_text("your request is confirmed")
    shoot(page, "contact-confirmed")
    receipt = wait_for_mail(smtp, page, already + 2)
    assert receipt["Subject"] == "We received your request"
    forged = link_in(confirm, "/contact/confirm")[:-4] + "AAAA"
    page.goto(forged)
    expect(page.locator("#flash-message")).to_contain_text("not valid")

    sign_up_confirmed(page, smtp, app_url, "dpo@example.com")
    in_db(app_data_dir, lambda session: accounts.make_admin(session, email="dpo@example.com"))
    page.goto("/admin")
    expect(page.locator("#stat-requests")).to_contain_text("0 overdue")
    page.goto("/admin/requests")
    page.locator("#request-queue").wait_for()
    row = page.locator("#request-queue tr", has_text="visitor@example.com")
    expect(row).to_contain_text("no account")
    row.get_by_role("button", name="Open").click()
    expect(page.locator("#request-message")).to_contain_text("What do you hold about me?")
    page.fill("#request-reply-body", "We hold nothing about this address.")
    mails = len(smtp.messages)
    page.click("#request-reply-submit")
    expect(page.locator("#admin-notice")).to_contain_text("on its way")
    expect(page.locator("#request-replies")).to_contain_text("We hold nothing")
    reply = wait_for_mail(smtp, page, mails + 1)
    assert reply["To"] == "visitor@example.com" and "We hold nothing" in reply.get_content()
    shoot(page, "admin-requests")
    page.select_option("#request-new-status", "done")
    page.click("#request-status-submit")
    expect(page.locator("#request-status")).to_have_text("Done")
    expect(page.locator("#request-queue")).not_to_contain_text("visitor@example.com")  # done: out of the open queue


def test_admin_holds_and_closes_accounts_and_sends_news(page, smtp, app_url, app_data_dir):
    sign_up_confirmed(page, smtp, app_url, "boss2@example.com")
    in_db(app_data_dir, lambda session: accounts.make_admin(session, email="boss2@example.com"))
    holder: dict = {}

    def subscriber(session):
        user = accounts.sign_up(session, email="fan@example.com", display_name="Fan", password="correct-horse-battery",
                                adult_confirmed=True, policy_accepted=True, ip="127.0.0.1")  # fmt: skip
        user.email_verified_at = user.created_at
        session.add(user)
        session.commit()
        privacy_choices.set_consent(session, user=user, purpose=consents.MARKETING_EMAIL, granted=True, source="privacy_center")
        holder["fan"] = str(user.id)
        kid = accounts.sign_up(session, email="kid@example.com", display_name="Kid", password="correct-horse-battery",
                               adult_confirmed=True, policy_accepted=True, ip="127.0.0.1")  # fmt: skip
        holder["kid"] = str(kid.id)

    in_db(app_data_dir, subscriber)

    page.goto(f"/admin/users/{holder['fan']}")
    expect(page.locator("#account-view-email")).to_have_text("fan@example.com")
    page.fill("#adjust-amount", "abc")
    page.fill("#adjust-reason", "Goodwill")
    page.click("#adjust-submit")
    expect(page.locator("#adjust-notice")).to_contain_text("not a number")
    page.fill("#adjust-amount", "2")
    page.click("#adjust-submit")
    expect(page.locator("#adjust-notice")).to_contain_text("Granted 2 credits")
    page.fill("#hold-reason", "Court order 7/2027")
    page.fill("#hold-until", "2099-12-31")
    page.click("#hold-submit")
    expect(page.locator("#account-hold")).to_contain_text("2099-12-31")
    page.click("#suspend-open")
    expect(page.get_by_role("alertdialog")).to_contain_text("Suspend fan@example.com?")
    shoot(page, "admin-user")
    page.click("#suspend-cancel")
    expect(page.get_by_role("alertdialog")).to_have_count(0)
    expect(page.locator("#account-suspended")).to_have_count(0)
    page.click("#hold-lift")
    expect(page.locator("#account-hold")).to_have_count(0)

    page.goto(f"/admin/users/{holder['kid']}")
    expect(page.locator("#account-view-email")).to_have_text("kid@example.com")
    page.check("#minor-confirm")
    page.click("#minor-submit")
    expect(page.locator("#account-deletion")).to_contain_text("closed (minor)")
    page.goto("/admin/audit")
    expect(page.locator("#audit-log")).to_contain_text("account.minor_flagged")
    expect(page.locator("#audit-log")).to_contain_text("user fan@example.com")  # live accounts by email

    page.goto("/admin/news")
    page.fill("#news-subject", "New: batch mode")
    page.fill("#news-body", "Try <script>alert(1)</script>")
    page.click("#news-preview")
    expect(page.locator("#admin-notice")).to_contain_text("Raw HTML is not allowed")
    expect(page.locator("#news-body")).to_have_value("Try <script>alert(1)</script>")  # nothing lost
    page.fill("#news-body", "## Batch mode\n\nUpload **fifty** images at once. [Read more](https://example.com/batch)")
    page.click("#news-preview")
    expect(page.locator("#news-preview-body strong")).to_have_text("fifty")
    expect(page.locator("#news-recipients")).to_have_text("1")
    shoot(page, "admin-news")
    already = len(smtp.messages)
    page.click("#news-send")
    expect(page.locator("#admin-notice")).to_contain_text("Queued for 1 accounts")
    news = wait_for_mail(smtp, page, already + 1)
    assert news["To"] == "fan@example.com" and news["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    link = re.fullmatch(r"<(\S+)>", news["List-Unsubscribe"]).group(1)
    page.goto(link)
    page.click("#unsubscribe")
    expect(page.locator("#message")).to_contain_text("no more product news")
    page.screenshot(path=str(ARTIFACTS / "unsubscribed.png"))


def test_legal_pages_name_the_operator_and_mark_subprocessors(page):
    page.goto("/terms")
    expect(page.locator("#policy-body")).to_contain_text("free monthly allowance")
    expect(page.locator("#operator-identity")).to_contain_text("1 Example Street")
    page.goto("/subprocessors")
    google = page.locator("#subprocessor-list tr", has_text="Google")
    expect(google.locator(".use-note")).to_have_text("in use")  # the browser tests configure Google sign-in
    shoot(page, "subprocessors")
