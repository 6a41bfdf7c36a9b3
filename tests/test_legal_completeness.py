"""Terms that match the product (version 1.1, its figures from the settings), /subprocessors marking
what the configuration uses, and the admin safeguards: a material change asks first and says how many
are emailed, the audit log names live accounts by email and erased ones by id. SQLite and PostgreSQL."""

from __future__ import annotations

from sqlmodel import select

from clearbg_app.http.cookies import SESSION_COOKIE
from clearbg_app.models import PolicyVersion, Subprocessor
from clearbg_app.services import accounts, deletion, policies, subprocessors
from clearbg_app.services.jobs import anonymize_accounts_job
from clearbg_app.settings import get_settings
from clearbg_app.state.admin import AdminState, AuditLogState
from clearbg_app.state.admin_policies import AdminPoliciesState
from clearbg_app.state.policies import SubprocessorsState
from tests.factories import state_for
from tests.privacy_helpers import PASSWORD, new_user

TERMS_TOPICS = ("credits", "free monthly allowance", "expire", "Refunds", "Subscriptions", "Cancel", "rate limited", "Contact")


def test_terms_1_1_say_what_credits_refunds_subscriptions_and_limits_are(session, clock, monkeypatch):
    monkeypatch.setenv("CLEARBG_FREE_MONTHLY_CREDITS", "20")
    monkeypatch.setenv("CLEARBG_CREDIT_EXPIRY_DAYS", "365")
    monkeypatch.setenv("CLEARBG_API_RATE_LIMIT_PER_KEY", "120")
    monkeypatch.setenv("CLEARBG_OPERATOR_NAME", "Example Imaging GmbH")
    get_settings.cache_clear()
    terms = policies.current_version(session, kind="terms", now=clock())
    assert terms.label == "1.1" and not terms.material
    html = " ".join(policies.render_markdown(terms.body).split())
    for topic in TERMS_TOPICS:
        assert topic.lower() in html.lower(), topic
    assert "20 free credits" in html and "365 days after purchase" in html and "at most 120 megapixel" in html
    assert "Example Imaging GmbH" in html and "{{" not in html
    assert [v.label for v in policies.published_versions(session, kind="terms")] == ["1.1", "1"]


def test_placeholders_are_filled_but_unknown_ones_and_html_are_left_inert(data_dir):
    html = policies.render_markdown("{{operator_name}} {{nonsense}} <b>x</b>")
    assert "(not configured)" in html and "{{nonsense}}" in html and "&lt;b&gt;" in html


def test_subprocessors_are_marked_in_use_from_the_configuration(session, clock, monkeypatch):
    rows = {row.name: row for row in session.exec(select(Subprocessor)).all()}
    assert (rows["Google"].used_for, rows["Stripe"].used_for) == ("google_sign_in", "payments")
    assert rows["Email delivery provider (to be named by the operator)"].used_for == "smtp_mail"
    assert rows["Hosting provider (to be named by the operator)"].used_for == ""
    assert not subprocessors.in_use(rows["Google"]) and not subprocessors.in_use(rows["Stripe"])
    assert subprocessors.in_use(rows["Hosting provider (to be named by the operator)"])
    public = state_for(SubprocessorsState)
    public.load()
    notes = {row.name: row.use_note for row in public.active_subprocessors}
    assert notes["Google"] == "not in use: Google sign-in is off on this site" and notes["Stripe"].startswith("not in use")
    assert public.active_subprocessors[0].in_use == "yes" and public.active_subprocessors[-1].in_use == ""  # in use first

    monkeypatch.setenv("CLEARBG_GOOGLE_CLIENT_ID", "client")
    monkeypatch.setenv("CLEARBG_GOOGLE_CLIENT_SECRET", "secret")
    monkeypatch.setenv("CLEARBG_STRIPE_SECRET_KEY", "sk_test_x")
    monkeypatch.setenv("CLEARBG_STRIPE_WEBHOOK_SECRET", "whsec_x")
    monkeypatch.setenv("CLEARBG_SMTP_HOST", "127.0.0.1")
    get_settings.cache_clear()
    public.load()
    assert all(row.in_use == "yes" and row.use_note == "in use" for row in public.active_subprocessors)


def test_a_bad_feature_for_a_subprocessor_is_refused(session, clock):
    admin = accounts.make_admin(session, email="ops@example.com", now=clock())[0]
    fields = subprocessors.SubprocessorFields(name="X", purpose="Y", data_categories="Z", location="EU", used_for="crypto_mining")
    try:
        subprocessors.add(session, admin=admin, fields=fields, now=clock())
    except subprocessors.SubprocessorError as error:
        assert "Choose the feature" in str(error)
    else:
        raise AssertionError("accepted an unknown feature")
    row = subprocessors.add(session, admin=admin, fields=subprocessors.SubprocessorFields(name="X", purpose="Y", data_categories="Z",
                                                                                          location="EU", used_for="payments"), now=clock())  # fmt: skip
    edited = subprocessors.edit(session, admin=admin, entry_id=row.id, fields=subprocessors.SubprocessorFields(
        name="X2", purpose="Y", data_categories="Z", location="EU"), now=clock())  # fmt: skip
    assert edited.used_for == "payments"  # kept when the form does not say


def test_a_material_change_asks_first_and_says_how_many_are_emailed(session, store, clock):
    admin = accounts.make_admin(session, email="ops@example.com", now=clock())[0]
    new_user(session, clock, email="a@example.com")
    new_user(session, clock, email="b@example.com")
    leaving = new_user(session, clock, email="leaving@example.com")
    deletion.request_deletion(session, user=leaving, store=store, password=PASSWORD, now=clock())  # not emailed
    cookie = f"{SESSION_COOKIE}={accounts.start_session(session, user=admin, user_agent='test', ip='10.0.0.1')}"
    editor = state_for(AdminPoliciesState, cookie)
    editor.load()
    editor.new_draft("privacy")
    editor.save({"label": "9", "body": "# Policy 9", "summary": "Big change", "effective": "", "material": "on"})
    editor.ask_publish()
    assert editor.confirming_publish and editor.publish_recipients == 3
    assert session.exec(select(PolicyVersion).where(PolicyVersion.label == "9")).one().status == "draft"  # nothing published yet
    editor.cancel_publish()
    assert not editor.confirming_publish
    editor.ask_publish()
    editor.publish()
    assert "Published" in editor.admin_notice and not editor.confirming_publish
    editor.new_draft("terms")
    editor.save({"label": "9", "body": "# Terms 9", "summary": "Typo", "effective": ""})
    editor.ask_publish()  # not material: published at once
    assert not editor.confirming_publish and "Published" in editor.admin_notice


def test_the_audit_log_names_live_accounts_by_email_and_erased_ones_by_id(session, store, clock):
    admin = accounts.make_admin(session, email="ops@example.com", now=clock())[0]
    live, gone = new_user(session, clock, email="live@example.com"), new_user(session, clock, email="gone@example.com")
    cookie = f"{SESSION_COOKIE}={accounts.start_session(session, user=admin, user_agent='test', ip='10.0.0.1')}"
    panel = state_for(AdminState, cookie)
    for user in (live, gone):
        panel.open_account(str(user.id))
        panel.adjust_credits({"amount": "1", "reason": "Goodwill"})
    deletion.request_deletion(session, user=gone, store=store, password=PASSWORD, now=clock())
    clock.advance(days=8)
    assert anonymize_accounts_job(clock=clock)["accounts_anonymized"] == 1
    log = state_for(AuditLogState, cookie)
    log.load()
    targets = [event.target for event in log.events if event.action == "credits.adjusted"]
    assert sorted(targets) == sorted(["user live@example.com", f"user erased account {gone.id}"])
    assert {event.who for event in log.events if event.action == "credits.adjusted"} == {"ops@example.com"}
    assert [e.who for e in log.events if e.action == "account.deletion_requested"] == [f"erased account {gone.id}"]
    assert "gone@example.com" not in repr(log.events) and "deleted.invalid" not in repr(log.events)
