"""The privacy center's services on SQLite and PostgreSQL: the registry, consents, retention with and
without the history consent, exports, deletion with its grace period, anonymization, the jobs."""

from __future__ import annotations

import csv
import io
import json
import re
import uuid
import zipfile
from datetime import timedelta

import pytest
from sqlmodel import SQLModel, select

from clearbg_app.clock import as_utc
from clearbg_app.models import (
    AccountDeletion,
    AnalyticsEvent,
    ApiKey,
    AuditEvent,
    AuthSession,
    ConsentEvent,
    DataExport,
    ExportStatus,
    LedgerEntry,
    Order,
    OutboxMail,
    ProcessedImage,
    RequestLog,
    User,
)
from clearbg_app.services import (
    accounts,
    analytics,
    api_keys,
    audit,
    consents,
    deletion,
    exports,
    images,
    news,
    personal_data,
    privacy_choices,
)
from clearbg_app.services.deletion_lock import DeletionPending
from clearbg_app.services.errors import NotFound, ServiceError
from clearbg_app.services.job_runs import run_job
from clearbg_app.services.jobs import anonymize_accounts_job, exports_job, truncate_log_ips_job
from tests.factories import upload
from tests.mail import outbox
from tests.privacy_helpers import EMAIL, IP, IP_PREFIX, NAME, PASSWORD, USER_AGENT, dump_blobs, dump_database, every_feature, new_user

pytestmark = pytest.mark.both_blob_backends  # the local directory, and S3 on moto

# The registry --------------------------------------------------------------------------------------------

PERSONAL_LOOKING = re.compile(
    r"(^|_)(e?mail|name|ip|ip_prefix|user_agent|ua|avatar|address|phone|birth|country|city|location|subject|label|filename"
    r"|url|receipt|visitor|token|password|secret|key)(_|$)"
)
NOT_PERSONAL = {
    # Identifiers of records, not of people, and configuration tables.
    ("plan", "name"), ("plan", "code"), ("policy_version", "label"), ("api_key", "prefix"),
    ("processed_image", "original_key"), ("processed_image", "result_key"), ("processed_image", "full_result_key"),
    ("data_export", "blob_key"), ("job_run", "job"), ("stripe_event", "type"),
    ("alembic_version", "version_num"), ("analytics_event", "name"), ("user_account", "email_verified_at"),
    ("request_log", "api_key_id"), ("api_usage", "api_key_id"), ("batch", "api_key_id"),
    ("daily_count", "name"), ("subprocessor", "name"), ("subprocessor", "location"), ("subprocessor", "dpa_url"),
}  # fmt: skip


def test_every_personal_looking_column_is_in_the_registry():
    covered = set()
    for entry in personal_data.entries():
        covered |= {(entry.table, column) for column in (*entry.personal, *entry.withheld, *entry.blobs)}
    missing = [
        f"{table.name}.{column.name}"
        for table in SQLModel.metadata.sorted_tables
        for column in table.columns
        if PERSONAL_LOOKING.search(column.name) and (table.name, column.name) not in covered | NOT_PERSONAL
    ]
    assert missing == [], (
        f"add these columns to an entry of services/personal_data.py REGISTRY (or, if they hold nothing about "
        f"a person, to NOT_PERSONAL here): {missing}"
    )


def test_every_table_tied_to_a_user_is_in_the_registry():
    registered = {entry.table for entry in personal_data.entries()}
    tied = {
        table.name
        for table in SQLModel.metadata.sorted_tables
        for key in table.foreign_keys
        if key.column.table.name == "user_account"
    }
    assert tied - registered == set()


def test_registry_columns_exist_and_categories_show_the_configured_periods(data_dir, monkeypatch):
    for entry in personal_data.entries():
        columns = {column.name for column in entry.model.__table__.columns}
        owner = {entry.owner} if entry.selects is None else set()
        assert set(entry.personal) | set(entry.withheld) | set(entry.blobs) | owner <= columns, entry.table
    monkeypatch.setenv("CLEARBG_HISTORY_RETENTION_DAYS", "45")
    from clearbg_app.settings import get_settings

    get_settings.cache_clear()
    shown = {item.category: item.retention for item in personal_data.categories()}
    assert "45 days" in shown["Uploaded images and results"] and "60 minutes" in shown["Uploaded images and results"]


# Consents ------------------------------------------------------------------------------------------------


def test_consents_are_events_and_the_newest_one_counts(session, clock):
    user = new_user(session, clock)
    assert consents.current(session, user_id=user.id) == dict.fromkeys(consents.PURPOSE_KEYS, False)
    assert privacy_choices.set_consent(session, user=user, purpose=consents.MARKETING_EMAIL, granted=True, source="privacy_center", now=clock())
    assert not privacy_choices.set_consent(session, user=user, purpose=consents.MARKETING_EMAIL, granted=True, source="privacy_center", now=clock())
    clock.advance(minutes=1)
    privacy_choices.set_consent(session, user=user, purpose=consents.MARKETING_EMAIL, granted=False, source="privacy_center", now=clock())
    assert not consents.has_consent(session, user_id=user.id, purpose=consents.MARKETING_EMAIL)
    events = consents.history(session, user_id=user.id)
    assert [(e.purpose, e.granted, e.source) for e in events] == [
        (consents.MARKETING_EMAIL, False, "privacy_center"),
        (consents.MARKETING_EMAIL, True, "privacy_center"),
    ]
    assert all(e.policy_version == user.accepted_policy_version for e in events)


def test_unknown_purpose_is_refused(session, clock):
    user = new_user(session, clock)
    with pytest.raises(consents.ConsentError, match="no consent called"):
        privacy_choices.set_consent(session, user=user, purpose="sell_my_data", granted=True, source="privacy_center", now=clock())
    assert session.exec(select(ConsentEvent)).all() == []


def test_product_news_goes_only_to_those_who_consented(session, clock, data_dir):
    yes = new_user(session, clock, email="yes@example.com")
    new_user(session, clock, email="no@example.com")
    privacy_choices.set_consent(session, user=yes, purpose=consents.MARKETING_EMAIL, granted=True, source="privacy_center", now=clock())
    before = len(outbox(data_dir, clock))
    admin = accounts.make_admin(session, email="ops@example.com", now=clock())[0]
    assert news.send(session, admin=admin, subject="New: batch mode", body="Try it.", now=clock()) == 1
    sent = outbox(data_dir, clock)[before:]
    assert [m["To"] for m in sent] == ["yes@example.com"] and "/privacy-center" in sent[0].get_body(("plain",)).get_content()


def test_analytics_only_with_consent_and_withdrawal_deletes_them(session, clock):
    user = new_user(session, clock)
    assert not analytics.record_event(session, user_id=user.id, name="image_processed", now=clock())
    privacy_choices.set_consent(session, user=user, purpose=consents.PRODUCT_ANALYTICS, granted=True, source="privacy_center", now=clock())
    assert analytics.record_event(session, user_id=user.id, name="image_processed", now=clock())
    session.commit()
    assert [e.name for e in session.exec(select(AnalyticsEvent)).all()] == ["image_processed"]
    privacy_choices.set_consent(session, user=user, purpose=consents.PRODUCT_ANALYTICS, granted=False, source="privacy_center", now=clock())
    assert not analytics.record_event(session, user_id=user.id, name="image_processed", now=clock())
    assert session.exec(select(AnalyticsEvent)).all() == []


# Retention with and without the history consent -----------------------------------------------------------


def alive(session):
    return {row.id for row in session.exec(select(ProcessedImage)).all()}


def test_images_are_kept_30_days_with_history_consent_and_1_hour_without(session, store, clock):
    keeper, other = new_user(session, clock), new_user(session, clock, email="other@example.com")
    privacy_choices.set_consent(session, user=keeper, purpose=consents.PROCESSING_HISTORY, granted=True, source="history", now=clock())
    kept, anonymous, others = upload(session, store, clock, keeper), upload(session, store, clock), upload(session, store, clock, other)
    clock.advance(minutes=61)
    assert images.purge_expired(session, store=store, clock=clock) == 2
    assert alive(session) == {kept.id}
    assert not store.exists(anonymous.original_key) and not store.exists(others.original_key)
    clock.advance(days=29, hours=22)
    assert images.purge_expired(session, store=store, clock=clock) == 0
    assert [i.id for i in images.user_images(session, user_id=keeper.id, now=clock())] == [kept.id]
    clock.advance(hours=2)
    assert images.purge_expired(session, store=store, clock=clock) == 1
    assert list(store.keys()) == []


def test_withdrawing_history_consent_schedules_deletion_of_kept_images(session, store, clock):
    user = new_user(session, clock)
    privacy_choices.set_consent(session, user=user, purpose=consents.PROCESSING_HISTORY, granted=True, source="history", now=clock())
    old = upload(session, store, clock, user)
    clock.advance(days=3)
    recent = upload(session, store, clock, user)
    clock.advance(minutes=50)
    privacy_choices.set_consent(session, user=user, purpose=consents.PROCESSING_HISTORY, granted=False, source="privacy_center", now=clock())
    withdrawn_at = clock()
    assert {as_utc(session.get(ProcessedImage, i.id).expires_at) for i in (old, recent)} == {withdrawn_at + timedelta(hours=1)}
    clock.advance(minutes=59)
    assert images.purge_expired(session, store=store, clock=clock) == 0
    clock.advance(minutes=2)
    assert images.purge_expired(session, store=store, clock=clock) == 2


def test_the_history_consent_applies_to_what_is_uploaded_after_it(session, store, clock):
    """Earlier images keep their hour unless the person adds them to the history explicitly."""
    user = new_user(session, clock)
    before, other = upload(session, store, clock, user), upload(session, store, clock, user)
    with pytest.raises(ServiceError, match="Turn on the processing history first"):
        images.keep_in_history(session, user_id=user.id, image_id=before.id, now=clock())
    clock.advance(minutes=10)
    privacy_choices.set_consent(session, user=user, purpose=consents.PROCESSING_HISTORY, granted=True, source="history", now=clock())
    after = upload(session, store, clock, user)
    expiry = {i.id: as_utc(session.get(ProcessedImage, i.id).expires_at) for i in (before, other, after)}
    assert expiry[before.id] == expiry[other.id] == as_utc(before.created_at) + timedelta(hours=1)
    assert expiry[after.id] == as_utc(after.created_at) + timedelta(days=30)
    images.keep_in_history(session, user_id=user.id, image_id=before.id, now=clock())
    assert as_utc(session.get(ProcessedImage, before.id).expires_at) == as_utc(before.created_at) + timedelta(days=30)
    clock.advance(minutes=51)
    assert images.purge_expired(session, store=store, clock=clock) == 1  # only `other` goes at its hour
    assert {i.id for i in images.user_images(session, user_id=user.id, now=clock())} == {before.id, after.id}
    stranger = new_user(session, clock, email="stranger@example.com")
    privacy_choices.set_consent(session, user=stranger, purpose=consents.PROCESSING_HISTORY, granted=True, source="history", now=clock())
    with pytest.raises(NotFound):
        images.keep_in_history(session, user_id=stranger.id, image_id=after.id, now=clock())


def test_delete_one_and_all_history_images(session, store, clock):
    user, other = new_user(session, clock), new_user(session, clock, email="other@example.com")
    first, second, third = upload(session, store, clock, user), upload(session, store, clock, user), upload(session, store, clock, other)
    assert images.delete_user_images(session, store=store, user_id=user.id, image_id=first.id) == 1
    with pytest.raises(NotFound):
        images.delete_user_images(session, store=store, user_id=user.id, image_id=third.id)  # not theirs
    assert images.delete_user_images(session, store=store, user_id=user.id) == 1
    assert alive(session) == {third.id} and not store.exists(second.original_key)


# Export --------------------------------------------------------------------------------------------------


def read_export(store, export: DataExport) -> tuple[dict, list[str]]:
    archive = zipfile.ZipFile(io.BytesIO(store.get(export.blob_key)))
    return json.loads(archive.read(exports.DOCUMENT)), archive.namelist()


def export_archive(store, export: DataExport) -> zipfile.ZipFile:
    return zipfile.ZipFile(io.BytesIO(store.get(export.blob_key)))


def test_export_holds_every_registry_field_of_a_person_who_used_everything(session, store, clock, data_dir):
    person = every_feature(session, store, clock)
    export = exports.latest(session, user_id=person.user.id)
    assert export.status == ExportStatus.READY
    document, names = read_export(store, export)
    for entry in personal_data.entries():
        expected = session.exec(select(entry.model).where(entry.where(person.user))).all()
        if entry.model is OutboxMail:  # the verification mail was waiting; the export-ready one came after
            expected = [row for row in expected if row.kind != "export_ready"]
        if entry.table in exports.IN_CSV:  # the request logs: counted in the JSON, in full as CSV
            csv_rows = list(csv.DictReader(io.StringIO(export_archive(store, export).read(exports.IN_CSV[entry.table]).decode())))
            assert document["tables"][entry.table]["count"] == len(csv_rows) == len(expected) > 0
            assert all(set(row) == set(entry.exported_columns) for row in csv_rows)
            continue
        rows = document["tables"][entry.table]["rows"]
        if entry.model is not AccountDeletion:  # an account being deleted cannot ask for an export
            assert len(rows) == len(expected) > 0, entry.table
        for row in rows:
            assert set(row) == set(entry.exported_columns), entry.table
            assert not set(row) & set(entry.withheld)
    account = document["tables"]["user_account"]["rows"][0]
    assert account["email"] == EMAIL and account["display_name"] == NAME
    assert document["tables"]["oauth_identity"]["rows"][0]["subject"] == "google-sub-grace"
    assert document["tables"]["auth_session"]["rows"][0]["ip_prefix"] == IP_PREFIX
    assert len(document["tables"]["consent_event"]["rows"]) == 4
    text = json.dumps(document)
    assert person.api_secret not in text and "$argon2" not in text
    image = session.get(ProcessedImage, person.image_ids[0])
    label = f"{as_utc(image.created_at):%Y-%m-%d %H%M} {NAME} portrait"
    assert {f"images/{label}.jpeg", f"images/{label} (background removed).png"} <= set(names)  # original name and date
    assert any(name.startswith("batches/") and name.endswith(f"/{NAME} batch.jpg") for name in names)  # batch images too
    readme = export_archive(store, export).read(exports.README).decode()
    assert "What is in this file" in readme and "request-logs.csv" in readme and "requests between" in readme
    assert "<script" not in readme
    mail = outbox(data_dir, clock)[-1]
    assert mail["To"] == EMAIL and "/privacy-center" in mail.get_content()


def test_one_export_at_a_time_and_downloads_only_by_the_owner_until_expiry(session, store, clock):
    user, other = new_user(session, clock), new_user(session, clock, email="other@example.com")
    export = exports.request_export(session, user=user, now=clock())
    export_id = export.id
    with pytest.raises(exports.ExportError, match="already being prepared"):
        exports.request_export(session, user=user, now=clock())
    with pytest.raises(NotFound):  # not built yet
        exports.download(session, store=store, user_id=user.id, export_id=export.id, now=clock())
    assert exports_job(clock=clock) == {"exports_built": 1, "exports_purged": 0}
    session.expire_all()
    _, data = exports.download(session, store=store, user_id=user.id, export_id=export.id, now=clock())
    assert zipfile.ZipFile(io.BytesIO(data)).namelist() == [exports.README, exports.DOCUMENT, exports.REQUEST_LOG_CSV]
    with pytest.raises(NotFound):
        exports.download(session, store=store, user_id=other.id, export_id=export.id, now=clock())
    with pytest.raises(NotFound):
        exports.download(session, store=store, user_id=user.id, export_id=uuid.uuid4(), now=clock())
    exports.request_export(session, user=user, now=clock())  # a ready one does not block a new request
    clock.advance(days=7, seconds=1)
    with pytest.raises(NotFound):
        exports.download(session, store=store, user_id=user.id, export_id=export.id, now=clock())
    counts = exports_job(clock=clock)
    assert counts["exports_purged"] == 1
    session.expire_all()
    assert session.get(DataExport, export_id) is None
    blob_keys = {row.blob_key for row in session.exec(select(DataExport)).all()}
    assert set(store.keys()) == blob_keys


def test_a_build_that_dies_leaves_no_orphan_and_is_retried(session, store, clock, monkeypatch):
    user = new_user(session, clock)
    export = exports.request_export(session, user=user, now=clock())
    real_commit = type(session).commit
    calls = {"n": 0}

    def failing_commit(self):
        if self.get(DataExport, export.id) is not None and self.get(DataExport, export.id).blob_key and calls["n"] == 0:
            calls["n"] += 1
            raise RuntimeError("killed while recording the ZIP")
        return real_commit(self)

    monkeypatch.setattr(type(session), "commit", failing_commit)
    assert exports.build_pending(session, store=store, clock=clock) == 0
    monkeypatch.undo()
    session.expire_all()
    assert list(store.keys()) == []  # the ZIP written before the failure was deleted again
    assert session.get(DataExport, export.id).status == ExportStatus.FAILED
    exports.request_export(session, user=user, now=clock())  # a failed one can be asked for again
    assert exports.build_pending(session, store=store, clock=clock) == 1


def test_an_abandoned_build_is_taken_over_after_a_while(session, store, clock):
    user = new_user(session, clock)
    export = exports.request_export(session, user=user, now=clock())
    assert exports._claim(session, export.id, clock())  # a runner took it, then died
    assert exports.build_pending(session, store=store, clock=clock) == 0
    clock.advance(minutes=16)
    assert exports.build_pending(session, store=store, clock=clock) == 1


# Deletion ------------------------------------------------------------------------------------------------


def test_deletion_needs_the_password_and_locks_the_account_at_once(session, store, clock, data_dir):
    person = every_feature(session, store, clock)
    with pytest.raises(deletion.DeletionError, match="password is not correct"):
        deletion.request_deletion(session, user=person.user, store=store, password="wrong-password-here", now=clock())
    assert accounts.resolve_session(session, token=person.session_token, now=clock()) is not None
    deletion.request_deletion(session, user=person.user, store=store, password=PASSWORD, now=clock())
    assert accounts.resolve_session(session, token=person.session_token, now=clock()) is None
    assert api_keys.authenticate_key(session, secret=person.api_secret, now=clock()) is None
    assert session.exec(select(DataExport)).all() == []
    with pytest.raises(exports.ExportError):
        exports.request_export(session, user=person.user, now=clock())
    with pytest.raises(deletion.DeletionError, match="already scheduled"):
        deletion.request_deletion(session, user=person.user, store=store, password=PASSWORD, now=clock())
    assert outbox(data_dir, clock)[-1]["Subject"] == "Your ClearBG account will be deleted"
    with pytest.raises(DeletionPending):
        accounts.authenticate(session, email=EMAIL, password=PASSWORD, ip=IP, now=clock())
    with pytest.raises(accounts.SignInFailed):  # a wrong password learns nothing about the deletion
        accounts.authenticate(session, email=EMAIL, password="not-the-password", ip=IP, now=clock())
    with pytest.raises(DeletionPending):
        accounts.sign_in_with_identity(
            session, identity=accounts.ExternalIdentity("google", "google-sub-grace", EMAIL, True, NAME),
            adult_confirmed=False, policy_accepted=False, now=clock(),
        )  # fmt: skip


def test_google_only_accounts_confirm_with_a_fresh_google_sign_in(session, store, clock):
    user = accounts.sign_in_with_identity(
        session, identity=accounts.ExternalIdentity("google", "g-1", "g@example.com", True, "Gee"),
        adult_confirmed=True, policy_accepted=True, now=clock(),
    )  # fmt: skip
    with pytest.raises(deletion.DeletionError, match="signing in with Google again"):
        deletion.request_deletion(session, user=user, store=store, password="", now=clock())
    assert deletion.request_deletion(session, user=user, store=store, reauthenticated=True, now=clock())


def test_cancelling_within_the_grace_period_restores_the_account(session, store, clock, data_dir):
    person = every_feature(session, store, clock)
    deletion.request_deletion(session, user=person.user, store=store, password=PASSWORD, now=clock())
    clock.advance(days=6)
    with pytest.raises(DeletionPending) as pending:
        accounts.authenticate(session, email=EMAIL, password=PASSWORD, ip=IP, now=clock())
    with pytest.raises(deletion.DeletionError):
        deletion.cancel_deletion(session, token=pending.value.token + "x", now=clock())
    user = deletion.cancel_deletion(session, token=pending.value.token, now=clock())
    assert accounts.authenticate(session, email=EMAIL, password=PASSWORD, ip=IP, now=clock()).id == user.id
    token = accounts.start_session(session, user=user, user_agent="", ip=IP, now=clock())
    assert accounts.resolve_session(session, token=token, now=clock()).user.email == EMAIL
    assert api_keys.authenticate_key(session, secret=person.api_secret, now=clock()) is None  # keys stay revoked
    with pytest.raises(deletion.DeletionError, match="no pending deletion"):
        deletion.cancel_deletion(session, token=pending.value.token, now=clock())
    clock.advance(days=30)
    assert anonymize_accounts_job(clock=clock)["accounts_anonymized"] == 0
    assert session.get(User, user.id).email == EMAIL
    assert outbox(data_dir, clock)[-1]["Subject"] == "Your ClearBG account will not be deleted"


def test_after_grace_and_the_job_nothing_about_the_person_is_left(session, store, clock, data_dir):
    other = new_user(session, clock, email="bystander@example.com", name="Bystander")
    other_image = upload(session, store, clock, other)
    person = every_feature(session, store, clock)
    user_id = person.user.id
    audit.record(session, action="user.email_changed", actor=None, target_type="user", target_id=user_id,
                 before={"email": "old-" + EMAIL}, after={"email": EMAIL}, now=clock())  # fmt: skip
    session.commit()
    orders_before = session.exec(select(Order).where(Order.user_id == user_id)).all()
    deletion.request_deletion(session, user=person.user, store=store, password=PASSWORD, now=clock())
    subjects = [m["Subject"] for m in outbox(data_dir, clock)]  # the confirmation was overtaken (already confirmed)
    assert subjects.count("Your ClearBG account will be deleted") == 1 and len(subjects) == 3  # and the contact request's receipt and reply
    clock.advance(days=6, hours=23)
    assert anonymize_accounts_job(clock=clock)["accounts_anonymized"] == 0
    clock.advance(hours=2)
    counts = anonymize_accounts_job(clock=clock)
    assert counts["accounts_anonymized"] == 1 and counts["blobs_deleted"] == 3  # the image and its result, the batch upload

    session.expire_all()
    dump = dump_database(session)
    for needle in (EMAIL, NAME, IP, IP_PREFIX, "203.0.113", USER_AGENT, "google-sub-grace", "Brewster"):  # not "Grace": the policy text speaks of a grace period
        assert needle.lower() not in dump.lower(), needle
    assert b"Brewster" not in dump_blobs(store)
    assert counts["outbox_files_deleted"] == 3  # the deletion notice, the contact request's receipt and reply
    assert not [mail for mail in outbox(data_dir) if EMAIL in mail.as_string() or "Brewster" in mail.as_string()]
    assert set(store.keys()) == set(session.get(ProcessedImage, other_image.id).blob_keys())
    user = session.get(User, user_id)
    alias = personal_data.pseudonym(user_id)
    assert user.email == f"{alias}@deleted.invalid" and user.password_hash is None and user.display_name == "Deleted account"
    orders = session.exec(select(Order).where(Order.user_id == user_id)).all()
    assert [o.id for o in orders] == [o.id for o in orders_before] and orders[0].receipt_url is None
    assert session.exec(select(LedgerEntry).where(LedgerEntry.user_id == user_id)).all()
    assert session.exec(select(ConsentEvent)).all() and all(e.user_id is None for e in session.exec(select(ConsentEvent)))
    for model in (AuthSession, ApiKey, ProcessedImage, DataExport):
        assert not session.exec(select(model).where(model.user_id == user_id)).all(), model
    assert not session.exec(select(RequestLog).where(RequestLog.user_id == user_id)).all()
    record = session.exec(select(AuditEvent).where(AuditEvent.action == "account.anonymized")).one()
    assert record.target_id == alias and record.actor_id is None
    assert session.get(User, other.id).email == "bystander@example.com"
    with pytest.raises(deletion.DeletionError, match="already been deleted"):
        deletion.request_deletion(session, user=user, store=store, reauthenticated=True, now=clock())
    assert anonymize_accounts_job(clock=clock)["accounts_anonymized"] == 0  # idempotent


def test_sqlite_keeps_no_trace_of_an_anonymized_account_in_its_file_or_wal(db_url, session, store, clock, data_dir):
    if not db_url.startswith("sqlite"):
        pytest.skip("SQLite's own files")
    person = every_feature(session, store, clock)
    deletion.request_deletion(session, user=person.user, store=store, password=PASSWORD, now=clock())
    clock.advance(days=8)
    session.close()
    assert anonymize_accounts_job(clock=clock)["accounts_anonymized"] == 1
    files = {path.name: path.read_bytes() for path in data_dir.glob("clearbg.db*")}
    for needle in (EMAIL, NAME, "Brewster", USER_AGENT, "GraceBrowser", IP, person.api_secret, person.session_token):
        for name, raw in files.items():
            assert needle.encode() not in raw, (needle, name)
    assert files["clearbg.db-wal"] == b""  # truncated: no old page versions left in it


def test_anonymization_killed_mid_run_and_rerun_leaves_no_orphan(session, store, clock, monkeypatch):
    person = every_feature(session, store, clock)
    deletion.request_deletion(session, user=person.user, store=store, password=PASSWORD, now=clock())
    clock.advance(days=8)

    def killed(*args, **kwargs):
        raise RuntimeError("killed mid-run")

    monkeypatch.setattr(deletion.audit, "record", killed)  # after the blobs, before the rows commit
    run = run_job("anonymize_accounts", anonymize_accounts_job, clock=clock)
    assert run.status == "failed" and "killed mid-run" in run.error
    assert list(store.keys()) == []  # blobs went first
    session.expire_all()
    assert session.get(User, person.user.id).email == EMAIL  # no row changed
    monkeypatch.undo()
    run = run_job("anonymize_accounts", anonymize_accounts_job, clock=clock)
    assert run.status == "succeeded" and run.counts["accounts_anonymized"] == 1
    session.expire_all()
    assert not session.exec(select(ProcessedImage)).all() and not session.exec(select(DataExport)).all()
    assert EMAIL not in dump_database(session)
    assert session.exec(select(AccountDeletion)).one().completed_at is not None


# Log retention -------------------------------------------------------------------------------------------


def test_request_log_ips_go_after_7_days_and_logs_after_90(session, clock):
    from clearbg_app.services.jobs import purge_request_logs_job

    session.add(RequestLog(at=clock(), method="GET", path="/", status=200, latency_ms=1, user_agent=USER_AGENT, ip_prefix=IP_PREFIX))
    session.commit()
    clock.advance(days=6)
    assert truncate_log_ips_job(clock=clock) == {"ips_removed": 0}
    clock.advance(days=1, seconds=1)
    assert truncate_log_ips_job(clock=clock) == {"ips_removed": 1}
    session.expire_all()
    assert session.exec(select(RequestLog)).one().ip_prefix == ""
    clock.advance(days=83)
    assert purge_request_logs_job(clock=clock) == {"logs_deleted": 1}


# Correction ----------------------------------------------------------------------------------------------


def test_correction_of_name_and_email_and_an_address_in_use(session, clock, data_dir):
    user = new_user(session, clock)
    new_user(session, clock, email="taken@example.com", name="Taken")
    accounts.update_display_name(session, user=user, display_name="  Grace H. ")
    assert session.get(User, user.id).display_name == "Grace H."
    with pytest.raises(accounts.AccountError):
        accounts.update_display_name(session, user=user, display_name="\u200b")
    before = len(outbox(data_dir, clock))
    accounts.request_email_change(session, user=user, new_email="taken@example.com", password=PASSWORD, now=clock())
    assert len(outbox(data_dir, clock)) == before  # nothing sent, nothing revealed, nothing changed
    assert session.get(User, user.id).email == EMAIL
    with pytest.raises(accounts.AccountError, match="password is not correct"):
        accounts.request_email_change(session, user=user, new_email="new@example.com", password="wrong-password", now=clock())
