"""Accounts: sign-up, sign-in with throttling, sessions, email verification, password and email changes,
third-party identities and roles. No message here reveals whether an email is registered."""

from __future__ import annotations

import unicodedata
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path

from email_validator import EmailNotValidError, validate_email
from sqlmodel import Session, col, select

from clearbg_app.clock import as_utc, utcnow
from clearbg_app.models import AuthSession, LoginThrottle, OAuthIdentity, OutboxMail, Role, User
from clearbg_app.services import credits, mail, policies, ratelimit
from clearbg_app.services.deletion_lock import is_locked, refuse_if_pending
from clearbg_app.services.errors import ServiceError
from clearbg_app.services.security import (
    InvalidToken,
    coarse_user_agent,
    hash_password,
    ip_prefix,
    needs_rehash,
    new_token,
    sha256_hex,
    sign,
    unsign,
    verify_password,
)
from clearbg_app.settings import get_settings
from clearbg_app.wording import plural

MIN_PASSWORD = 10
MAX_PASSWORD = 256
MAX_NAME = 80
VERIFY_HOURS = 48
RESET_MINUTES = 60
EMAIL_CHANGE_HOURS = 24
SESSION_TOUCH = timedelta(minutes=5)
IP_FAILURE_FACTOR = 4  # a network may fail this many times more often than one account


class AccountError(ServiceError):
    """Invalid input or a refused action; the message says what to do."""


class SignInFailed(ServiceError):
    """Wrong email or password (one message for both)."""


class SignInLocked(ServiceError):
    """Too many failed sign-ins for this account or network."""


class AccountSuspended(ServiceError):
    """An administrator suspended the account: no sign-in, no sessions, no API keys."""

    def __init__(self) -> None:
        super().__init__("This account is suspended. If you think this is a mistake, contact the operator of this service.")


def refuse_suspended(user: User) -> User:
    """The user, or `AccountSuspended` if an administrator suspended the account."""
    if user.suspended_at is not None:
        raise AccountSuspended()
    return user


class ConsentNeeded(ServiceError):
    """A new account needs the adult confirmation and the policy acceptance first."""


@cache
def common_passwords() -> frozenset[str]:
    return frozenset((Path(__file__).with_name("common_passwords.txt")).read_text().split())


def normalize_email(raw: str) -> str:
    """A syntactically valid address, lower-cased, at most 254 characters."""
    raw = (raw or "").strip()
    if not raw or len(raw) > 254:
        raise AccountError("Enter a valid email address (at most 254 characters).")
    try:
        address = validate_email(raw, check_deliverability=False).normalized
    except EmailNotValidError:
        raise AccountError("Enter a valid email address, like name@example.com.") from None
    return address.lower()


def clean_display_name(raw: str) -> str:
    """1 to 80 printable characters, any script; surrounding space removed."""
    name = unicodedata.normalize("NFC", (raw or "").strip())
    if not name:
        raise AccountError("Enter a display name.")
    if len(name) > MAX_NAME:
        raise AccountError(f"Display names are at most {MAX_NAME} characters.")
    if any(unicodedata.category(ch).startswith("C") for ch in name):
        raise AccountError("Display names cannot contain control or invisible characters.")
    return name


def check_new_password(password: str, *, email: str = "") -> str:
    if len(password or "") < MIN_PASSWORD:
        raise AccountError(f"Use a password of at least {MIN_PASSWORD} characters.")
    if len(password) > MAX_PASSWORD:
        raise AccountError(f"Passwords are at most {MAX_PASSWORD} characters.")
    if password.lower() in common_passwords() or (email and password.lower() == email.lower()):
        raise AccountError("That password is too common; choose one that is hard to guess.")
    return password


def _link(path: str, token: str) -> str:
    return f"{get_settings().public_url.rstrip('/')}{path}?token={token}"


def _link_message(
    *, to: str, name: str, subject: str, purpose: str, payload: dict, valid_for: timedelta, path: str, intro: str,
    outro: str = "", now: datetime,
) -> mail.Message:
    """A mail with a link signed now: "Hello NAME, INTRO ... within DURATION: LINK OUTRO"."""
    token = sign(purpose, payload, expires_at=now + valid_for)
    hours, minutes = divmod(int(valid_for.total_seconds()) // 60, 60)
    duration = plural(hours, "hour") if hours else plural(minutes, "minute")
    body = f"Hello {name},\n\n{intro} within {duration}:\n\n{_link(path, token)}\n\n{outro}".rstrip() + "\n"
    return mail.Message(to=to, subject=subject, body=body)


def _new_user(
    session: Session,
    *,
    email: str,
    display_name: str,
    now: datetime,
    password_hash: str | None = None,
    verified: bool = False,
) -> User:
    """A new account with its adult confirmation and the policy and terms versions in effect now."""
    user = User(
        email=email,
        display_name=display_name,
        password_hash=password_hash,
        email_verified_at=now if verified else None,
        adult_confirmed_at=now,
        policy_accepted_at=now,
        accepted_policy_version=policies.current_label(session, kind="privacy", now=now),
        accepted_terms_version=policies.current_label(session, kind="terms", now=now),
        created_at=now,
    )
    session.add(user)
    session.flush()
    if verified:
        credits.grant_allowance(session, user_id=user.id, now=now)
    return user


def _mark_verified(session: Session, user: User, now: datetime) -> None:
    """The address is proven: record it and grant this month's free credits in the same transaction,
    so the first full-resolution image or API call after confirming is not refused."""
    user.email_verified_at = now
    session.add(user)
    credits.grant_allowance(session, user_id=user.id, now=now)


def _user_by_email(session: Session, email: str) -> User | None:
    return session.exec(select(User).where(User.email == email)).first()


def _limit_requests(*, ip: str | None, email: str) -> None:
    """Sign-ups and reset requests, which send mail: an hourly budget per network and per address."""
    settings = get_settings()
    refusal = ratelimit.network_and_address_refusal(
        "signup-reset", ip=ip, email=email, per_network=settings.signup_reset_per_network_per_hour,
        per_address=settings.signup_reset_per_address_per_hour,
    )  # fmt: skip
    if refusal:
        raise AccountError(f"Too many sign-ups or password resets {refusal}.")


# Sign-up and verification -----------------------------------------------------------------------


def sign_up(
    session: Session,
    *,
    email: str,
    display_name: str,
    password: str,
    adult_confirmed: bool,
    policy_accepted: bool,
    ip: str | None,
    now: datetime | None = None,
) -> User | None:
    """Create an unverified account and email a verification link. For an address already registered,
    email its owner instead and return None: the caller shows the same page either way."""
    now = now or utcnow()
    email = normalize_email(email)
    name = clean_display_name(display_name)
    if not adult_confirmed:
        raise AccountError("ClearBG is for adults only: confirm that you are 18 or older.")
    if not policy_accepted:
        raise AccountError("Accept the privacy policy and the terms to create an account.")
    check_new_password(password, email=email)
    _limit_requests(ip=ip, email=email)
    password_hash = hash_password(password)
    existing = _user_by_email(session, email)
    if existing is not None:
        mail.enqueue(session, kind="sign_up_existing", user_id=existing.id, now=now)
        session.commit()
        return None
    user = _new_user(session, email=email, display_name=name, password_hash=password_hash, now=now)
    send_verification(session, user=user, now=now)
    session.commit()
    return user


@mail.renders("sign_up_existing")
def _existing_account_mail(session: Session, queued: OutboxMail, now: datetime) -> mail.Message | None:
    user = mail.recipient(session, queued)
    if user is None:
        return None
    base = get_settings().public_url
    return mail.Message(
        to=user.email,
        subject="Someone tried to sign up with your address",
        body="Somebody, perhaps you, tried to create a ClearBG account with this address, which already has "
        f"one. To sign in, go to {base}/login; forgot your password? Reset it at {base}/forgot-password.\n",
    )


def send_verification(session: Session, *, user: User, now: datetime | None = None) -> None:
    """Queue a new email-verification link (the caller commits)."""
    mail.enqueue(session, kind="verify_email", user_id=user.id, now=now)


@mail.renders("verify_email")
def _verification_mail(session: Session, queued: OutboxMail, now: datetime) -> mail.Message | None:
    user = mail.recipient(session, queued)
    if user is None or user.is_verified:
        return None
    return _link_message(
        to=user.email,
        name=user.display_name,
        subject="Confirm your email address for ClearBG",
        purpose="verify-email",
        payload={"u": str(user.id), "e": user.email},
        valid_for=timedelta(hours=VERIFY_HOURS),
        path="/auth/verify",
        intro="confirm your address by opening this link",
        outro="If you did not sign up, ignore this email.",
        now=now,
    )


def verify_email(session: Session, *, token: str, now: datetime | None = None) -> User:
    now = now or utcnow()
    payload = _unsign(session, "verify-email", token, now)
    user = session.get(User, uuid.UUID(payload["u"]))
    if user is None or user.email != payload["e"]:
        raise AccountError("This link is not valid any more. Sign in and ask for a new one.")
    if user.email_verified_at is None:
        _mark_verified(session, user, now)
        session.commit()
    return user


def _unsign(session: Session, purpose: str, token: str, now: datetime) -> dict:
    try:
        payload = unsign(purpose, token, now=now)
        uuid.UUID(payload["u"])
    except InvalidToken as error:
        raise AccountError(str(error)) from None
    except (KeyError, ValueError, TypeError):
        raise AccountError("This link is not valid. Ask for a new one.") from None
    return payload


# Sign-in, throttling, sessions ---------------------------------------------------------------------


def _throttle(session: Session, key: str, now: datetime) -> LoginThrottle:
    throttle = session.get(LoginThrottle, key)
    window = timedelta(minutes=get_settings().login_lockout_minutes)
    if throttle is None:
        throttle = LoginThrottle(key=key, window_started_at=now)
    elif as_utc(throttle.window_started_at) + window <= now and not _locked(throttle, now):
        throttle.failures, throttle.window_started_at, throttle.locked_until = 0, now, None
    return throttle


def _locked(throttle: LoginThrottle, now: datetime) -> bool:
    return _locked_until(throttle, now) is not None


def _locked_until(throttle: LoginThrottle, now: datetime) -> datetime | None:
    """When `throttle`'s lock ends; None when it is not locked at `now`."""
    if throttle.locked_until is None or as_utc(throttle.locked_until) <= now:
        return None
    return as_utc(throttle.locked_until)


def _lock_message(locked_until: datetime, now: datetime) -> str:
    minutes = max(1, round((locked_until - now).total_seconds() / 60))
    return f"Too many failed sign-ins. Try again in {minutes} minute{'s' if minutes != 1 else ''}, or reset your password."


def authenticate(
    session: Session, *, email: str, password: str, ip: str | None, now: datetime | None = None
) -> User:
    """The user whose email and password these are; `SignInFailed` or `SignInLocked` otherwise.
    An unknown email costs the same password-hash work as a known one."""
    now = now or utcnow()
    settings = get_settings()
    try:
        email = normalize_email(email)
    except AccountError:
        verify_password(None, password or "")
        raise SignInFailed("Email or password is incorrect.") from None
    account_throttle = _throttle(session, "email:" + sha256_hex(email), now)
    network_throttle = _throttle(session, "ip:" + sha256_hex(ip_prefix(ip) or "unknown"), now)
    for throttle in (account_throttle, network_throttle):
        locked_until = _locked_until(throttle, now)
        if locked_until is not None:
            verify_password(None, password or "")
            raise SignInLocked(_lock_message(locked_until, now))
    user = _user_by_email(session, email)
    password_ok = verify_password(user.password_hash if user else None, password or "")  # same work either way
    if user is not None and user.password_hash is not None and password_ok:
        refuse_suspended(user)
        if needs_rehash(user.password_hash):
            user.password_hash = hash_password(password)
        user.locked_until = None
        session.add(user)
        if account_throttle in session:
            session.delete(account_throttle)
        session.commit()
        refuse_if_pending(session, user_id=user.id, now=now)
        return user
    lockout = timedelta(minutes=settings.login_lockout_minutes)
    newly_locked = False
    for throttle, limit in (
        (account_throttle, settings.login_max_failures),
        (network_throttle, settings.login_max_failures * IP_FAILURE_FACTOR),
    ):
        throttle.failures += 1
        if throttle.failures >= limit and not _locked(throttle, now):
            throttle.locked_until = now + lockout
            newly_locked |= throttle is account_throttle
        session.add(throttle)
    if newly_locked and user is not None:
        user.locked_until = account_throttle.locked_until
        session.add(user)
        mail.enqueue(session, kind="sign_in_locked", user_id=user.id, params={"failures": account_throttle.failures}, now=now)
    session.commit()
    raise SignInFailed("Email or password is incorrect.")


@mail.renders("sign_in_locked")
def _locked_mail(session: Session, queued: OutboxMail, now: datetime) -> mail.Message | None:
    user = mail.recipient(session, queued)
    if user is None:
        return None
    settings = get_settings()
    return mail.Message(
        to=user.email,
        subject="Sign-in to your ClearBG account was locked",
        body=f"There were {queued.params['failures']} failed attempts to sign in to your account, so sign-in "
        f"is locked for {plural(settings.login_lockout_minutes, 'minute')}. If this was not you, consider changing "
        f"your password: {settings.public_url}/forgot-password\n",
    )


def start_session(
    session: Session, *, user: User, user_agent: str | None, ip: str | None, now: datetime | None = None
) -> str:
    """Record a signed-in browser and return the cookie token (only its hash is stored)."""
    refuse_suspended(user)
    now = now or utcnow()
    token = new_token()
    session.add(
        AuthSession(
            token_hash=sha256_hex(token),
            user_id=user.id,
            created_at=now,
            last_seen_at=now,
            expires_at=now + timedelta(days=get_settings().session_days),
            user_agent=coarse_user_agent(user_agent, with_system=True),
            ip_prefix=ip_prefix(ip),
        )
    )
    session.commit()
    return token


@dataclass(frozen=True)
class SignedIn:
    user: User
    auth_session: AuthSession


def resolve_session(
    session: Session, *, token: str | None = None, token_hash: str | None = None, now: datetime | None = None
) -> SignedIn | None:
    """The user behind a session cookie (its `token`, or the `token_hash` that Reflex's state holds
    instead), if the session is live; slides its expiry forward."""
    token_hash = token_hash or (sha256_hex(token) if token else None)
    if not token_hash:
        return None
    now = now or utcnow()
    auth_session = session.exec(select(AuthSession).where(AuthSession.token_hash == token_hash)).first()
    if auth_session is None or auth_session.revoked_at is not None or as_utc(auth_session.expires_at) <= now:
        return None
    user = session.get(User, auth_session.user_id)
    if user is None or user.suspended_at is not None or is_locked(session, user_id=user.id):
        return None
    if now - as_utc(auth_session.last_seen_at) >= SESSION_TOUCH:
        auth_session.last_seen_at = now
        auth_session.expires_at = now + timedelta(days=get_settings().session_days)
        session.add(auth_session)
        session.commit()
    return SignedIn(user=user, auth_session=auth_session)


def active_sessions(session: Session, *, user: User, now: datetime | None = None) -> list[AuthSession]:
    now = now or utcnow()
    return list(
        session.exec(
            select(AuthSession)
            .where(
                AuthSession.user_id == user.id,
                col(AuthSession.revoked_at).is_(None),
                col(AuthSession.expires_at) > now,
            )
            .order_by(col(AuthSession.last_seen_at).desc())
        ).all()
    )


def revoke_sessions(
    session: Session,
    *,
    user: User,
    session_id: uuid.UUID | None = None,
    keep_id: uuid.UUID | None = None,
    now: datetime | None = None,
) -> int:
    """Revoke one of the user's sessions (`session_id`), or all of them but `keep_id`. Returns how many."""
    now = now or utcnow()
    revoked = 0
    for auth_session in active_sessions(session, user=user, now=now):
        if (session_id is None or auth_session.id == session_id) and auth_session.id != keep_id:
            auth_session.revoked_at = now
            session.add(auth_session)
            revoked += 1
    session.commit()
    return revoked


def end_session(session: Session, *, token: str | None, now: datetime | None = None) -> None:
    """Sign-out: revoke the session behind this cookie token, if any."""
    signed_in = resolve_session(session, token=token, now=now)
    if signed_in is not None:
        revoke_sessions(session, user=signed_in.user, session_id=signed_in.auth_session.id, now=now)


# Passwords and email changes -----------------------------------------------------------------------


def _password_fingerprint(user: User) -> str:
    """Changes whenever the password does, so a reset link works once."""
    return sha256_hex(user.password_hash or "no-password")[:16]


def request_password_reset(session: Session, *, email: str, ip: str | None, now: datetime | None = None) -> None:
    """Queue a reset link for `email`. The mail worker sends it only if the address has an account, so
    this does the same work either way (and says nothing): its timing tells no one who has one."""
    try:
        address = normalize_email(email)
    except AccountError:
        return
    _limit_requests(ip=ip, email=address)
    mail.enqueue(session, kind="password_reset", to=address, now=now)
    session.commit()


@mail.renders("password_reset")
def _reset_mail(session: Session, queued: OutboxMail, now: datetime) -> mail.Message | None:
    user = _user_by_email(session, queued.to_address) if queued.to_address else None
    if user is None:
        return None
    return _link_message(
        to=user.email,
        name=user.display_name,
        subject="Reset your ClearBG password",
        purpose="reset-password",
        payload={"u": str(user.id), "p": _password_fingerprint(user)},
        valid_for=timedelta(minutes=RESET_MINUTES),
        path="/auth/reset-password",
        intro="set a new password with this link, which works once,",
        outro="If you did not ask for this, ignore this email; your password stays as it is.",
        now=now,
    )


def reset_password(session: Session, *, token: str, new_password: str, now: datetime | None = None) -> User:
    """Set a new password from a reset link; every session of the user is revoked."""
    now = now or utcnow()
    payload = _unsign(session, "reset-password", token, now)
    user = session.get(User, uuid.UUID(payload["u"]))
    if user is None or payload.get("p") != _password_fingerprint(user):
        raise AccountError("This reset link has already been used. Ask for a new one.")
    user.password_hash = hash_password(check_new_password(new_password, email=user.email))
    user.locked_until = None
    session.add(user)
    throttle = session.get(LoginThrottle, "email:" + sha256_hex(user.email))
    if throttle is not None:
        session.delete(throttle)
    session.commit()
    revoke_sessions(session, user=user, now=now)
    return user


def change_password(
    session: Session,
    *,
    user: User,
    current_password: str,
    new_password: str,
    keep_session_id: uuid.UUID,
    now: datetime | None = None,
) -> None:
    """Needs the current password; signs out every other browser."""
    if not verify_password(user.password_hash, current_password or ""):
        raise AccountError("Your current password is not correct.")
    user.password_hash = hash_password(check_new_password(new_password, email=user.email))
    session.add(user)
    session.commit()
    revoke_sessions(session, user=user, keep_id=keep_session_id, now=now)


def request_email_change(
    session: Session, *, user: User, new_email: str, password: str, now: datetime | None = None
) -> None:
    """Send a confirmation link to the new address. Whether that address is taken is not revealed."""
    now = now or utcnow()
    if user.password_hash is not None and not verify_password(user.password_hash, password or ""):
        raise AccountError("Your password is not correct.")
    new_email = normalize_email(new_email)
    if new_email == user.email:
        raise AccountError("That is already your email address.")
    mail.enqueue(session, kind="email_change", user_id=user.id, to=new_email, now=now)
    session.commit()


@mail.renders("email_change")
def _email_change_mail(session: Session, queued: OutboxMail, now: datetime) -> mail.Message | None:
    """Nothing when the new address has an account (the request said nothing about it either)."""
    user, new_email = mail.recipient(session, queued), queued.to_address
    if user is None or not new_email or _user_by_email(session, new_email) is not None or user.email == new_email:
        return None
    return _link_message(
        to=new_email,
        name=user.display_name,
        subject="Confirm your new email address for ClearBG",
        purpose="change-email",
        payload={"u": str(user.id), "old": user.email, "new": new_email},
        valid_for=timedelta(hours=EMAIL_CHANGE_HOURS),
        path="/auth/email/confirm",
        intro="confirm that ClearBG should use this address by opening this link",
        now=now,
    )


def confirm_email_change(session: Session, *, token: str, now: datetime | None = None) -> User:
    now = now or utcnow()
    payload = _unsign(session, "change-email", token, now)
    user = session.get(User, uuid.UUID(payload["u"]))
    if user is None or user.email != payload.get("old"):
        raise AccountError("This link has already been used or is no longer valid.")
    if _user_by_email(session, payload["new"]) is not None:
        raise AccountError("That address now belongs to another account.")
    old_email, user.email, user.email_verified_at = user.email, payload["new"], now
    session.add(user)
    mail.enqueue(session, kind="email_changed", user_id=user.id, to=old_email, now=now)
    session.commit()
    return user


@mail.renders("email_changed")
def _email_changed_mail(session: Session, queued: OutboxMail, now: datetime) -> mail.Message | None:
    """To the old address."""
    user = mail.recipient(session, queued)
    if user is None or not queued.to_address:
        return None
    return mail.Message(
        to=queued.to_address,
        subject="Your ClearBG email address was changed",
        body=f"The email address of your ClearBG account is now {user.email}. If you "
        f"did not do this, reset your password at {get_settings().public_url}/forgot-password.\n",
    )


def update_display_name(session: Session, *, user: User, display_name: str) -> User:
    user.display_name = clean_display_name(display_name)
    session.add(user)
    session.commit()
    return user


# Third-party identities ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExternalIdentity:
    """Verified claims from an identity provider's ID token."""

    provider: str
    subject: str
    email: str
    email_verified: bool
    name: str


def sign_in_with_identity(
    session: Session,
    *,
    identity: ExternalIdentity,
    adult_confirmed: bool,
    policy_accepted: bool,
    now: datetime | None = None,
) -> User:
    """The user for a provider identity: already linked, linked now to the account with the same
    (provider-verified) email, or a new account when the person has given the sign-up confirmations."""
    now = now or utcnow()
    linked = session.exec(
        select(OAuthIdentity).where(OAuthIdentity.provider == identity.provider, OAuthIdentity.subject == identity.subject)
    ).first()
    if linked is not None:
        user = session.get(User, linked.user_id)
        if user is not None:
            refuse_if_pending(session, user_id=user.id, now=now)
            return user
    email = normalize_email(identity.email)
    user = _user_by_email(session, email)
    if user is not None:
        refuse_if_pending(session, user_id=user.id, now=now)
    if user is not None and not identity.email_verified:
        raise AccountError(
            "Your Google address is not verified, so it cannot be linked to an account. Sign in with your password."
        )
    if user is None:
        if not (adult_confirmed and policy_accepted):
            raise ConsentNeeded(
                "To create your account with Google, confirm that you are an adult and accept the privacy policy "
                "and the terms on the sign-up page."
            )
        user = _new_user(
            session,
            email=email,
            display_name=clean_display_name(identity.name or email.split("@")[0]),
            verified=identity.email_verified,
            now=now,
        )
    elif user.email_verified_at is None:
        # The address was never proven by whoever set the password: the provider has now proven it is
        # this person's, so the unproven password and its sessions go (no pre-registered hijack).
        user.password_hash = None
        _mark_verified(session, user, now)
        revoke_sessions(session, user=user, now=now)
    session.add(OAuthIdentity(user_id=user.id, provider=identity.provider, subject=identity.subject, email=email))
    session.commit()
    return user


def has_identity(session: Session, *, user: User, provider: str, subject: str) -> bool:
    """Whether this provider identity is linked to `user`."""
    linked = session.exec(
        select(OAuthIdentity).where(OAuthIdentity.provider == provider, OAuthIdentity.subject == subject)
    ).first()
    return linked is not None and linked.user_id == user.id


# Roles -----------------------------------------------------------------------------------------------


def make_admin(session: Session, *, email: str, now: datetime | None = None) -> tuple[User, bool]:
    """Give the account with `email` the admin role, creating it (verified, no password) if needed.
    Returns the user and whether it was created; a new admin sets a password through a reset link."""
    now = now or utcnow()
    email = normalize_email(email)
    user = _user_by_email(session, email)
    created = user is None
    if user is None:
        user = _new_user(session, email=email, display_name=email.split("@")[0][:MAX_NAME], verified=True, now=now)
    user.role = Role.ADMIN
    session.add(user)
    session.commit()
    return user, created


def require_admin(user: User | None) -> User:
    """The user if an admin; `PermissionError` otherwise (checked on the server for every admin action)."""
    if user is None or not user.is_admin:
        raise PermissionError("Admins only.")
    return user


def list_users(session: Session, *, admin: User, limit: int = 200) -> list[User]:
    """The newest accounts, for the admin area."""
    require_admin(admin)
    return list(session.exec(select(User).order_by(col(User.created_at).desc()).limit(limit)).all())
