"""A person who used every feature ClearBG has, for the privacy tests (export, deletion)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest
from sqlalchemy import inspect, text

from clearbg_app.http.cookies import SESSION_COOKIE
from clearbg_app.models import ApiUsage, EntryKind, PolicyNoticeEmail, RequestLog, User
from clearbg_app.services import (
    accounts,
    analytics,
    api_keys,
    audit,
    batches,
    billing,
    consents,
    credits,
    exports,
    holds,
    images,
    policies,
    privacy_choices,
    removal,
    requests,
)
from clearbg_app.services.security import sign
from tests.conftest import sample_bytes
from tests.factories import ORIGIN

PASSWORD = "correct-horse-battery"
EMAIL = "grace.hopper@example.com"
NAME = "Grace Brewster Hopper"
IP = "203.0.113.77"
IP_PREFIX = "203.0.113.0/24"
USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) GraceBrowser/1.0"


@dataclass
class Everything:
    user: User
    session_token: str
    api_secret: str
    image_ids: list


def new_user(session, clock, *, email=EMAIL, name=NAME, verified=True) -> User:
    user = accounts.sign_up(
        session, email=email, display_name=name, password=PASSWORD, adult_confirmed=True, policy_accepted=True, ip=IP, now=clock()
    )
    if verified:
        user.email_verified_at = clock()
        session.add(user)
        session.commit()
    return user


def signed_in(client, session, clock, email=EMAIL) -> User:
    """A new confirmed person, signed in on `client` through the sign-in form."""
    user = new_user(session, clock, email=email)
    response = client.post("/auth/login", data={"email": email, "password": PASSWORD}, headers=ORIGIN)
    assert response.status_code == 303 and SESSION_COOKIE in client.cookies
    return user


def every_feature(session, store, clock) -> Everything:
    """Password and Google sign-in, a session, an API key and its use, every consent (one withdrawn
    again), images, a batch, an order with credits, request logs, an analytics event, a privacy request
    by message with a reply, a legal hold (lifted) and a ready export."""
    user = new_user(session, clock)
    accounts.sign_in_with_identity(
        session,
        identity=accounts.ExternalIdentity("google", "google-sub-grace", EMAIL, True, NAME),
        adult_confirmed=False,
        policy_accepted=False,
        now=clock(),
    )
    user = session.get(User, user.id)
    user.password_hash = accounts.hash_password(PASSWORD)  # linking dropped nothing: it was verified
    session.add(user)
    session.commit()
    token = accounts.start_session(session, user=user, user_agent=USER_AGENT, ip=IP, now=clock())
    key, secret = api_keys.create_key(session, user=user, label=f"{NAME}'s shop", now=clock())
    for purpose in consents.PURPOSE_KEYS:
        privacy_choices.set_consent(session, user=user, purpose=purpose, granted=True, source="privacy_center", now=clock())
    clock.advance(seconds=1)
    privacy_choices.set_consent(session, user=user, purpose=consents.MARKETING_EMAIL, granted=False, source="privacy_center", now=clock())
    image = images.store_upload(
        session, store=store, data=sample_bytes("horse.jpg"), filename=f"{NAME} portrait.jpg", visitor_hash="v" * 64, user_id=user.id, now=clock()
    )
    image.result_key = store.put(b"\x89PNG result", suffix=".png")
    session.add(image)
    analytics.record_event(session, user_id=user.id, name="image_processed", now=clock())
    order = billing.new_order(session, user_id=user.id, plan=billing.plan_by_code(session, "pack_10"), now=clock(), receipt_url="https://pay.example/receipt/1")
    credits.grant(session, user_id=user.id, units=1000, kind=EntryKind.PURCHASE, reason="Pack", reference=f"order:{order.id}", order_id=order.id, now=clock())
    batches.create_batch(
        session, store=store, user_id=user.id, api_key_id=key.id, options=removal.RemovalOptions(),
        sources=[batches.Source(filename=f"{NAME} batch.jpg", data=sample_bytes("horse.jpg"))], now=clock(),
    )
    policy = policies.current_version(session, kind="privacy", now=clock())
    policies.acknowledge(session, user=user, version_id=policy.id, now=clock())  # the banner of a material change
    session.add(PolicyNoticeEmail(user_id=user.id, version_id=policy.id, sent_at=clock()))  # and its email
    session.add(ApiUsage(at=clock(), user_id=user.id, api_key_id=key.id, size="preview", width=10, height=10, latency_ms=5, status=200))
    session.add(RequestLog(at=clock(), method="GET", path="/account", status=200, latency_ms=3, user_id=user.id, user_agent=USER_AGENT, ip_prefix=IP_PREFIX))
    audit.record(session, action="credits.adjusted", actor=None, target_type="user", target_id=user.id, after={"units": 5}, now=clock())
    session.commit()
    with pytest.raises(accounts.SignInFailed):  # a failed sign-in leaves a (hashed) throttle row
        accounts.authenticate(session, email=EMAIL, password="not-the-password", ip=IP, now=clock())
    request = requests.submit(session, kind="access", email=EMAIL, message=f"I am {NAME}; send me my data.", ip=IP, now=clock())
    requests.confirm(session, token=sign(requests.CONFIRM_PURPOSE, {"r": str(request.id)}, expires_at=clock() + timedelta(hours=1)), now=clock())
    admin = accounts.make_admin(session, email="dpo@example.com", now=clock())[0]
    requests.reply(session, admin=admin, request_id=request.id, body=f"Dear {NAME}, your export follows.", now=clock())
    holds.place_hold(session, admin=admin, user_id=user.id, reason=f"Court order about {NAME}", until=clock() + timedelta(days=1), now=clock())
    holds.lift_hold(session, admin=admin, user_id=user.id, now=clock())
    exports.request_export(session, user=user, now=clock())
    exports.build_pending(session, store=store, clock=clock)
    clock.advance(minutes=1)
    return Everything(user=user, session_token=token, api_secret=secret, image_ids=[image.id])


def dump_database(session) -> str:
    """Every row of every table, all columns, as one string."""
    connection = session.connection()
    lines = []
    for table in inspect(connection).get_table_names():
        for row in connection.execute(text(f'SELECT * FROM "{table}"')):
            lines.append(f"{table}: {tuple(row)}")
    return "\n".join(lines)


def dump_blobs(store) -> bytes:
    return b"".join(store.get(key) for key in store.keys())

