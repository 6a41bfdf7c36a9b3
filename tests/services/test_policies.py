"""Policy versions on SQLite and PostgreSQL: drafts, the revision check, publishing and immutability,
effective dates, the version in effect at sign-up, notices of material changes, and safe Markdown."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import select

from clearbg_app.clock import as_utc
from clearbg_app.models import AuditEvent, PolicyAcknowledgement, PolicyNoticeEmail, PolicyVersion
from clearbg_app.services import accounts, deletion, mail, policies
from clearbg_app.services.errors import NotFound
from clearbg_app.services.jobs import policy_notices_job, scheduled_jobs
from clearbg_app.services.policies import PolicyError, StaleDraft
from clearbg_app.settings import PROJECT_ROOT
from tests.factories import PASSWORD, POLICY_BODY, draft, publish_material, sign_up
from tests.mail import outbox

IN_FORCE = "1.2"  # the privacy policy's version in force as shipped (migration 0017), after the founding "1" and 1.1 (0012)


def admin_user(session, clock):
    return accounts.make_admin(session, email="ops@example.com", now=clock())[0]


def edit(session, clock, admin, version, revision, **changes):
    fields = {"label": version.label, "body": version.body, "summary": version.summary,
              "effective_at": version.effective_at, "material": version.material, **changes}  # fmt: skip
    return policies.update_draft(session, admin=admin, version_id=version.id, revision=revision, now=clock(), **fields)


def actions(session) -> list[str]:
    return [event.action for event in session.exec(select(AuditEvent).order_by(AuditEvent.at)).all()]


def test_the_shipped_versions_hold_the_repository_documents(session, clock):
    privacy = policies.current_version(session, kind="privacy", now=clock())
    terms = policies.current_version(session, kind="terms", now=clock())
    assert (privacy.label, privacy.is_published, privacy.material, terms.label) == (IN_FORCE, True, False, "1.1")
    assert privacy.body == (PROJECT_ROOT / "docs" / "privacy-policy-1.2.md").read_text()
    assert terms.body == (PROJECT_ROOT / "docs" / "terms-1.1.md").read_text()
    assert "/privacy-center" in privacy.body and "Chrome 156" in privacy.body and "overwritten" in privacy.body
    assert "legal hold" in privacy.body and "/contact" in privacy.body and "minor" in privacy.body
    founding = policies.published_version(session, kind="privacy", label="1")
    assert founding.body == (PROJECT_ROOT / "docs" / "privacy-policy.md").read_text()
    assert terms.body.startswith("# Terms of service")
    assert policies.current_label(session, kind="privacy", now=clock()) == IN_FORCE


def test_drafts_are_not_in_effect_and_not_public(session, clock):
    admin = admin_user(session, clock)
    version = draft(session, clock, admin)
    assert policies.current_label(session, kind="privacy", now=clock() + timedelta(days=400)) == IN_FORCE
    with pytest.raises(NotFound):
        policies.published_version(session, kind="privacy", label="2")
    assert [v.label for v in policies.published_versions(session, kind="privacy")] == [IN_FORCE, "1.1", "1"]
    assert [v.label for v in policies.all_versions(session, kind="privacy")] == ["2", IN_FORCE, "1.1", "1"]
    assert version.revision == 1 and not version.is_published


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"body": "   \n"}, "The document is empty"),
        ({"label": ""}, "label of 1 to 32"),
        ({"label": "../x"}, "label of 1 to 32"),
        ({"label": "1"}, "already a privacy policy version labelled 1"),
        ({"summary": "x" * 501}, "summary of changes"),
    ],
)
def test_bad_drafts_are_refused(session, clock, overrides, message):
    admin = admin_user(session, clock)
    with pytest.raises(PolicyError, match=message):
        draft(session, clock, admin, **overrides)
    assert session.exec(select(PolicyVersion).where(PolicyVersion.status == "draft")).all() == []


def test_only_admins_edit_policies(session, clock):
    user = sign_up(session, clock)
    with pytest.raises(PermissionError):
        draft(session, clock, user)


def test_a_stale_revision_is_refused_and_the_first_save_survives(session, clock):
    admin = admin_user(session, clock)
    version = draft(session, clock, admin)
    first = edit(session, clock, admin, version, revision=1, body=POLICY_BODY + "\nFirst editor.\n")
    assert first.revision == 2
    with pytest.raises(StaleDraft, match="(?i)someone else changed this draft") as refused:
        edit(session, clock, admin, version, revision=1, body=POLICY_BODY + "\nSecond editor.\n")
    assert "Someone else changed this draft" in str(refused.value)
    assert policies.get_version(session, version_id=version.id).body.endswith("First editor.\n")
    with pytest.raises(StaleDraft):
        policies.publish(session, admin=admin, version_id=version.id, revision=1, now=clock())


def test_an_edit_to_an_empty_body_is_refused(session, clock):
    admin = admin_user(session, clock)
    version = draft(session, clock, admin)
    with pytest.raises(PolicyError, match="empty"):
        edit(session, clock, admin, version, revision=1, body="")
    assert policies.get_version(session, version_id=version.id).body == POLICY_BODY


def test_publishing_freezes_the_version(session, clock):
    admin = admin_user(session, clock)
    version = draft(session, clock, admin, effective_at=clock() + timedelta(days=30))
    published = policies.publish(session, admin=admin, version_id=version.id, revision=1, now=clock())
    assert published.is_published and as_utc(published.effective_at) == clock() + timedelta(days=30)
    with pytest.raises(PolicyError, match="published versions cannot change"):
        edit(session, clock, admin, published, revision=published.revision, body="changed")
    with pytest.raises(PolicyError, match="published versions cannot change"):
        policies.publish(session, admin=admin, version_id=version.id, revision=published.revision, now=clock())
    with pytest.raises(PolicyError, match="published versions cannot change"):
        policies.discard_draft(session, admin=admin, version_id=version.id, revision=published.revision, now=clock())
    row = session.get(PolicyVersion, version.id)  # even past the service, the ORM refuses
    row.body = "tampered"
    session.add(row)
    with pytest.raises(PermissionError):
        session.commit()
    session.rollback()
    assert policies.get_version(session, version_id=version.id).body == POLICY_BODY
    # upcoming until its date, then in effect
    assert policies.current_label(session, kind="privacy", now=clock()) == IN_FORCE
    assert policies.current_label(session, kind="privacy", now=clock() + timedelta(days=30)) == "2"


def test_a_past_effective_date_takes_effect_when_published_never_retroactively(session, clock):
    admin = admin_user(session, clock)
    version = draft(session, clock, admin, effective_at=clock() - timedelta(days=10))
    clock.advance(hours=2)
    published = policies.publish(session, admin=admin, version_id=version.id, revision=1, now=clock())
    assert as_utc(published.effective_at) == clock()
    assert policies.current_label(session, kind="privacy", now=clock() - timedelta(seconds=1)) == IN_FORCE
    assert policies.current_label(session, kind="privacy", now=clock()) == "2"


def test_sign_up_records_the_versions_in_effect(session, clock):
    admin = admin_user(session, clock)
    version = draft(session, clock, admin, kind="terms", label="2026-12")
    policies.publish(session, admin=admin, version_id=version.id, revision=1, now=clock())
    user = sign_up(session, clock, email="new@example.com")
    assert (user.accepted_policy_version, user.accepted_terms_version) == (IN_FORCE, "2026-12")


def test_every_policy_action_is_audited_without_the_text(session, clock):
    admin = admin_user(session, clock)
    version = draft(session, clock, admin)
    edit(session, clock, admin, version, revision=1, summary="Logs kept 30 days", material=True)
    policies.publish(session, admin=admin, version_id=version.id, revision=2, now=clock())
    other = draft(session, clock, admin, label="3")
    policies.discard_draft(session, admin=admin, version_id=other.id, revision=1, now=clock())
    assert actions(session) == ["policy.draft_created", "policy.draft_edited", "policy.published",
                                "policy.draft_created", "policy.draft_discarded"]  # fmt: skip
    edited = session.exec(select(AuditEvent).where(AuditEvent.action == "policy.draft_edited")).one()
    assert edited.before == {"summary": "Shorter log retention", "material": False}
    assert edited.after == {"summary": "Logs kept 30 days", "material": True}
    assert edited.actor_id == admin.id
    created = session.exec(select(AuditEvent).where(AuditEvent.action == "policy.draft_created")).first()
    assert "We now keep" not in str(created.after) and "characters, sha256" in created.after["body"]


# Notices of material changes ---------------------------------------------------------------------------------


def test_material_change_banner_until_acknowledged_and_one_email_each(session, clock, data_dir):
    admin = admin_user(session, clock)
    ada = sign_up(session, clock)
    bob = sign_up(session, clock, email="bob@example.com", name="Bob")
    sent_before = len(outbox(data_dir, clock))
    version = publish_material(session, clock, admin, effective_in=timedelta(days=7))
    assert policies.pending_notices(session, user=ada, now=clock()) == []  # not in effect yet
    assert policy_notices_job(clock=clock) == {"notices_sent": 0}

    clock.advance(days=7)
    late = sign_up(session, clock, email="late@example.com", name="Late")  # accepted version 2 at sign-up
    assert late.accepted_policy_version == "2"
    assert [v.label for v in policies.pending_notices(session, user=ada, now=clock())] == ["2"]
    assert policies.pending_notices(session, user=late, now=clock()) == []

    assert policy_notices_job(clock=clock) == {"notices_sent": 3}  # ada, bob and the admin
    assert policy_notices_job(clock=clock) == {"notices_sent": 0}  # a rerun sends nothing twice
    mails = outbox(data_dir, clock)[sent_before:]
    notices = [mail for mail in mails if "important change" in mail["Subject"]]
    assert sorted(mail["To"] for mail in notices) == ["ada@example.com", "bob@example.com", "ops@example.com"]
    assert "/privacy" in notices[0].get_content() and "Shorter log retention" in notices[0].get_content()
    assert len(session.exec(select(PolicyNoticeEmail)).all()) == 3

    policies.acknowledge(session, user=ada, version_id=version.id, now=clock())
    policies.acknowledge(session, user=ada, version_id=version.id, now=clock())  # twice is fine
    assert policies.pending_notices(session, user=ada, now=clock()) == []
    assert [v.label for v in policies.pending_notices(session, user=bob, now=clock())] == ["2"]
    ack = session.exec(select(PolicyAcknowledgement)).one()
    assert (ack.user_id, ack.version_id, as_utc(ack.acknowledged_at)) == (ada.id, version.id, clock())


def test_a_failed_send_is_retried_without_doubling(session, clock, data_dir, monkeypatch):
    admin = admin_user(session, clock)
    sign_up(session, clock)
    outbox(data_dir, clock)  # the sign-up mails
    clock.advance(minutes=1)
    publish_material(session, clock, admin)
    real_send, calls = mail._send, []

    def flaky(message):
        calls.append(message.to)
        if len(calls) == 2:
            raise OSError("SMTP down")
        real_send(message)

    monkeypatch.setattr(mail, "_send", flaky)
    assert policies.send_material_notices(session, now=clock()) == 2
    assert policies.send_material_notices(session, now=clock()) == 0  # queued once per user
    assert mail.deliver_due(clock=clock) == (1, 1)
    clock.advance(minutes=1)
    assert mail.deliver_due(clock=clock) == (1, 0)  # the outbox tried again
    assert len(calls) == 3 and calls[1] == calls[2] and set(calls) == {"ops@example.com", "ada@example.com"}
    assert len(session.exec(select(PolicyNoticeEmail)).all()) == 2


def test_non_material_changes_raise_no_banner_and_no_email(session, clock, data_dir):
    admin = admin_user(session, clock)
    ada = sign_up(session, clock)
    clock.advance(minutes=1)
    publish_material(session, clock, admin, material=False)
    assert policies.pending_notices(session, user=ada, now=clock()) == []
    assert policies.send_material_notices(session, now=clock()) == 0
    assert [v.label for v in policies.published_versions(session, kind="privacy")] == ["2", IN_FORCE, "1.1", "1"]


def test_the_notice_job_is_scheduled():
    assert policy_notices_job in [job for job, _ in scheduled_jobs()]


# Safe Markdown ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "markdown",
    [
        "<script>alert(1)</script>",
        "<img src=x onerror=alert(1)>",
        "[click](javascript:alert(1))",
        "[click](JaVaScRiPt:alert(1))",
        "[click](java\tscript:alert(1))",
        "[click](%6Aavascript:alert(1))",
        "[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
        "[click](vbscript:msgbox(1))",
        "<javascript:alert(1)>",
        "[click][ref]\n\n[ref]: javascript:alert(1)",
        '<a href="javascript:alert(1)">x</a>',
        "![x](data:image/svg+xml;base64,PHN2Zy8+)",
    ],
)
def test_markdown_never_yields_scripts_or_dangerous_links(markdown):
    html = policies.render_markdown(markdown).lower()
    assert "<script" not in html and "<img" not in html
    assert "<a " not in html  # no link at all: each of these is a dangerous one, shown as text instead


def test_markdown_keeps_ordinary_formatting():
    html = policies.render_markdown("# Title\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n[list](/subprocessors) [site](https://stripe.com) [me](mailto:a@b.c)")
    assert "<h1>Title</h1>" in html and "<table>" in html
    assert '<a href="/subprocessors">' in html and '<a href="https://stripe.com">' in html and 'href="mailto:a@b.c"' in html


def test_accounts_being_deleted_get_no_policy_notice(session, clock, data_dir, store):
    admin = admin_user(session, clock)
    leaving = sign_up(session, clock)
    clock.advance(minutes=1)
    deletion.request_deletion(session, user=leaving, store=store, password=PASSWORD, now=clock())
    publish_material(session, clock, admin)
    assert policies.send_material_notices(session, now=clock()) == 1  # the admin only
