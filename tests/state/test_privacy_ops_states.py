"""The states of /admin/requests, /admin/news, the account page's hold and minor actions and /contact, on
SQLite and PostgreSQL: every admin handler refuses (and records) a forged event from a non-admin and changes
nothing; for an admin they run the services; the contact form's state keeps nothing that was typed."""

from __future__ import annotations

import inspect

import pytest
from sqlmodel import func, select

from clearbg_app.http.cookies import SESSION_COOKIE
from clearbg_app.models import AccountDeletion, AuditEvent, LegalHold, OutboxMail, PrivacyRequest, PrivacyRequestReply, User
from clearbg_app.services import accounts, consents, privacy_choices, requests
from clearbg_app.state.admin import AdminState, AuditLogState
from clearbg_app.state.admin_requests import AdminRequestsState
from clearbg_app.state.contact import ContactState
from clearbg_app.state.news import AdminNewsState
from tests.factories import state_for
from tests.mail import outbox, token_in
from tests.privacy_helpers import new_user

NEW_HANDLERS = {
    AdminRequestsState: ("load", "filter_by", "open_request", "set_status", "reply", "run_export", "run_deletion"),
    AdminNewsState: ("load", "preview", "edit", "send"),
    AdminState: ("load_user", "place_hold", "lift_hold", "flag_minor", "open_suspension", "cancel_suspension"),
}
FORGED = {"form": {"status": "done", "reason": "forged", "body": "# forged", "subject": "Forged", "until": "2030-01-01",
                   "source": "report", "confirm": "on"}, "status": "all", "request_id": ""}  # fmt: skip


def rows(session) -> tuple:
    session.expire_all()
    return tuple(session.exec(select(func.count()).select_from(model)).one()
                 for model in (PrivacyRequest, PrivacyRequestReply, LegalHold, AccountDeletion, OutboxMail))  # fmt: skip


def signed_in_cookie(session, user) -> str:
    return f"{SESSION_COOKIE}={accounts.start_session(session, user=user, user_agent='test', ip='10.0.0.1')}"


def confirmed_request(session, clock, data_dir, email) -> PrivacyRequest:
    requests.submit(session, kind="deletion", email=email, message="Please delete my account.", ip="10.0.0.9", now=clock())
    return requests.confirm(session, token=token_in(outbox(data_dir, clock)[-1], "/contact/confirm"))


@pytest.mark.parametrize("who", ["user", "anonymous"])
def test_forged_events_do_nothing_and_are_recorded(session, clock, data_dir, who):
    accounts.make_admin(session, email="ops@example.com", now=clock())
    victim = new_user(session, clock, email="victim@example.com")
    request = confirmed_request(session, clock, data_dir, "victim@example.com")
    cookie = signed_in_cookie(session, new_user(session, clock, email="mallory@example.com")) if who == "user" else ""
    before, refusals = rows(session), 0
    for state_cls, names in NEW_HANDLERS.items():
        for name in names:
            state = state_for(state_cls, cookie)
            if state_cls is AdminState:
                state.account = {"id": str(victim.id)}  # as if the page had been tampered with
            elif state_cls is AdminRequestsState:
                state.current = {"id": str(request.id)}
            else:
                state.news_subject, state.news_body = "Forged", "Forged"
            fn = state_cls.event_handlers[name].fn
            args = [FORGED.get(param, str(request.id)) for param in list(inspect.signature(fn).parameters)[1:]]
            fn(state, *args)
            assert state.forbidden, f"{state_cls.__name__}.{name} did not refuse"
            refusals += 1
    assert rows(session) == before
    assert session.exec(select(func.count()).where(AuditEvent.action == "admin.access_denied")).one() == refusals


def test_an_admin_works_the_queue_holds_and_news_through_the_states(session, clock, data_dir):
    admin = accounts.make_admin(session, email="ops@example.com", now=clock())[0]
    person = new_user(session, clock, email="asker@example.com")
    privacy_choices.set_consent(session, user=person, purpose=consents.MARKETING_EMAIL, granted=True, source="privacy_center", now=clock())
    request = confirmed_request(session, clock, data_dir, "asker@example.com")
    cookie = signed_in_cookie(session, admin)

    queue = state_for(AdminRequestsState, cookie)
    queue.load()
    assert [row.email for row in queue.rows] == ["asker@example.com"] and queue.rows[0].account == "asker@example.com"
    queue.open_request(str(request.id))
    assert queue.current["message"] == "Please delete my account." and queue.current["account_id"] == str(person.id)
    queue.set_status({"status": "refused", "reason": ""})
    assert "Say why" in queue.admin_notice and queue.current["status"] == "new"
    queue.reply({"body": "We are on it."})
    assert queue.admin_notice_kind == "info" and [r.body for r in queue.replies] == ["We are on it."]
    queue.run_deletion({})
    assert "Tick the box" in queue.admin_notice
    queue.run_deletion({"confirm": "on"})
    assert "will be anonymized on" in queue.admin_notice and queue.current["status"] == "in_progress"
    queue.open_request("not-an-id")
    assert queue.current == {} and queue.admin_notice_kind == "error"

    account = state_for(AdminState, cookie, path=f"/admin/users/{person.id}")
    account.load_user()
    assert account.account["email"] == "asker@example.com" and account.account["deletion"].startswith("scheduled for")
    account.place_hold({"reason": "Court order", "until": "not a date"})
    assert "like 2027-06-30" in account.admin_notice
    account.place_hold({"reason": "Court order", "until": "2099-06-30"})
    assert account.account["hold_until"].startswith("2099-06-30") and account.account["hold_reason"] == "Court order"
    account.lift_hold()
    assert account.account["hold_until"] == ""
    account.flag_minor({"source": "report"})
    assert "Tick the box" in account.admin_notice
    account.flag_minor({"source": "report", "confirm": "on"})
    assert account.account["deletion"].startswith("closed (minor)")

    composer = state_for(AdminNewsState, cookie)
    composer.load()
    composer.preview({"subject": "News", "body": "<b>bold</b>"})
    assert "Raw HTML" in composer.admin_notice and composer.preview_html == "" and composer.news_body == "<b>bold</b>"  # kept to fix
    composer.preview({"subject": "News", "body": "**Batch** mode"})
    assert "<strong>Batch</strong>" in composer.preview_html and composer.preview_recipients == 0  # the person's account is locked
    audit = state_for(AuditLogState, cookie)
    audit.load()
    assert {"legal_hold.placed", "legal_hold.lifted", "account.minor_flagged", "privacy_request.replied"} <= {e.action for e in audit.events}


def test_the_contact_state_sends_a_confirmation_and_keeps_nothing_typed(session, clock, data_dir):
    state = state_for(ContactState)
    state.load()
    import asyncio

    asyncio.run(ContactState.event_handlers["send"].fn(state, {"kind": "access", "email": "a@example.com", "message": "Hi"}))
    assert "Tick the box" in state.contact_notice and not state.contact_sent
    asyncio.run(ContactState.event_handlers["send"].fn(state, {"kind": "access", "email": "nope", "message": "Hi", "confirm": "on"}))
    assert "valid email" in state.contact_notice and not state.contact_sent
    asyncio.run(ContactState.event_handlers["send"].fn(state, {"kind": "access", "email": "a@example.com", "message": "Hi", "confirm": "on"}))
    assert state.contact_sent and "emailed you a link" in state.contact_notice
    assert "a@example.com" not in repr(state.dict()) and "Hi" not in str(state.dict().values())
    assert [m["To"] for m in outbox(data_dir, clock)] == ["a@example.com"]
    assert session.exec(select(User)).all() == []
