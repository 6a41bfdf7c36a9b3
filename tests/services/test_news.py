"""Product news on SQLite and PostgreSQL: sent only to accounts that consent when each mail goes out,
safe Markdown (raw HTML and javascript: links refused), RFC 8058 one-click unsubscribe by a signed link
(recorded with source "email"), replayed, forged and expired links refused; the routes through
Starlette's TestClient."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlmodel import select
from starlette.testclient import TestClient

from clearbg_app.api import build_api
from clearbg_app.models import AuditEvent, ConsentEvent, OutboxMail, User
from clearbg_app.services import accounts, admin as admin_service, consents, deletion, news, privacy_choices
from tests.mail import outbox
from tests.privacy_helpers import PASSWORD, new_user

BODY = "## Batch mode\n\nUpload **fifty** images at once. [Read more](https://clearbg.example.com/batch)."


def admin_user(session, clock) -> User:
    return accounts.make_admin(session, email="ops@example.com", now=clock())[0]


def subscribed(session, clock, email) -> User:
    user = new_user(session, clock, email=email)
    privacy_choices.set_consent(session, user=user, purpose=consents.MARKETING_EMAIL, granted=True, source="privacy_center", now=clock())
    return user


def unsubscribe_url(message) -> str:
    return re.fullmatch(r"<(https?://\S+)>", message["List-Unsubscribe"]).group(1)


def test_news_goes_only_to_accounts_consenting_when_it_is_sent(session, store, clock, data_dir):
    admin = admin_user(session, clock)
    yes, later_no = subscribed(session, clock, "yes@example.com"), subscribed(session, clock, "later-no@example.com")
    new_user(session, clock, email="never@example.com")
    new_user(session, clock, email="unverified@example.com", verified=False)
    leaving = subscribed(session, clock, "leaving@example.com")
    deletion.request_deletion(session, user=leaving, store=store, password=PASSWORD, now=clock())
    suspended = subscribed(session, clock, "suspended@example.com")
    admin_service.suspend(session, admin=admin, user_id=suspended.id, reason="Abuse", now=clock())
    before = len(outbox(data_dir, clock))

    shown = news.preview(session, admin=admin, subject="New: batch mode", body=BODY)
    assert shown.recipients == 2 and "<h2>Batch mode</h2>" in shown.html and "<strong>fifty</strong>" in shown.html
    assert news.send(session, admin=admin, subject="New: batch mode", body=BODY, now=clock()) == 2
    clock.advance(seconds=1)
    privacy_choices.set_consent(session, user=later_no, purpose=consents.MARKETING_EMAIL, granted=False, source="privacy_center", now=clock())
    sent = outbox(data_dir, clock)[before:]
    assert [m["To"] for m in sent] == [yes.email]  # the withdrawal before the worker got to it counts
    message = sent[0]
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert unsubscribe_url(message).startswith("http://localhost:3000/news/unsubscribe?token=")
    assert "<strong>fifty</strong>" in message.get_body(("html",)).get_content()
    assert unsubscribe_url(message) in message.get_body(("plain",)).get_content()
    assert session.exec(select(AuditEvent).where(AuditEvent.action == "news.sent")).one().after == {"subject": "New: batch mode", "recipients": 2}


@pytest.mark.parametrize(("body", "says"), [
    ("Hi <script>alert(1)</script>", "Raw HTML is not allowed"),
    ("<div onclick=x>hi</div>", "Raw HTML is not allowed"),
    ("[click](javascript:alert(1))", "Links must start with"),
    ("[click](JAVASCRIPT:alert(1))", "Links must start with"),
    ("<javascript:alert(1)>", "Links must start with"),
    ("[x](data:text/html;base64,PHNjcmlwdD4=)", "Links must start with"),
    ("[x]: vbscript:msgbox\n\n[ref][x]", "Links must start with"),
    ("![pixel](https://tracker.example/p.gif)", "Images are not allowed"),
    ("", "Write the news"),
    ("x" * 20001, "keep it under 20000"),
])  # fmt: skip
def test_unsafe_news_is_refused_and_nothing_is_queued(session, clock, body, says):
    admin = admin_user(session, clock)
    subscribed(session, clock, "yes@example.com")
    with pytest.raises(news.NewsError, match=says):
        news.send(session, admin=admin, subject="News", body=body, now=clock())
    with pytest.raises(news.NewsError, match=says):
        news.preview(session, admin=admin, subject="News", body=body)
    assert session.exec(select(OutboxMail).where(OutboxMail.kind == "product_news")).all() == []


@pytest.mark.parametrize("subject", ["", "Hi\r\nBcc: everyone@example.com", "x" * 151])
def test_bad_subjects_are_refused(session, clock, subject):
    with pytest.raises(news.NewsError):
        news.send(session, admin=admin_user(session, clock), subject=subject, body="Hi", now=clock())


def test_only_admins_compose(session, clock):
    user = subscribed(session, clock, "yes@example.com")
    with pytest.raises(PermissionError):
        news.send(session, admin=user, subject="Spam", body="Spam", now=clock())


def test_one_click_unsubscribe_withdraws_and_a_replay_is_refused(session, clock, data_dir):
    admin, user = admin_user(session, clock), subscribed(session, clock, "yes@example.com")
    news.send(session, admin=admin, subject="News", body="Hello", now=clock())
    link = unsubscribe_url(outbox(data_dir, clock)[-1])
    client = TestClient(build_api(), follow_redirects=False)
    path = link.removeprefix("http://localhost:3000")

    page = client.get(path)  # a link scanner, or the person: nothing changes yet
    assert page.status_code == 200 and "Stop product news" in page.text
    assert consents.has_consent(session, user_id=user.id, purpose=consents.MARKETING_EMAIL)
    response = client.post(path, data={"List-Unsubscribe": "One-Click"})  # what the mail client sends, no cookie
    assert response.status_code == 200 and "no more product news" in response.text
    assert not consents.has_consent(session, user_id=user.id, purpose=consents.MARKETING_EMAIL)
    latest = consents.history(session, user_id=user.id)[0]
    assert (latest.granted, latest.source) == (False, "email")

    replay = client.post(path, data={"List-Unsubscribe": "One-Click"})
    assert replay.status_code == 400 and "already used" in replay.text
    clock.advance(minutes=1)
    privacy_choices.set_consent(session, user=user, purpose=consents.MARKETING_EMAIL, granted=True, source="privacy_center", now=clock())
    replay = client.post(path)  # an old link cannot undo a newer choice
    assert replay.status_code == 400 and "out of date" in replay.text
    assert consents.has_consent(session, user_id=user.id, purpose=consents.MARKETING_EMAIL)
    assert len(session.exec(select(ConsentEvent).where(ConsentEvent.user_id == user.id)).all()) == 3


def test_forged_and_expired_unsubscribe_links_are_refused(session, clock, data_dir):
    admin, user = admin_user(session, clock), subscribed(session, clock, "yes@example.com")
    news.send(session, admin=admin, subject="News", body="Hello", now=clock())
    token = unsubscribe_url(outbox(data_dir, clock)[-1]).split("?token=", 1)[1]
    body, _, mac = token.partition(".")
    for bad in (f"{body}.{mac[::-1]}", "", "not-a-token", body):
        with pytest.raises(news.NewsError, match="not valid"):
            news.unsubscribe(session, token=bad, now=clock())
    with pytest.raises(news.NewsError, match="expired"):
        news.unsubscribe(session, token=token, now=clock() + timedelta(days=91))
    client = TestClient(build_api(), follow_redirects=False)
    response = client.post("/news/unsubscribe?token=forged.token", data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 400 and "not valid" in response.text
    assert client.get("/news/unsubscribe?token=%27%3E%3Cscript%3E").text.count("<script>") == 0  # the token is escaped
    assert consents.has_consent(session, user_id=user.id, purpose=consents.MARKETING_EMAIL)
