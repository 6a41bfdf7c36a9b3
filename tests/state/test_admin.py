"""The admin area on SQLite and PostgreSQL: the role check in every handler (user, anonymous, forged
event), dashboard figures, user lookup, credit corrections, suspension, subprocessors, the audit log."""

from __future__ import annotations

import functools
import inspect
import uuid
from datetime import date, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlmodel import func, select
from starlette.testclient import TestClient

from clearbg_app.api import build_api
from clearbg_app.api.deps import ApiDeps
from clearbg_app.clock import as_utc
from clearbg_app.http.cookies import SESSION_COOKIE
from clearbg_app.http.flash import read_flash
from clearbg_app.inference import InferenceConfig, InferencePool
from clearbg_app.models import (
    ApiUsage,
    AuditEvent,
    EntryKind,
    ImageStatus,
    JobRun,
    JobStatus,
    LedgerEntry,
    PolicyVersion,
    ProcessedImage,
    Subprocessor,
    User,
)  # fmt: skip
from clearbg_app.models.stats import IMAGES_API, IMAGES_WEB
from clearbg_app.services import accounts, admin as admin_service, api_keys, credits, stats, subprocessors
from clearbg_app.services.accounts import AccountSuspended
from clearbg_app.services.admin import AdminError
from clearbg_app.services.subprocessors import SubprocessorError, SubprocessorFields
from clearbg_app.state.admin import AdminState, AuditLogState
from clearbg_app.state.admin_policies import AdminPoliciesState, AdminSubprocessorsState
from tests.factories import PASSWORD, sign_up, state_for, verified_user

ADMIN_STATES = (AdminState, AuditLogState, AdminPoliciesState, AdminSubprocessorsState)


def make_admin(session, clock) -> User:
    return accounts.make_admin(session, email="ops@example.com", now=clock())[0]


def audit_actions(session) -> list[str]:
    return [event.action for event in session.exec(select(AuditEvent).order_by(AuditEvent.at)).all()]


# The role check in every handler ---------------------------------------------------------------------------


def admin_handlers():
    """Every event handler the admin states define (their own, not the inherited session ones)."""
    for state_cls in ADMIN_STATES:
        for name, handler in state_cls.event_handlers.items():
            if handler.fn.__module__ in ("clearbg_app.state.admin", "clearbg_app.state.admin_policies") and not name.startswith("set_"):
                yield state_cls, name, handler.fn


def forged_arguments(fn, target_id: str) -> list:
    """Plausible arguments for a handler, as a forged websocket event would carry them."""
    values = {
        "form": {"amount": "1000", "reason": "forged", "query": "", "label": "9", "body": "# forged", "summary": "x",
                 "name": "Forged Ltd", "purpose": "x", "data_categories": "x", "location": "x"},
        "kind": "privacy", "page": 1, "user_id": target_id, "version_id": target_id, "entry_id": target_id,
    }  # fmt: skip
    return [values[name] for name in list(inspect.signature(fn).parameters)[1:]]


def snapshot(session) -> tuple:
    session.expire_all()
    return (
        session.exec(select(func.count()).select_from(PolicyVersion)).one(),
        session.exec(select(func.count()).select_from(Subprocessor)).one(),
        session.exec(select(func.count()).select_from(LedgerEntry)).one(),
        session.exec(select(func.count()).where(User.suspended_at.is_not(None))).one(),
    )


def test_every_admin_handler_has_a_server_side_role_check():
    for state_cls, name, fn in admin_handlers():
        assert "self._admin(" in inspect.getsource(fn) or "self._as_admin(" in inspect.getsource(fn) or "_account_action" in inspect.getsource(fn) or \
            "_publish_or_discard" in inspect.getsource(fn), f"{state_cls.__name__}.{name} does not check the role"  # fmt: skip


@pytest.mark.parametrize("who", ["user", "anonymous"])
def test_forged_admin_events_do_nothing_and_are_recorded(session, clock, who):
    make_admin(session, clock)
    victim = verified_user(session, clock, email="victim@example.com")
    cookie = ""
    if who == "user":
        attacker = verified_user(session, clock, email="mallory@example.com")
        cookie = f"{SESSION_COOKIE}={accounts.start_session(session, user=attacker, user_agent='test', ip='10.0.0.1')}"
    handlers = list(admin_handlers())
    assert len(handlers) >= 20
    before = snapshot(session)
    for state_cls, name, fn in handlers:
        state = state_for(state_cls, cookie)
        if state_cls is AdminState:
            state.account = {"id": str(victim.id)}  # as if the page had been tampered with
        result = fn(state, *forged_arguments(fn, str(victim.id)))
        assert result is None, f"{name} returned {result}"
        assert state.forbidden, f"{state_cls.__name__}.{name} did not refuse"
    assert snapshot(session) == before
    refusals = session.exec(select(AuditEvent).where(AuditEvent.action == "admin.access_denied")).all()
    assert len(refusals) == len(handlers)
    if who == "user":
        assert {event.actor_id for event in refusals} == {attacker.id} and {e.actor_kind for e in refusals} == {"user"}
    else:
        assert {event.actor_id for event in refusals} == {None} and {e.actor_kind for e in refusals} == {"anonymous"}


def test_the_same_events_work_for_an_admin(session, clock):
    admin = make_admin(session, clock)
    admin.email_verified_at = clock()
    session.add(admin)
    session.commit()
    user = verified_user(session, clock)
    cookie = f"{SESSION_COOKIE}={accounts.start_session(session, user=admin, user_agent='test', ip='10.0.0.1')}"
    state = state_for(AdminState, cookie)
    state.load()
    assert not state.forbidden and state.stats["users_total"] == "2"
    state.search({"query": "ADA@"})
    assert [row.email for row in state.users] == ["ada@example.com"]
    state.open_account(str(user.id))
    state.adjust_credits({"amount": "5", "reason": "Goodwill"})
    assert state.account["balance"] == "5" and state.grant_notice_kind == "info" and "Granted 5 credits" in state.grant_notice
    state.adjust_credits({"amount": "-9", "reason": "Too much"})
    assert "Insufficient credits" in state.grant_notice and state.account["balance"] == "5"
    state.adjust_credits({"amount": "abc", "reason": "x"})
    assert "not a number" in state.grant_notice and state.grant_notice_kind == "error" and state.admin_notice == ""
    state.suspend({"reason": "Abuse report"})
    assert state.account["suspended"] != ""
    audit_state = state_for(AuditLogState, cookie)
    audit_state.load()
    assert [row.action for row in audit_state.events][:2] == ["user.suspended", "credits.adjusted"]
    assert audit_state.events[0].who == "ops@example.com"
    for number in range(30):
        admin_service.record_refusal(session, user=None, where=f"probe {number}", now=clock())
    audit_state.load()
    assert (audit_state.total, audit_state.audit_pages, len(audit_state.events)) == (32, 2, 25)
    audit_state.go_to(2)
    assert audit_state.audit_page == 2 and len(audit_state.events) == 7
    assert audit_state.events[-1].action == "credits.adjusted" and audit_state.events[-1].before == '{"balance": "0"}'
    audit_state.go_to(99)
    assert audit_state.audit_page == 2


# Dashboard -----------------------------------------------------------------------------------------------------


def processed_image(session, clock, user=None) -> ProcessedImage:
    image = ProcessedImage(user_id=user.id if user else None, original_key=f"k{uuid.uuid4().hex}", original_content_type="image/png",
                           original_bytes=10, width=4, height=4, expires_at=clock() + timedelta(hours=1), created_at=clock())  # fmt: skip
    session.add(image)
    session.commit()
    return image


def finish(session, clock, image) -> None:
    """As `images.process_image` ends: the image done and the day's counter up."""
    image.status, image.processed_at = ImageStatus.DONE, clock()
    session.add(image)
    stats.count(session, name=IMAGES_WEB, at=clock())
    session.commit()


def test_dashboard_counts_survive_the_purge_of_images(session, clock, monkeypatch):
    from clearbg_app.services import removal

    # as in a process that has not loaded its pool (an earlier test in this process may have)
    monkeypatch.setattr(removal, "default_pool", functools.lru_cache(removal.default_pool.__wrapped__))
    admin = make_admin(session, clock)
    user = sign_up(session, clock)
    clock.advance(days=10)
    sign_up(session, clock, email="new@example.com", name="New")
    for _ in range(3):
        finish(session, clock, processed_image(session, clock))
    processed_image(session, clock)  # still processing: not counted
    session.add(ApiUsage(at=clock(), user_id=user.id, latency_ms=5, status=200))
    stats.count(session, name=IMAGES_API, at=clock())  # as `removal.settle` counts a delivered result
    session.add(ApiUsage(at=clock(), user_id=user.id, latency_ms=5, status=400))
    credits.grant(session, user_id=user.id, units=1000, kind=EntryKind.PURCHASE, reason="Pack", reference="o1", now=clock())
    credits.grant(session, user_id=user.id, units=500, kind=EntryKind.ADMIN_ADJUSTMENT, reason="x", reference="a1", now=clock())
    session.commit()
    for image in session.exec(select(ProcessedImage)).all():  # the purge deletes the rows an hour later
        session.delete(image)
    session.commit()
    clock.advance(days=1)
    finish(session, clock, processed_image(session, clock))
    board = admin_service.dashboard(session, admin=admin, jobs={}, now=clock())
    assert (board.users_total, board.users_new_7d) == (3, 1)
    assert (board.images_today, board.images_7d, board.api_images_7d) == (1, 5, 1)
    assert (board.credits_sold_7d, board.credits_sold_30d) == (1000, 1000)
    assert board.queue is None  # no pool loaded in this process, and the dashboard does not start one
    with pytest.raises(PermissionError):
        admin_service.dashboard(session, admin=user, jobs={}, now=clock())


def test_job_health_highlights_failures_killed_runs_and_jobs_that_never_ran(session, clock):
    admin = make_admin(session, clock)
    session.add(JobRun(job="purge_images", started_at=clock() - timedelta(minutes=3), finished_at=clock(), status=JobStatus.SUCCEEDED,
                       counts={"images_deleted": 2}, instance="web-2"))  # fmt: skip
    session.add(JobRun(job="credits", started_at=clock() - timedelta(minutes=5), finished_at=clock(), status=JobStatus.FAILED, error="ValueError: boom"))
    session.add(JobRun(job="policy_notices", started_at=clock() - timedelta(hours=3), status=JobStatus.RUNNING))
    session.commit()
    jobs = {"purge_images": 300, "credits": 3600, "policy_notices": 900, "purge_request_logs": 3600}
    health = {job.name: job for job in admin_service.dashboard(session, admin=admin, jobs=jobs, now=clock()).jobs}
    assert (health["purge_images"].status, health["purge_images"].alarming) == ("succeeded", False)
    assert health["purge_images"].counts == {"images_deleted": 2} and health["purge_images"].instance == "web-2"
    assert (health["credits"].status, health["credits"].error, health["credits"].alarming) == ("failed", "ValueError: boom", True)
    assert (health["policy_notices"].status, health["policy_notices"].alarming) == ("killed", True)
    assert (health["purge_request_logs"].status, health["purge_request_logs"].alarming) == ("never", True)
    clock.advance(hours=2)
    assert {j.name: j.overdue for j in admin_service.job_health(session, jobs=jobs, now=clock())}["purge_images"] is True


def test_the_queue_figures_come_from_the_loaded_pool(monkeypatch):
    from clearbg_app.services import removal

    pool = InferencePool(InferenceConfig(workers=2, queue_size=3, warm_up=False))
    try:
        removal.default_pool.cache_clear()
        assert admin_service.queue_stats() is None
        monkeypatch.setattr(removal, "InferencePool", lambda config: pool)
        assert removal.default_pool() is pool
        stats = admin_service.queue_stats()
        assert (stats.in_flight, stats.workers, stats.capacity, stats.waiting) == (0, 2, 5, 0)
    finally:
        removal.default_pool.cache_clear()
        pool.close()


# Users: lookup, credits, suspension ----------------------------------------------------------------------------


def test_find_users_by_email_part_or_id_and_odd_queries(session, clock):
    admin = make_admin(session, clock)
    ada = sign_up(session, clock)
    sign_up(session, clock, email="bob_b@example.com", name="Bob")
    find = lambda q: [u.email for u in admin_service.find_users(session, admin=admin, query=q)]  # noqa: E731
    assert find("ADA@EX") == ["ada@example.com"]
    assert find(str(ada.id)) == ["ada@example.com"]
    assert find(str(uuid.uuid4())) == []
    assert find("_") == ["bob_b@example.com"]  # LIKE wildcards are literal
    assert find("%") == [] and find("'; drop table user_account; --") == []
    assert len(find("  ")) == 3


def test_credit_adjustments_go_through_the_ledger_with_a_reason_and_are_audited(session, clock):
    admin = make_admin(session, clock)
    user = sign_up(session, clock)
    entry = admin_service.adjust_credits(session, admin=admin, user_id=user.id, amount="2.5", reason="Support ticket 12", now=clock())
    assert entry.amount_units == 250 and "Support ticket 12" in entry.reason
    admin_service.adjust_credits(session, admin=admin, user_id=user.id, amount="-1", reason="Correction", now=clock())
    assert credits.balance(session, user_id=user.id) == credits.ledger_sum(session, user_id=user.id) == 150
    for amount, reason, error in (("0", "x", "non-zero"), ("5", "  ", "reason"), ("0.001", "x", "steps"), ("-100", "x", "Insufficient")):
        with pytest.raises(Exception, match=error):
            admin_service.adjust_credits(session, admin=admin, user_id=user.id, amount=amount, reason=reason, now=clock())
        session.rollback()
    with pytest.raises(PermissionError):
        admin_service.adjust_credits(session, admin=user, user_id=user.id, amount="5", reason="self-service", now=clock())
    events = session.exec(select(AuditEvent).where(AuditEvent.action == "credits.adjusted").order_by(AuditEvent.at)).all()
    assert [(e.before, e.after) for e in events] == [
        ({"balance": "0"}, {"balance": "2.5", "amount": "2.5", "reason": "Support ticket 12"}),
        ({"balance": "2.5"}, {"balance": "1.5", "amount": "-1", "reason": "Correction"}),
    ]
    assert all(e.actor_id == admin.id and e.target_id == str(user.id) for e in events)


def test_a_suspended_account_cannot_sign_in_use_sessions_or_keys(session, clock, db_url):
    admin = make_admin(session, clock)
    user = verified_user(session, clock)
    token = accounts.start_session(session, user=user, user_agent="t", ip="10.0.0.1", now=clock())
    _, secret = api_keys.create_key(session, user=user, label="shop", now=clock())
    with pytest.raises(AdminError, match="reason"):
        admin_service.suspend(session, admin=admin, user_id=user.id, reason=" ", now=clock())
    with pytest.raises(AdminError, match="your own"):
        admin_service.suspend(session, admin=admin, user_id=admin.id, reason="oops", now=clock())
    admin_service.suspend(session, admin=admin, user_id=user.id, reason="Chargeback fraud", now=clock())
    with pytest.raises(AdminError, match="already"):
        admin_service.suspend(session, admin=admin, user_id=user.id, reason="again", now=clock())

    assert accounts.resolve_session(session, token=token, now=clock()) is None
    with pytest.raises(AccountSuspended, match="This account is suspended"):
        accounts.authenticate(session, email="ada@example.com", password=PASSWORD, ip="10.0.0.1", now=clock())
    with pytest.raises(accounts.SignInFailed):  # a wrong password still says nothing about the account
        accounts.authenticate(session, email="ada@example.com", password="wrong-password-x", ip="10.0.0.1", now=clock())
    with pytest.raises(AccountSuspended):
        api_keys.authenticate_key(session, secret=secret, now=clock())
    pool = InferencePool(InferenceConfig(workers=1, queue_size=1, warm_up=False))
    try:
        client = TestClient(build_api(ApiDeps(pool=pool)))
        answer = client.get("/api/v1.0/account", headers={"X-Api-Key": secret})
    finally:
        pool.close()
    assert answer.status_code == 403 and answer.json()["errors"][0]["code"] == "account_suspended"
    assert "suspended" in answer.json()["errors"][0]["detail"]
    pages = TestClient(build_api(), follow_redirects=False)
    signed = pages.post("/auth/login", data={"email": "ada@example.com", "password": PASSWORD}, headers={"origin": "http://testserver"})
    assert signed.status_code == 303 and SESSION_COOKIE not in pages.cookies
    flash = read_flash({k: v[0] for k, v in parse_qs(urlsplit(signed.headers["location"]).query).items()})
    assert flash["msg"].startswith("This account is suspended")

    admin_service.unsuspend(session, admin=admin, user_id=user.id, now=clock())
    assert api_keys.authenticate_key(session, secret=secret, now=clock())[0].id == user.id
    assert accounts.resolve_session(session, token=token, now=clock()) is None  # ended sessions stay ended
    assert accounts.authenticate(session, email="ada@example.com", password=PASSWORD, ip="10.0.0.1", now=clock()).id == user.id
    events = session.exec(select(AuditEvent).where(AuditEvent.target_id == str(user.id)).order_by(AuditEvent.at)).all()
    assert [(e.action, e.before, e.after) for e in events] == [
        ("user.suspended", {"suspended": False}, {"suspended": True, "reason": "Chargeback fraud"}),
        ("user.unsuspended", {"suspended": True}, {"suspended": False}),
    ]
    assert "ada@example.com" not in str([(e.before, e.after) for e in events])


# Subprocessors ------------------------------------------------------------------------------------------------


def fields(**overrides) -> SubprocessorFields:
    values = {"name": "Hetzner Online GmbH", "purpose": "Hosting", "data_categories": "All", "location": "Germany",
              "transfer_safeguard": "None needed (EU)", "dpa_url": "https://www.hetzner.com/legal/terms-and-conditions"}  # fmt: skip
    return SubprocessorFields(**{**values, **overrides})


def test_the_seeded_subprocessors_mark_the_operators_choices_as_placeholders(session, clock):
    rows = {row.name: row for row in subprocessors.active(session, today=clock().date())}
    assert {"Stripe", "Google"} <= set(rows)
    placeholders = [row for row in rows.values() if row.placeholder]
    assert len(placeholders) == 2 and all("operator" in row.name for row in placeholders)
    assert rows["Stripe"].dpa_url.startswith("https://")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"dpa_url": "javascript:alert(1)"}, "http:// or https://"),
        ({"dpa_url": "data:text/html,x"}, "http:// or https://"),
        ({"dpa_url": "ftp://example.com/dpa"}, "http:// or https://"),
        ({"dpa_url": "https://"}, "http:// or https://"),
        ({"name": "  "}, "a name"),
        ({"location": ""}, "the location"),
        ({"name": "x" * 121}, "under 120"),
    ],
)
def test_bad_subprocessor_entries_are_refused(session, clock, overrides, message):
    admin = make_admin(session, clock)
    count = len(subprocessors.all_entries(session))
    with pytest.raises(SubprocessorError, match=message):
        subprocessors.add(session, admin=admin, fields=fields(**overrides), now=clock())
    assert len(subprocessors.all_entries(session)) == count


def test_subprocessor_changes_are_audited_and_dated(session, clock):
    admin = make_admin(session, clock)
    hosting = next(row for row in subprocessors.all_entries(session) if row.placeholder and "Hosting" in row.name)
    subprocessors.edit(session, admin=admin, entry_id=hosting.id, fields=fields(active_since=date(2026, 11, 28)), now=clock())
    assert not session.get(Subprocessor, hosting.id).placeholder
    added = subprocessors.add(session, admin=admin, fields=fields(name="Bunny CDN", purpose="CDN"), now=clock())
    clock.advance(days=1)
    subprocessors.retire(session, admin=admin, entry_id=added.id, now=clock())
    with pytest.raises(SubprocessorError, match="already retired"):
        subprocessors.retire(session, admin=admin, entry_id=added.id, now=clock())
    assert "Bunny CDN" not in [row.name for row in subprocessors.active(session, today=clock().date())]
    assert [row.name for row in subprocessors.retired(session, today=clock().date())] == ["Bunny CDN"]
    assert as_utc(subprocessors.last_change(session)) == clock()
    assert audit_actions(session) == ["subprocessor.edited", "subprocessor.added", "subprocessor.retired"]
    edited = session.exec(select(AuditEvent).where(AuditEvent.action == "subprocessor.edited")).one()
    assert edited.before["placeholder"] is True and edited.after["name"] == "Hetzner Online GmbH"
    with pytest.raises(PermissionError):
        subprocessors.add(session, admin=sign_up(session, clock), fields=fields(), now=clock())


def test_two_admins_on_one_draft_the_second_save_is_refused_in_the_editor(session, clock):
    first_admin = make_admin(session, clock)
    second_admin = accounts.make_admin(session, email="ops2@example.com", now=clock())[0]
    cookie = lambda user: f"{SESSION_COOKIE}={accounts.start_session(session, user=user, user_agent='t', ip='10.0.0.1')}"  # noqa: E731
    alice, bob = state_for(AdminPoliciesState, cookie(first_admin)), state_for(AdminPoliciesState, cookie(second_admin))
    alice.load()
    alice.new_draft("terms")
    assert alice.edit_label == "2" and alice.edit_body.startswith("# Terms of service")
    alice.save({"label": "2", "body": alice.edit_body + "\n8. New clause.\n", "summary": "Clause 8", "effective": ""})
    assert alice.edit_revision == 1 and "Draft 2 saved" in alice.admin_notice
    bob.load()
    bob.open_version(alice.edit_id)
    alice.save({"label": "2", "body": alice.edit_body + "\n9. Alice's clause.\n", "summary": "Clauses 8-9", "effective": ""})
    bob.save({"label": "2", "body": bob.edit_body + "\n9. Bob's clause.\n", "summary": "Bob", "effective": "2020-01-01"})
    assert "Someone else changed this draft" in bob.admin_notice
    assert "Alice's clause" in policies_body(session, alice.edit_id) and "Bob's clause" not in policies_body(session, alice.edit_id)
    bob.open_version(alice.edit_id)  # reloaded, Bob can save on top of Alice's revision
    bob.save({"label": "2", "body": bob.edit_body + "\n10. Bob's clause.\n", "summary": "Clauses 8-10", "effective": "not a date"})
    assert "as a date" in bob.admin_notice
    bob.save({"label": "2", "body": bob.edit_body + "\n10. Bob's clause.\n", "summary": "Clauses 8-10", "effective": ""})
    assert bob.edit_revision == 3
    alice.publish()
    assert "Someone else changed this draft" in alice.admin_notice
    bob.publish()
    assert bob.edit_status == "published" and "Published" in bob.admin_notice
    bob.save({"label": "2", "body": "changed after publishing", "summary": "", "effective": ""})
    assert "cannot change" in bob.admin_notice


def policies_body(session, version_id: str) -> str:
    session.expire_all()
    return session.get(PolicyVersion, uuid.UUID(version_id)).body
