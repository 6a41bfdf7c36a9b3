"""Privacy requests by message on SQLite and PostgreSQL, with the clock moved: proof of address, the queue's
statuses and due dates, overdue ones on the dashboard, replies by email, export and deletion through the
self-service code, every step audited; floods, oversized and forged input refused. Also the operator's
identity in every service email and the production start-up check."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import select

from clearbg_app.models import AccountDeletion, AuditEvent, DataExport, PrivacyRequest, PrivacyRequestReply, RequestStatus, User
from clearbg_app.services import accounts, admin as admin_service, requests
from clearbg_app.services.errors import NotFound
from clearbg_app.services.jobs import anonymize_accounts_job, exports_job, purge_privacy_requests_job
from clearbg_app.settings import Settings
from tests.mail import outbox, token_in
from tests.privacy_helpers import EMAIL, new_user

OPERATOR = {
    "CLEARBG_OPERATOR_NAME": "Example Imaging GmbH",
    "CLEARBG_OPERATOR_ADDRESS": "Hauptstrasse 1, 10115 Berlin, Germany",
    "CLEARBG_OPERATOR_EMAIL": "hello@example.com",
    "CLEARBG_OPERATOR_PRIVACY_CONTACT": "privacy@example.com",
}


def admin_user(session, clock) -> User:
    return accounts.make_admin(session, email="ops@example.com", now=clock())[0]


def send_and_confirm(session, clock, data_dir, *, email=EMAIL, kind="access", message="Please send me my data.") -> PrivacyRequest:
    requests.submit(session, kind=kind, email=email, message=message, ip="198.51.100.20", now=clock())
    mail = [m for m in outbox(data_dir, clock) if m["Subject"] == "Confirm your request to ClearBG"][-1]
    return requests.confirm(session, token=token_in(mail, "/contact/confirm"), now=clock())


def test_a_request_reaches_the_queue_only_after_its_address_is_proven(session, clock, data_dir):
    admin = admin_user(session, clock)
    request = requests.submit(session, kind="deletion", email=" Someone@Example.COM ", message="Delete me, please.\nThanks", ip="198.51.100.20", now=clock())
    assert request.status == RequestStatus.UNCONFIRMED and request.email == "someone@example.com"
    assert requests.queue(session, admin=admin, status="all", now=clock()) == []
    [mail] = outbox(data_dir, clock)
    assert mail["To"] == "someone@example.com" and "within 24 hours" in mail.get_content()
    clock.advance(hours=2)
    confirmed = requests.confirm(session, token=token_in(mail, "/contact/confirm"), now=clock())
    assert confirmed.status == RequestStatus.NEW and confirmed.user_id is None
    assert confirmed.due_at.date() == (clock() + timedelta(days=30)).date()
    assert requests.confirm(session, token=token_in(mail, "/contact/confirm"), now=clock()).id == request.id  # clicked twice: harmless
    received = outbox(data_dir, clock)[-1]
    assert received["Subject"] == "We received your request" and f"{clock() + timedelta(days=30):%Y-%m-%d}" in received.get_content()
    [row] = requests.queue(session, admin=admin, now=clock())
    assert row.request.id == request.id and not row.overdue and row.account_email == ""
    assert session.exec(select(AuditEvent).where(AuditEvent.action == "privacy_request.confirmed")).one().after == {
        "kind": "deletion", "account_matched": False}


def test_forged_expired_and_unknown_confirmation_links_are_refused(session, clock, data_dir):
    admin = admin_user(session, clock)
    requests.submit(session, kind="other", email="a@example.com", message="Hi", ip="198.51.100.20", now=clock())
    token = token_in(outbox(data_dir, clock)[-1], "/contact/confirm")
    body, _, mac = token.partition(".")
    for bad in (f"{body}.{mac[:-2]}xx", "", "garbage", "a.b.c", body):
        with pytest.raises(requests.RequestError, match="not valid"):
            requests.confirm(session, token=bad, now=clock())
    clock.advance(hours=25)
    with pytest.raises(requests.RequestError, match="expired. Send the form again"):
        requests.confirm(session, token=token, now=clock())
    assert requests.queue(session, admin=admin, status="all", now=clock()) == []
    assert purge_privacy_requests_job(clock=clock) == {"requests_deleted": 1}  # unconfirmed after a day: gone
    assert session.exec(select(PrivacyRequest)).all() == []


@pytest.mark.parametrize(("kind", "email", "message", "says"), [
    ("sell_my_data", EMAIL, "Hi", "Choose what"),
    ("access", "not-an-address", "Hi", "valid email"),
    ("access", "x" * 300 + "@example.com", "Hi", "valid email"),
    ("access", EMAIL, "   ", "Write the message"),
    ("access", EMAIL, "x" * 5001, "keep it under 5000"),
    ("access", EMAIL, "nul \x00 byte", "control or invisible"),
    ("access", EMAIL, "bidi \u202e trick", "control or invisible"),
])  # fmt: skip
def test_bad_contact_input_is_refused_and_sends_nothing(session, clock, data_dir, kind, email, message, says):
    with pytest.raises(requests.RequestError, match=says):
        requests.submit(session, kind=kind, email=email, message=message, ip="198.51.100.20", now=clock())
    assert session.exec(select(PrivacyRequest)).all() == [] and outbox(data_dir, clock) == []


def test_floods_are_rate_limited_per_network_and_per_address(session, clock, data_dir, monkeypatch):
    for n in range(3):
        requests.submit(session, kind="other", email="target@example.com", message=f"Spam {n}", ip=f"198.51.{100 + n}.1", now=clock())
    with pytest.raises(requests.RequestError, match="for this email address"):
        requests.submit(session, kind="other", email="target@example.com", message="Spam", ip="192.0.2.1", now=clock())
    for n in range(2):  # the network already sent one of its five
        requests.submit(session, kind="other", email=f"p{n}@example.com", message="Spam", ip="198.51.100.99", now=clock())
    requests.submit(session, kind="other", email="p2@example.com", message="Spam", ip="198.51.100.98", now=clock())
    requests.submit(session, kind="other", email="p3@example.com", message="Spam", ip="198.51.100.97", now=clock())
    with pytest.raises(requests.RequestError, match="from your network"):
        requests.submit(session, kind="other", email="p4@example.com", message="Spam", ip="198.51.100.5", now=clock())
    assert len(session.exec(select(PrivacyRequest)).all()) == 7


def test_statuses_due_dates_and_overdue_on_the_dashboard(session, clock, data_dir):
    admin = admin_user(session, clock)
    first = send_and_confirm(session, clock, data_dir, email="first@example.com")
    clock.advance(days=10)
    second = send_and_confirm(session, clock, data_dir, email="second@example.com", kind="complaint", message="Bad.")
    requests.set_status(session, admin=admin, request_id=second.id, status="in_progress", now=clock())
    clock.advance(days=20, minutes=1)  # the first is 30 days and a minute old
    board = admin_service.dashboard(session, admin=admin, jobs={}, now=clock())
    assert (board.requests_open, board.requests_overdue) == (2, 1)
    rows = requests.queue(session, admin=admin, now=clock())
    assert [(row.request.id, row.overdue) for row in rows] == [(first.id, True), (second.id, False)]
    requests.set_status(session, admin=admin, request_id=first.id, status="waiting", now=clock())
    assert admin_service.dashboard(session, admin=admin, jobs={}, now=clock()).requests_overdue == 1  # waiting is still open
    with pytest.raises(requests.RequestError, match="Say why"):
        requests.set_status(session, admin=admin, request_id=first.id, status="refused", reason="  ", now=clock())
    requests.set_status(session, admin=admin, request_id=first.id, status="refused", reason="We hold no data about this address.", now=clock())
    assert admin_service.dashboard(session, admin=admin, jobs={}, now=clock()).requests_overdue == 0
    assert [row.request.id for row in requests.queue(session, admin=admin, status="refused", now=clock())] == [first.id]
    with pytest.raises(requests.RequestError, match="Choose in progress"):
        requests.set_status(session, admin=admin, request_id=first.id, status="unconfirmed", now=clock())
    with pytest.raises(NotFound):
        requests.set_status(session, admin=admin, request_id=admin.id, status="done", now=clock())
    statuses = [e.after["status"] for e in session.exec(select(AuditEvent).where(AuditEvent.action == "privacy_request.status").order_by(AuditEvent.at)).all()]
    assert statuses == ["in_progress", "waiting", "refused"]
    with pytest.raises(PermissionError):
        requests.queue(session, admin=session.get(User, new_user(session, clock, email="nosy@example.com").id), now=clock())

    clock.advance(days=1096)  # closed requests go after their retention period, with their replies
    requests.reply(session, admin=admin, request_id=second.id, body="Still looking.", now=clock())
    assert purge_privacy_requests_job(clock=clock) == {"requests_deleted": 1}
    assert [r.id for r in session.exec(select(PrivacyRequest)).all()] == [second.id]


def test_a_reply_is_mailed_to_the_person_with_the_refusal_reason(session, clock, data_dir):
    admin = admin_user(session, clock)
    request = send_and_confirm(session, clock, data_dir, email="asker@example.com")
    requests.set_status(session, admin=admin, request_id=request.id, status="refused", reason="The request is manifestly unfounded.", now=clock())
    requests.reply(session, admin=admin, request_id=request.id, body="We looked into it.", now=clock())
    mail = outbox(data_dir, clock)[-1]
    assert mail["To"] == "asker@example.com" and str(request.id)[:8] in mail["Subject"]
    assert "We looked into it." in mail.get_content() and "manifestly unfounded" in mail.get_content()
    assert [r.body for r in requests.replies(session, admin=admin, request_id=request.id)] == ["We looked into it."]
    with pytest.raises(requests.RequestError, match="Write the reply"):
        requests.reply(session, admin=admin, request_id=request.id, body="", now=clock())
    assert len(session.exec(select(PrivacyRequestReply)).all()) == 1
    assert session.exec(select(AuditEvent).where(AuditEvent.action == "privacy_request.replied")).one().after == {"characters": 18}


def test_export_and_deletion_run_the_self_service_code_for_the_matched_account(session, store, clock, data_dir):
    admin = admin_user(session, clock)
    person = new_user(session, clock)
    request = send_and_confirm(session, clock, data_dir, email=EMAIL.upper())
    assert request.user_id == person.id
    assert requests.queue(session, admin=admin, now=clock())[0].account_email == EMAIL
    export = requests.run_export(session, admin=admin, request_id=request.id, now=clock())
    assert session.get(PrivacyRequest, request.id).status == RequestStatus.IN_PROGRESS
    with pytest.raises(requests.RequestError, match="already being prepared"):
        requests.run_export(session, admin=admin, request_id=request.id, now=clock())
    assert exports_job(clock=clock)["exports_built"] == 1
    assert session.get(DataExport, export.id, populate_existing=True).status == "ready" and outbox(data_dir, clock)[-1]["To"] == EMAIL

    requests.run_deletion(session, admin=admin, request_id=request.id, store=store, now=clock())
    pending = session.exec(select(AccountDeletion)).one()
    assert pending.reason == "request" and outbox(data_dir, clock)[-1]["Subject"] == "Your ClearBG account will be deleted"
    actions = {e.action for e in session.exec(select(AuditEvent)).all()}
    assert {"privacy_request.export_started", "privacy_request.deletion_started", "account.deletion_requested"} <= actions
    clock.advance(days=8)
    assert anonymize_accounts_job(clock=clock)["accounts_anonymized"] == 1
    session.expire_all()
    erased = session.get(PrivacyRequest, request.id)
    assert (erased.email, erased.message, erased.user_id) == ("", "[erased]", None) and erased.kind == "access"

    stranger = send_and_confirm(session, clock, data_dir, email="stranger@example.com")
    with pytest.raises(requests.RequestError, match="No account has this request's address"):
        requests.run_deletion(session, admin=admin, request_id=stranger.id, store=store, now=clock())


def test_every_service_email_names_the_operator(session, clock, data_dir, monkeypatch):
    for name, value in OPERATOR.items():
        monkeypatch.setenv(name, value)
    from clearbg_app.settings import get_settings

    get_settings.cache_clear()
    requests.submit(session, kind="other", email="a@example.com", message="Hi", ip="198.51.100.20", now=clock())
    new_user(session, clock, email="b@example.com", verified=False)  # the address confirmation
    mails = outbox(data_dir, clock)
    assert len(mails) == 2
    for mail in mails:
        text = mail.get_content()
        assert "Example Imaging GmbH, Hauptstrasse 1, 10115 Berlin, Germany" in text and "privacy@example.com" in text


def test_production_refuses_to_start_without_the_operator(monkeypatch):
    secure = {"env": "production", "secret_key": "s" * 40, "public_url": "https://clearbg.example.com"}
    problems = Settings(**secure, _env_file=None).problems()
    assert len(problems) == 1 and all(f"CLEARBG_OPERATOR_{n}" in problems[0] for n in ("NAME", "ADDRESS", "EMAIL", "PRIVACY_CONTACT"))
    assert Settings(**secure, operator_name="X", operator_address="Y", operator_email="z@example.com",
                    operator_privacy_contact="p@example.com", _env_file=None).problems() == []  # fmt: skip
    assert Settings(**{**secure, "env": "development"}, _env_file=None).problems() == []
    assert Settings(_env_file=None).operator()["name"] == "(not configured)"


def test_the_confirmation_route_answers_with_a_message_never_an_error_page(session, clock, data_dir):
    from starlette.testclient import TestClient

    from clearbg_app.api import build_api
    from tests.factories import flash_of

    client = TestClient(build_api(), follow_redirects=False)
    for bad in ("", "x" * 5000, "%00", "a.b", "'><script>"):
        response = client.get(f"/contact/confirm?token={bad}")
        assert response.headers["location"].startswith("/contact") and "not valid" in flash_of(response)["msg"]
    requests.submit(session, kind="other", email="a@example.com", message="Hi", ip="198.51.100.20")
    token = token_in(outbox(data_dir)[-1], "/contact/confirm")
    answer = flash_of(client.get(f"/contact/confirm?token={token}"))
    assert answer["kind"] == "info" and "confirmed" in answer["msg"]
    assert session.exec(select(PrivacyRequest)).one().status == RequestStatus.NEW
