"""The mail outbox on SQLite and PostgreSQL: requests and jobs only queue mail (no SMTP, no secret at
rest), the worker sends every kind to a real SMTP sink, retries while SMTP is down, and a reset request
does the same work whether or not the address has an account."""

from __future__ import annotations

import json
import logging
import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import event
from sqlmodel import select
from starlette.testclient import TestClient

from clearbg_app.api import build_api
from clearbg_app.clock import as_utc, utcnow
from clearbg_app.db import get_engine
from clearbg_app.models import OutboxMail
from clearbg_app.services import accounts, consents, deletion, exports, mail, news, policies, privacy_choices, requests
from clearbg_app.services.deletion_lock import DeletionPending
from clearbg_app.settings import get_settings
from clearbg_app.tasks import worker as queue_worker
from tests.factories import ORIGIN, flash_of, publish_material
from tests.mail import free_port, smtp_sink
from tests.privacy_helpers import EMAIL, PASSWORD, new_user


@pytest.fixture
def smtp(db_url, monkeypatch):
    """A real SMTP sink on loopback that the app's settings point at."""
    with smtp_sink() as (sink, port):
        monkeypatch.setenv("CLEARBG_SMTP_HOST", "127.0.0.1")
        monkeypatch.setenv("CLEARBG_SMTP_PORT", str(port))
        get_settings.cache_clear()
        yield sink


def queued(session) -> list[OutboxMail]:
    session.expire_all()
    return list(session.exec(select(OutboxMail).order_by(OutboxMail.created_at)).all())


class Mailbox:
    """Checks that an action only queued its mail, then lets the worker send it."""

    def __init__(self, session, sink, clock) -> None:
        self.session, self.sink, self.clock, self.kinds = session, sink, clock, set()

    def sent_by_worker(self, kind: str) -> list:
        before = len(self.sink.messages)
        rows = [row for row in queued(self.session) if row.kind == kind]
        assert rows, f"no {kind} mail queued"
        assert len(self.sink.messages) == before  # the action itself sent nothing
        for row in rows:  # no link, no token at rest: they are signed when the worker writes the mail
            text = json.dumps(row.model_dump(mode="json"))
            assert "token" not in text and "/auth/" not in text and "reset-password" not in text, text
        mail.deliver_due(clock=self.clock)
        self.kinds.add(kind)
        assert queued(self.session) == []
        return self.sink.messages[before:]


def test_every_kind_of_mail_is_queued_then_sent_to_smtp_by_the_worker(session, smtp, clock, store):
    box = Mailbox(session, smtp, clock)
    user = new_user(session, clock, verified=False)
    [verify] = box.sent_by_worker("verify_email")
    assert verify["To"] == EMAIL and "/auth/verify?token=" in verify.get_content()
    assert accounts.verify_email(session, token=verify.get_content().split("?token=")[1].split()[0], now=clock()).is_verified

    accounts.sign_up(session, email=EMAIL, display_name="Mallory", password="another-good-one", adult_confirmed=True,
                     policy_accepted=True, ip="127.0.0.1", now=clock())  # fmt: skip
    assert box.sent_by_worker("sign_up_existing")[0]["Subject"] == "Someone tried to sign up with your address"

    for _ in range(get_settings().login_max_failures):
        with pytest.raises(accounts.SignInFailed):
            accounts.authenticate(session, email=EMAIL, password="not-the-password", ip="127.0.0.2", now=clock())
    [locked] = box.sent_by_worker("sign_in_locked")
    assert "5 failed attempts" in locked.get_content()
    clock.advance(minutes=get_settings().login_lockout_minutes + 1)

    accounts.request_password_reset(session, email=EMAIL.upper(), ip="127.0.0.1", now=clock())
    [reset] = box.sent_by_worker("password_reset")
    assert reset["To"] == EMAIL and "/reset-password?token=" in reset.get_content()

    accounts.request_email_change(session, user=user, new_email="grace@example.org", password=PASSWORD, now=clock())
    [confirm] = box.sent_by_worker("email_change")
    assert confirm["To"] == "grace@example.org"
    accounts.confirm_email_change(session, token=confirm.get_content().split("?token=")[1].split()[0], now=clock())
    [changed] = box.sent_by_worker("email_changed")
    assert changed["To"] == EMAIL and "grace@example.org" in changed.get_content()

    export = exports.request_export(session, user=user, now=clock())
    exports.build_pending(session, store=store, clock=clock)
    assert box.sent_by_worker("export_ready")[0]["Subject"] == "Your ClearBG data export is ready"
    assert export.id is not None

    privacy_choices.set_consent(session, user=user, purpose=consents.MARKETING_EMAIL, granted=True, source="privacy_center", now=clock())
    assert news.send(session, admin=accounts.make_admin(session, email="ops@example.com", now=clock())[0],
                     subject="New: batch mode", body="Try it.", now=clock()) == 1  # fmt: skip
    [news_mail] = box.sent_by_worker("product_news")
    assert news_mail["Subject"] == "New: batch mode" and "Try it." in news_mail.get_body(("plain",)).get_content()
    assert news_mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

    request = requests.submit(session, kind="access", email="asker@example.com", message="My data?", ip="127.0.0.1", now=clock())
    [confirm_request] = box.sent_by_worker("privacy_request_confirm")
    requests.confirm(session, token=confirm_request.get_content().split("?token=")[1].split()[0], now=clock())
    assert box.sent_by_worker("privacy_request_received")[0]["To"] == "asker@example.com"
    requests.reply(session, admin=accounts.make_admin(session, email="ops@example.com")[0], request_id=request.id, body="Here.", now=clock())
    assert "Here." in box.sent_by_worker("privacy_request_reply")[0].get_content()

    admin = accounts.make_admin(session, email="ops@example.com", now=clock())[0]
    clock.advance(minutes=1)
    publish_material(session, clock, admin)
    assert policies.send_material_notices(session, now=clock()) == 2
    notices = box.sent_by_worker("policy_notice")
    assert sorted(message["To"] for message in notices) == ["grace@example.org", "ops@example.com"]

    deletion.request_deletion(session, user=user, store=store, password=PASSWORD, now=clock())
    assert box.sent_by_worker("deletion_scheduled")[0]["Subject"] == "Your ClearBG account will be deleted"
    with pytest.raises(DeletionPending) as pending:
        accounts.authenticate(session, email="grace@example.org", password=PASSWORD, ip="127.0.0.1", now=clock())
    deletion.cancel_deletion(session, token=pending.value.token, now=clock())
    assert box.sent_by_worker("deletion_cancelled")[0]["Subject"] == "Your ClearBG account will not be deleted"

    assert box.kinds == set(mail._renderers)  # every kind of mail there is


def test_a_mail_overtaken_by_events_is_dropped_unsent(session, smtp, clock):
    """Nothing to send for a reset of an unknown address, a new address that is taken, a verification
    already done, or news after the consent was withdrawn: the worker drops those rows."""
    user = new_user(session, clock)  # verified at once, before its verification mail went out
    new_user(session, clock, email="taken@example.com")
    accounts.request_password_reset(session, email="nobody@example.com", ip="127.0.0.1", now=clock())
    accounts.request_email_change(session, user=user, new_email="taken@example.com", password=PASSWORD, now=clock())
    privacy_choices.set_consent(session, user=user, purpose=consents.MARKETING_EMAIL, granted=True, source="privacy_center", now=clock())
    news.send(session, admin=accounts.make_admin(session, email="ops@example.com", now=clock())[0], subject="News", body="Body", now=clock())
    clock.advance(seconds=1)
    privacy_choices.set_consent(session, user=user, purpose=consents.MARKETING_EMAIL, granted=False, source="privacy_center", now=clock())
    assert sorted(row.kind for row in queued(session)) == ["email_change", "password_reset", "product_news", "verify_email", "verify_email"]
    assert mail.deliver_due(clock=clock) == (0, 0)
    assert queued(session) == [] and smtp.messages == []


@pytest.fixture
def smtp_down(db_url, monkeypatch) -> int:
    """The app's SMTP settings point at a loopback port where nothing listens (yet)."""
    port = free_port()
    monkeypatch.setenv("CLEARBG_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("CLEARBG_SMTP_PORT", str(port))
    get_settings.cache_clear()
    return port


def test_smtp_down_fails_no_request_and_the_mail_arrives_once_it_is_back(session, smtp_down, clock, caplog):
    clock.now = utcnow()  # the route queues at the real time
    new_user(session, clock)
    client = TestClient(build_api(), follow_redirects=False)
    response = client.post("/auth/forgot-password", data={"email": EMAIL}, headers=ORIGIN)
    assert flash_of(response)["kind"] == "info"  # the request only queued the mail
    clock.now = utcnow()
    for attempt, wait in enumerate((1, 5, 30, 120), start=1):
        with caplog.at_level(logging.WARNING, logger="clearbg_app.services.mail"):
            assert mail.deliver_due(clock=clock) == (0, 1)
        [row] = queued(session)
        assert (row.kind, row.attempts, row.last_error) == ("password_reset", attempt, "ConnectionRefusedError")
        assert as_utc(row.next_attempt_at) == clock() + timedelta(minutes=wait)
        assert mail.deliver_due(clock=clock) == (0, 0)  # not due yet
        clock.advance(minutes=wait)
    assert "ConnectionRefusedError" in caplog.text and EMAIL not in caplog.text
    with smtp_sink(port=smtp_down) as (sink, _):
        assert mail.deliver_due(clock=clock) == (1, 0)
    [message] = sink.messages
    assert message["To"] == EMAIL and "/reset-password?token=" in message.get_content()
    token = message.get_content().split("?token=")[1].split()[0]
    accounts.reset_password(session, token=token, new_password="a-brand-new-secret", now=clock())  # valid from its sending
    assert queued(session) == []


def test_mail_undeliverable_for_a_day_is_dropped_and_logged(session, smtp_down, clock, caplog):
    new_user(session, clock)
    accounts.request_password_reset(session, email=EMAIL, ip="127.0.0.1", now=clock())
    mail.deliver_due(clock=clock)
    clock.advance(hours=23, minutes=59)
    assert mail.deliver_due(clock=clock) == (0, 1) and len(queued(session)) == 1  # still kept
    clock.advance(minutes=5)
    with caplog.at_level(logging.ERROR, logger="clearbg_app.services.mail"):
        assert mail.deliver_due(clock=clock) == (0, 1)
    assert queued(session) == [] and "dropped after 3 attempts" in caplog.text


def request_statements(client, email: str) -> tuple[dict, list[str]]:
    """The flash a reset request answers with, and the SQL it ran (not the request-log writer's)."""
    statements: list[str] = []

    def record(_connection, _cursor, statement, *_):
        if threading.current_thread().name != "request-log-writer":
            statements.append(statement)

    event.listen(get_engine(), "before_cursor_execute", record)
    try:
        response = client.post("/auth/forgot-password", data={"email": email}, headers=ORIGIN)
    finally:
        event.remove(get_engine(), "before_cursor_execute", record)
    return flash_of(response), statements


def test_a_reset_request_does_the_same_work_whether_or_not_the_address_has_an_account(session, smtp, clock):
    new_user(session, clock)
    mail.deliver_due(clock=clock)
    client = TestClient(build_api(), follow_redirects=False)
    known_flash, known = request_statements(client, EMAIL)
    unknown_flash, unknown = request_statements(client, "nobody@example.com")
    assert known_flash == unknown_flash and known_flash["kind"] == "info"
    assert known == unknown and any(statement.startswith("INSERT INTO mail_outbox") for statement in known)
    assert not any("user_account" in statement for statement in known)  # nobody looked the address up
    assert smtp.messages == []  # and no SMTP on the request path
    assert [row.to_address for row in queued(session)] == [EMAIL, "nobody@example.com"]
    clock.now = utcnow()
    assert mail.deliver_due(clock=clock) == (1, 0)  # the worker decides: only the account gets a link
    assert [message["To"] for message in smtp.messages] == [EMAIL]


def test_the_mail_worker_sends_as_soon_as_the_queuing_transaction_commits(session, smtp, clock, pool):
    worker = queue_worker.start(pool=pool, threads=1)  # the in-process queue
    try:
        accounts.request_password_reset(session, email="nobody@example.com", ip="127.0.0.1")
        user = new_user(session, clock, verified=False)
        accounts.send_verification(session, user=user)
        session.rollback()  # a rolled-back mail is never sent
        accounts.request_password_reset(session, email=EMAIL, ip="127.0.0.1")
        deadline = time.monotonic() + 30
        while not smtp.messages and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        worker.stop()
    assert [message["Subject"] for message in smtp.messages] == ["Reset your ClearBG password"]


def test_two_workers_at_once_send_each_mail_once(session, smtp, clock):
    for number in range(8):
        new_user(session, clock, email=f"person{number}@example.com", verified=False)
    results = []
    workers = [threading.Thread(target=lambda: results.append(mail.deliver_due(clock=clock))) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert sum(sent for sent, _ in results) == 8 and sum(failed for _, failed in results) == 0
    assert sorted(message["To"] for message in smtp.messages) == sorted(f"person{n}@example.com" for n in range(8))
    assert queued(session) == []
