"""The accounts service on SQLite and PostgreSQL: sign-up, sign-in, throttling, sessions, links, roles."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher
from sqlmodel import select

from clearbg_app.clock import as_utc
from clearbg_app.models import AuthSession, LoginThrottle, User
from clearbg_app.services import accounts, security
from clearbg_app.services.accounts import AccountError, SignInFailed, SignInLocked
from tests.factories import PASSWORD, sign_up, verified_user
from tests.mail import outbox, token_in


def all_rows(session, model):
    return session.exec(select(model)).all()


# Sign-up ---------------------------------------------------------------------------------------------


def test_sign_up_records_consents_and_sends_a_verification_link(session, clock, data_dir):
    user = sign_up(session, clock, email="  Ada@Example.COM ", name="  Zoë Ångström 🎨 ")
    assert user.email == "ada@example.com"
    assert user.display_name == "Zoë Ångström 🎨"
    assert as_utc(user.adult_confirmed_at) == clock.now and as_utc(user.policy_accepted_at) == clock.now
    assert (user.accepted_policy_version, user.accepted_terms_version) == ("1.2", "1.1")  # the versions in force
    assert user.role == "user" and not user.is_verified and user.password_hash.startswith("$argon2id$")
    [mail] = outbox(data_dir, clock)
    assert mail["To"] == "ada@example.com"
    assert accounts.verify_email(session, token=token_in(mail, "/auth/verify"), now=clock()).is_verified


def test_sign_up_with_a_registered_email_reveals_nothing(session, clock, data_dir):
    sign_up(session, clock)
    assert sign_up(session, clock, name="Mallory") is None
    assert len(all_rows(session, User)) == 1
    assert outbox(data_dir, clock)[-1]["Subject"] == "Someone tried to sign up with your address"


@pytest.mark.parametrize(
    "email",
    ["", "no-at-sign", "a@b", "two@@example.com", "spa ce@example.com", "x" * 250 + "@example.com", "a@example..com"],
)
def test_malformed_emails_are_refused(session, clock, email):
    with pytest.raises(AccountError, match="valid email"):
        sign_up(session, clock, email=email)
    assert all_rows(session, User) == []


@pytest.mark.parametrize(
    ("name", "message"),
    [("", "Enter a display name"), ("   ", "Enter a display name"), ("x" * 81, "at most 80"),
     ("Ada\x00", "control or invisible"), ("Ada\u200b", "control or invisible"), ("A\nB", "control or invisible")],
)  # fmt: skip
def test_bad_display_names_are_refused(session, clock, name, message):
    with pytest.raises(AccountError, match=message):
        sign_up(session, clock, name=name)


@pytest.mark.parametrize(
    ("password", "message"),
    [("short", "at least 10"), ("x" * 257, "at most 256"), ("password123", "too common"),
     ("1234567890", "too common"), ("ada@example.com", "too common")],
)  # fmt: skip
def test_weak_passwords_are_refused(session, clock, password, message):
    with pytest.raises(AccountError, match=message):
        sign_up(session, clock, password=password)
    assert all_rows(session, User) == []


@pytest.mark.parametrize(
    ("consent", "message"), [("adult_confirmed", "adults only"), ("policy_accepted", "Accept the privacy policy")]
)
def test_sign_up_needs_both_confirmations(session, clock, consent, message):
    with pytest.raises(AccountError, match=message):
        sign_up(session, clock, **{consent: False})
    assert all_rows(session, User) == []


def test_tampered_expired_and_stale_verification_links_fail(session, clock, data_dir):
    user = sign_up(session, clock)
    token = token_in(outbox(data_dir, clock)[0], "/auth/verify")
    body, mac = token.split(".")
    for forged in (body + "." + mac[:-2] + "AA", body[:-3] + "abc." + mac, "garbage", ""):
        with pytest.raises(AccountError, match="not valid"):
            accounts.verify_email(session, token=forged, now=clock())
    clock.advance(hours=49)
    with pytest.raises(AccountError, match="expired"):
        accounts.verify_email(session, token=token, now=clock())
    assert not session.get(User, user.id).is_verified


# Sign-in and throttling --------------------------------------------------------------------------------


def test_sign_in_and_one_message_for_unknown_email_or_wrong_password(session, clock):
    user = sign_up(session, clock)
    assert accounts.authenticate(session, email="ADA@example.com", password=PASSWORD, ip="203.0.113.9", now=clock()).id == user.id
    for email, password in (("ada@example.com", "wrong-password!"), ("nobody@example.com", PASSWORD), ("bad", PASSWORD)):
        with pytest.raises(SignInFailed, match="^Email or password is incorrect.$"):
            accounts.authenticate(session, email=email, password=password, ip="203.0.113.9", now=clock())


def test_unknown_email_costs_the_same_hashing_work(session, clock, monkeypatch):
    sign_up(session, clock)
    calls = []

    class CountingHasher(PasswordHasher):
        def verify(self, hash, password):
            calls.append(hash)
            return super().verify(hash, password)

    monkeypatch.setattr(security, "password_hasher", CountingHasher())
    for email in ("ada@example.com", "nobody@example.com"):
        with pytest.raises(SignInFailed):
            accounts.authenticate(session, email=email, password="wrong-password!", ip=None, now=clock())
    assert len(calls) == 2 and all(h.startswith("$argon2id$") for h in calls)
    assert PasswordHasher().check_needs_rehash(calls[1]) is False  # a real hash with today's parameters


def test_account_lockout_emails_the_owner_and_lifts_after_the_window(session, clock, data_dir):
    sign_up(session, clock)
    for _ in range(5):
        with pytest.raises(SignInFailed):
            accounts.authenticate(session, email="ada@example.com", password="wrong-password!", ip="198.51.100.7", now=clock())
    with pytest.raises(SignInLocked, match="Try again in 15 minutes"):
        accounts.authenticate(session, email="ada@example.com", password=PASSWORD, ip="198.51.100.7", now=clock())
    assert outbox(data_dir, clock)[-1]["Subject"] == "Sign-in to your ClearBG account was locked"
    clock.advance(minutes=16)
    assert accounts.authenticate(session, email="ada@example.com", password=PASSWORD, ip="198.51.100.7", now=clock())


def test_unknown_emails_lock_too_so_lockout_reveals_nothing(session, clock):
    for _ in range(5):
        with pytest.raises(SignInFailed):
            accounts.authenticate(session, email="ghost@example.com", password="wrong-password!", ip="192.0.2.1", now=clock())
    with pytest.raises(SignInLocked):
        accounts.authenticate(session, email="ghost@example.com", password="wrong-password!", ip="192.0.2.1", now=clock())


def test_one_network_trying_many_accounts_is_locked(session, clock):
    sign_up(session, clock)
    for index in range(20):
        with pytest.raises(SignInFailed):
            accounts.authenticate(session, email=f"guess{index}@example.com", password="wrong-password!", ip="192.0.2.55", now=clock())
    with pytest.raises(SignInLocked):
        accounts.authenticate(session, email="ada@example.com", password=PASSWORD, ip="192.0.2.77", now=clock())
    assert accounts.authenticate(session, email="ada@example.com", password=PASSWORD, ip="198.51.100.1", now=clock())


def test_password_is_rehashed_when_parameters_change(session, clock):
    user = sign_up(session, clock)
    user.password_hash = PasswordHasher(time_cost=1, memory_cost=8192).hash(PASSWORD)
    session.add(user)
    session.commit()
    old_hash = user.password_hash
    accounts.authenticate(session, email="ada@example.com", password=PASSWORD, ip=None, now=clock())
    session.refresh(user)
    assert user.password_hash != old_hash and not security.needs_rehash(user.password_hash)


# Sessions --------------------------------------------------------------------------------------------


def test_sessions_are_stored_hashed_revocable_and_expire(session, clock):
    user = sign_up(session, clock)
    token = accounts.start_session(session, user=user, user_agent="Mozilla/5.0 (X11; Linux) Chrome/120", ip="2001:db8:1:2::5", now=clock())
    stored = all_rows(session, AuthSession)[0]
    assert stored.token_hash == security.sha256_hex(token) and token not in stored.token_hash
    assert stored.ip_prefix == "2001:db8:1::/48"
    assert accounts.resolve_session(session, token=token, now=clock()).user.id == user.id
    clock.advance(days=29)
    assert accounts.resolve_session(session, token=token, now=clock())  # activity slides the expiry
    clock.advance(days=31)
    assert accounts.resolve_session(session, token=token, now=clock()) is None
    other = accounts.start_session(session, user=user, user_agent="", ip=None, now=clock())
    accounts.end_session(session, token=other, now=clock())
    assert accounts.resolve_session(session, token=other, now=clock()) is None
    assert accounts.resolve_session(session, token="forged-token-" + "x" * 30, now=clock()) is None


def test_revoking_one_or_all_other_sessions(session, clock):
    user = sign_up(session, clock)
    tokens = [accounts.start_session(session, user=user, user_agent="", ip=None, now=clock()) for _ in range(3)]
    current = accounts.resolve_session(session, token=tokens[0], now=clock()).auth_session
    target = accounts.resolve_session(session, token=tokens[1], now=clock()).auth_session
    assert accounts.revoke_sessions(session, user=user, session_id=target.id, now=clock()) == 1
    assert accounts.resolve_session(session, token=tokens[1], now=clock()) is None
    assert accounts.revoke_sessions(session, user=user, keep_id=current.id, now=clock()) == 1
    assert [s.id for s in accounts.active_sessions(session, user=user, now=clock())] == [current.id]


def test_a_session_of_a_deleted_user_is_dead(session, clock):
    user = sign_up(session, clock)
    token = accounts.start_session(session, user=user, user_agent="", ip=None, now=clock())
    session.delete(user)
    session.commit()
    assert accounts.resolve_session(session, token=token, now=clock()) is None


# Passwords and email changes -----------------------------------------------------------------------------


def test_password_reset_link_works_once_and_signs_out_everywhere(session, clock, data_dir):
    user = sign_up(session, clock)
    token = accounts.start_session(session, user=user, user_agent="", ip=None, now=clock())
    accounts.request_password_reset(session, email="nobody@example.com", ip="127.0.0.1", now=clock())
    assert len(outbox(data_dir, clock)) == 1  # only the verification mail: unknown addresses get nothing
    accounts.request_password_reset(session, email="ada@example.com", ip="127.0.0.1", now=clock())
    reset = token_in(outbox(data_dir, clock)[-1], "/reset-password")
    with pytest.raises(AccountError, match="too common"):
        accounts.reset_password(session, token=reset, new_password="password123", now=clock())
    accounts.reset_password(session, token=reset, new_password="a-brand-new-secret", now=clock())
    assert accounts.resolve_session(session, token=token, now=clock()) is None
    assert accounts.authenticate(session, email="ada@example.com", password="a-brand-new-secret", ip=None, now=clock())
    with pytest.raises(AccountError, match="already been used"):
        accounts.reset_password(session, token=reset, new_password="yet-another-secret", now=clock())


def test_expired_reset_link_fails(session, clock, data_dir):
    sign_up(session, clock)
    accounts.request_password_reset(session, email="ada@example.com", ip="127.0.0.1", now=clock())
    token = token_in(outbox(data_dir, clock)[-1], "/reset-password")  # the hour counts from when it is sent
    clock.advance(minutes=61)
    with pytest.raises(AccountError, match="expired"):
        accounts.reset_password(session, token=token, new_password="a-brand-new-secret", now=clock())


def test_change_password_needs_the_current_one_and_keeps_this_session(session, clock):
    user = sign_up(session, clock)
    here = accounts.start_session(session, user=user, user_agent="", ip=None, now=clock())
    there = accounts.start_session(session, user=user, user_agent="", ip=None, now=clock())
    here_id = accounts.resolve_session(session, token=here, now=clock()).auth_session.id
    with pytest.raises(AccountError, match="current password is not correct"):
        accounts.change_password(session, user=user, current_password="nope-nope-nope", new_password="another-good-one", keep_session_id=here_id, now=clock())
    accounts.change_password(session, user=user, current_password=PASSWORD, new_password="another-good-one", keep_session_id=here_id, now=clock())
    assert accounts.resolve_session(session, token=here, now=clock())
    assert accounts.resolve_session(session, token=there, now=clock()) is None


def test_email_change_is_confirmed_from_the_new_address(session, clock, data_dir):
    user = verified_user(session, clock)
    sign_up(session, clock, email="taken@example.com", name="Other")
    with pytest.raises(AccountError, match="password is not correct"):
        accounts.request_email_change(session, user=user, new_email="new@example.com", password="wrong-password!", now=clock())
    sent = len(outbox(data_dir, clock))
    accounts.request_email_change(session, user=user, new_email="taken@example.com", password=PASSWORD, now=clock())
    assert len(outbox(data_dir, clock)) == sent  # silently nothing for an address that has an account
    accounts.request_email_change(session, user=user, new_email="New@Example.com", password=PASSWORD, now=clock())
    confirm = outbox(data_dir, clock)[-1]
    assert confirm["To"] == "new@example.com"
    token = token_in(confirm, "/auth/email/confirm")
    assert accounts.confirm_email_change(session, token=token, now=clock()).email == "new@example.com"
    assert outbox(data_dir, clock)[-1]["To"] == "ada@example.com"  # the old address is told
    with pytest.raises(AccountError, match="already been used"):
        accounts.confirm_email_change(session, token=token, now=clock())


# Third-party identities and roles -------------------------------------------------------------------------


def google(email="ada@example.com", verified=True, subject="google-sub-1"):
    return accounts.ExternalIdentity(provider="google", subject=subject, email=email, email_verified=verified, name="Ada G.")


def test_identity_links_only_to_a_provider_verified_email(session, clock):
    user = verified_user(session, clock)
    with pytest.raises(AccountError, match="not verified"):
        accounts.sign_in_with_identity(session, identity=google(verified=False), adult_confirmed=False, policy_accepted=False, now=clock())
    linked = accounts.sign_in_with_identity(session, identity=google(), adult_confirmed=False, policy_accepted=False, now=clock())
    assert linked.id == user.id and linked.is_verified
    again = accounts.sign_in_with_identity(session, identity=google(email="changed@example.com"), adult_confirmed=False, policy_accepted=False, now=clock())
    assert again.id == user.id


def test_linking_an_unproven_account_drops_its_password_and_sessions(session, clock):
    squatter = sign_up(session, clock)  # someone registered the address without proving it
    token = accounts.start_session(session, user=squatter, user_agent="", ip=None, now=clock())
    owner = accounts.sign_in_with_identity(session, identity=google(), adult_confirmed=False, policy_accepted=False, now=clock())
    assert owner.id == squatter.id and owner.password_hash is None and owner.is_verified
    assert accounts.resolve_session(session, token=token, now=clock()) is None
    with pytest.raises(SignInFailed):
        accounts.authenticate(session, email="ada@example.com", password=PASSWORD, ip=None, now=clock())


def test_new_identity_needs_the_sign_up_confirmations(session, clock):
    with pytest.raises(accounts.ConsentNeeded):
        accounts.sign_in_with_identity(session, identity=google(), adult_confirmed=True, policy_accepted=False, now=clock())
    assert all_rows(session, User) == []
    user = accounts.sign_in_with_identity(session, identity=google(), adult_confirmed=True, policy_accepted=True, now=clock())
    assert user.password_hash is None and user.is_verified and user.display_name == "Ada G."


def test_admin_role(session, clock, data_dir):
    user = sign_up(session, clock)
    with pytest.raises(PermissionError):
        accounts.list_users(session, admin=user)
    promoted, created = accounts.make_admin(session, email="ADA@example.com", now=clock())
    assert (promoted.id, created, promoted.is_admin) == (user.id, False, True)
    new_admin, created = accounts.make_admin(session, email="ops@example.com", now=clock())
    assert created and new_admin.password_hash is None
    assert {u.email for u in accounts.list_users(session, admin=promoted)} == {"ada@example.com", "ops@example.com"}
    with pytest.raises(PermissionError):
        accounts.require_admin(None)


def test_throttle_rows_hold_no_email_or_ip(session, clock):
    sign_up(session, clock)
    with pytest.raises(SignInFailed):
        accounts.authenticate(session, email="ada@example.com", password="wrong-password!", ip="203.0.113.50", now=clock())
    keys = [row.key for row in all_rows(session, LoginThrottle)]
    assert len(keys) == 2 and not any("ada" in key or "203.0" in key for key in keys)


@pytest.mark.parametrize(
    ("address", "prefix"),
    [("203.0.113.77", "203.0.113.0/24"), ("2001:db8:abcd:12::1", "2001:db8:abcd::/48"),
     ("::ffff:198.51.100.9", "198.51.100.0/24"), ("not-an-ip", ""), (None, "")],
)  # fmt: skip
def test_ip_prefix(address, prefix):
    assert security.ip_prefix(address) == prefix
