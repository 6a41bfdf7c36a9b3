"""Legal holds and minors' accounts on SQLite and PostgreSQL, with the clock moved: a hold stops the image
purge and the anonymization job (their run records say so) until it is lifted or ends; a minor's account
is locked at once and anonymized by the next run without the grace period, with no personal data in the
audit trail."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlmodel import select

from clearbg_app.models import AccountDeletion, ApiKey, AuditEvent, Batch, LegalHold, ProcessedImage, User
from clearbg_app.services import accounts, api_keys, deletion, exports, holds, personal_data
from clearbg_app.services.deletion_lock import AccountClosed, is_locked
from clearbg_app.services.errors import NotFound
from clearbg_app.services.job_runs import run_job
from clearbg_app.services.jobs import anonymize_accounts_job, purge_batches_job, purge_images_job
from tests.factories import alembic, upload
from tests.privacy_helpers import EMAIL, PASSWORD, new_user


def admin_user(session, clock) -> User:
    return accounts.make_admin(session, email="ops@example.com", now=clock())[0]


def test_a_hold_stops_image_purge_and_anonymization_until_it_is_lifted(session, store, clock, data_dir):
    admin, person = admin_user(session, clock), new_user(session, clock)
    bystander = new_user(session, clock, email="bystander@example.com", name="Bystander")
    kept, gone = upload(session, store, clock, person), upload(session, store, clock, bystander)
    holds.place_hold(session, admin=admin, user_id=person.id, reason="Court order 12/2027", until=clock() + timedelta(days=90), now=clock())
    deletion.request_deletion(session, user=person, store=store, password=PASSWORD, now=clock())

    clock.advance(days=8)  # images past their hour, the deletion past its grace period
    run = run_job("purge_images", purge_images_job, clock=clock)
    assert run.counts == {"images_deleted": 1, "images_held": 1}
    assert {row.id for row in session.exec(select(ProcessedImage)).all()} == {kept.id}
    assert store.exists(kept.original_key) and not store.exists(gone.original_key)
    run = run_job("anonymize_accounts", anonymize_accounts_job, clock=clock)
    assert run.counts["accounts_held"] == 1 and run.counts["accounts_anonymized"] == 0
    session.expire_all()
    assert session.get(User, person.id).email == EMAIL
    assert is_locked(session, user_id=person.id)  # still locked: the person cannot use the account meanwhile

    holds.lift_hold(session, admin=admin, user_id=person.id, now=clock())
    assert purge_images_job(clock=clock) == {"images_deleted": 1, "images_held": 0}
    counts = anonymize_accounts_job(clock=clock)
    assert counts["accounts_anonymized"] == 1 and counts["accounts_held"] == 0
    session.expire_all()
    assert session.get(User, person.id).email.endswith("@deleted.invalid")
    hold = session.exec(select(LegalHold)).one()
    assert hold.reason == "[erased]" and hold.lifted_at is not None
    actions = [e.action for e in session.exec(select(AuditEvent).order_by(AuditEvent.at)).all()]
    assert "legal_hold.placed" in actions and "legal_hold.lifted" in actions


def test_a_hold_ends_by_itself_at_its_date(session, store, clock):
    admin, person = admin_user(session, clock), new_user(session, clock)
    upload(session, store, clock, person)
    holds.place_hold(session, admin=admin, user_id=person.id, reason="Tax audit", until=clock() + timedelta(days=3), now=clock())
    clock.advance(days=2)
    assert purge_images_job(clock=clock) == {"images_deleted": 0, "images_held": 1}
    clock.advance(days=1, seconds=1)
    assert purge_images_job(clock=clock) == {"images_deleted": 1, "images_held": 0}


def test_a_hold_keeps_finished_batches_too(session, store, clock):
    from clearbg_app.models import BatchStatus

    admin, person = admin_user(session, clock), new_user(session, clock)
    batch = Batch(user_id=person.id, params={}, status=BatchStatus.DONE, created_at=clock(), expires_at=clock() + timedelta(hours=1))
    session.add(batch)
    session.commit()
    holds.place_hold(session, admin=admin, user_id=person.id, reason="Investigation", until=clock() + timedelta(days=3), now=clock())
    clock.advance(hours=2)
    assert purge_batches_job(clock=clock)["batches_deleted"] == 0
    holds.lift_hold(session, admin=admin, user_id=person.id, now=clock())
    assert purge_batches_job(clock=clock)["batches_deleted"] == 1


def test_bad_holds_are_refused_with_a_reason(session, store, clock):
    admin, person = admin_user(session, clock), new_user(session, clock)
    with pytest.raises(PermissionError):
        holds.place_hold(session, admin=person, user_id=person.id, reason="x", until=clock() + timedelta(days=1), now=clock())
    for reason, until, message in (
        ("", clock() + timedelta(days=1), "legal reason"),
        ("x" * 301, clock() + timedelta(days=1), "legal reason"),
        ("Order", clock() - timedelta(minutes=1), "in the future"),
        ("Order", None, "in the future"),
    ):
        with pytest.raises(holds.HoldError, match=message):
            holds.place_hold(session, admin=admin, user_id=person.id, reason=reason, until=until, now=clock())
    with pytest.raises(NotFound):
        holds.place_hold(session, admin=admin, user_id=admin.id.__class__(int=1), reason="Order", until=clock() + timedelta(days=1))
    with pytest.raises(holds.HoldError, match="not under a legal hold"):
        holds.lift_hold(session, admin=admin, user_id=person.id, now=clock())
    holds.place_hold(session, admin=admin, user_id=person.id, reason="Order", until=clock() + timedelta(days=1), now=clock())
    with pytest.raises(holds.HoldError, match="already under a legal hold"):
        holds.place_hold(session, admin=admin, user_id=person.id, reason="Order 2", until=clock() + timedelta(days=1), now=clock())
    assert len(session.exec(select(LegalHold)).all()) == 1


def test_a_hold_on_an_anonymized_account_is_refused(session, store, clock):
    admin, person = admin_user(session, clock), new_user(session, clock)
    deletion.request_deletion(session, user=person, store=store, password=PASSWORD, now=clock())
    clock.advance(days=8)
    assert anonymize_accounts_job(clock=clock)["accounts_anonymized"] == 1
    with pytest.raises(holds.HoldError, match="already been anonymized"):
        holds.place_hold(session, admin=admin, user_id=person.id, reason="Too late", until=clock() + timedelta(days=1), now=clock())
    assert session.exec(select(LegalHold)).all() == []


def test_a_minor_is_locked_at_once_and_anonymized_by_the_next_run(session, store, clock, data_dir):
    admin, minor = admin_user(session, clock), new_user(session, clock, email="kid@example.com", name="Kid Kiddo")
    token = accounts.start_session(session, user=minor, user_agent="Firefox/128", ip="198.51.100.7", now=clock())
    key, _ = api_keys.create_key(session, user=minor, label="mine", now=clock())
    upload(session, store, clock, minor)
    exports.request_export(session, user=minor, now=clock())
    deletion.delete_minor(session, admin=admin, user_id=minor.id, store=store, source="report", now=clock())

    assert is_locked(session, user_id=minor.id)
    assert accounts.resolve_session(session, token=token, now=clock()) is None
    session.expire_all()
    assert session.get(ApiKey, key.id).revoked_at is not None
    with pytest.raises(AccountClosed, match="closed"):
        accounts.authenticate(session, email="kid@example.com", password=PASSWORD, ip="198.51.100.7", now=clock())
    record = session.exec(select(AuditEvent).where(AuditEvent.action == "account.minor_flagged")).one()
    assert record.target_id == personal_data.pseudonym(minor.id) and record.after == {"source": "report"}
    assert "kid" not in json.dumps([record.target_id, record.before, record.after]).lower()

    clock.advance(minutes=1)  # no grace period: the next hourly run
    assert anonymize_accounts_job(clock=clock)["accounts_anonymized"] == 1
    session.expire_all()
    assert session.get(User, minor.id).email.endswith("@deleted.invalid")
    assert session.exec(select(ProcessedImage)).all() == []
    assert session.exec(select(AccountDeletion)).one().reason == "minor"


def test_a_minor_with_a_pending_deletion_loses_the_grace_period(session, store, clock):
    admin, minor = admin_user(session, clock), new_user(session, clock)
    deletion.request_deletion(session, user=minor, store=store, password=PASSWORD, now=clock())
    clock.advance(hours=1)
    deletion.delete_minor(session, admin=admin, user_id=minor.id, store=store, source="request", now=clock())
    assert len(session.exec(select(AccountDeletion)).all()) == 1
    clock.advance(minutes=1)
    assert anonymize_accounts_job(clock=clock)["accounts_anonymized"] == 1


def test_flagging_a_minor_is_refused_when_it_makes_no_sense(session, store, clock):
    admin, person = admin_user(session, clock), new_user(session, clock)
    with pytest.raises(PermissionError):
        deletion.delete_minor(session, admin=person, user_id=person.id, store=store, source="report", now=clock())
    with pytest.raises(deletion.DeletionError, match="request or a report"):
        deletion.delete_minor(session, admin=admin, user_id=person.id, store=store, source="rumour", now=clock())
    with pytest.raises(deletion.DeletionError, match="your own"):
        deletion.delete_minor(session, admin=admin, user_id=admin.id, store=store, source="report", now=clock())
    assert session.exec(select(AccountDeletion)).all() == []
    assert not is_locked(session, user_id=person.id)


def test_0016_marks_earlier_deletions_as_asked_for_by_their_holders(db_url, session, clock):
    from alembic import command
    from sqlalchemy import text

    person = new_user(session, clock)
    session.close()
    alembic(db_url, command.downgrade, "0012")
    raw = person.id.hex if db_url.startswith("sqlite") else str(person.id)
    session.execute(text("INSERT INTO account_deletion (id, user_id, requested_at, purge_after) VALUES (:id, :user, :at, :at)"),
                    {"id": raw, "user": raw, "at": clock()})  # fmt: skip
    session.commit()
    session.close()
    alembic(db_url, command.upgrade, "head")
    assert session.exec(select(AccountDeletion)).one().reason == "request"
