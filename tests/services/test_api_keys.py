"""API keys on SQLite and PostgreSQL: shown once, stored hashed, revoked at once."""

from __future__ import annotations

import pytest
from sqlmodel import select

from clearbg_app.models import ApiKey
from clearbg_app.services import api_keys
from clearbg_app.services.accounts import AccountError
from clearbg_app.services.errors import NotFound
from tests.factories import sign_up, verified_user


def test_key_is_shown_once_and_stored_as_a_hash(session, clock):
    user = verified_user(session, clock)
    key, secret = api_keys.create_key(session, user=user, label="  Shop   importer ", now=clock())
    assert secret.startswith("cbg_live_") and len(secret) > 40
    stored = session.exec(select(ApiKey)).one()
    assert stored.label == "Shop importer" and stored.prefix == secret[:15]
    assert secret not in (stored.secret_hash, stored.prefix, stored.label)
    owner, found = api_keys.authenticate_key(session, secret=secret, now=clock())
    assert (owner.id, found.id) == (user.id, key.id)
    assert found.last_used_at is not None
    assert [k.id for k in api_keys.list_keys(session, user=user)] == [key.id]


def test_revoked_key_stops_working_at_once(session, clock):
    user = verified_user(session, clock)
    key, secret = api_keys.create_key(session, user=user, label="CI", now=clock())
    api_keys.revoke_key(session, user=user, key_id=key.id, now=clock())
    assert api_keys.authenticate_key(session, secret=secret, now=clock()) is None
    assert api_keys.list_keys(session, user=user) == []
    with pytest.raises(NotFound):
        api_keys.revoke_key(session, user=user, key_id=key.id, now=clock())


def test_only_the_owner_revokes(session, clock):
    owner = verified_user(session, clock)
    other = verified_user(session, clock, email="eve@example.com", name="Eve")
    key, secret = api_keys.create_key(session, user=owner, label="mine", now=clock())
    with pytest.raises(NotFound):
        api_keys.revoke_key(session, user=other, key_id=key.id, now=clock())
    assert api_keys.authenticate_key(session, secret=secret, now=clock())


def test_unverified_accounts_cannot_create_keys(session, clock):
    user = sign_up(session, clock)
    with pytest.raises(AccountError, match="Confirm your email"):
        api_keys.create_key(session, user=user, label="too early", now=clock())


@pytest.mark.parametrize("label", ["", "   ", "x" * 81])
def test_labels_are_required_and_bounded(session, clock, label):
    user = verified_user(session, clock)
    with pytest.raises(AccountError, match="label"):
        api_keys.create_key(session, user=user, label=label, now=clock())


@pytest.mark.parametrize("secret", [None, "", "cbg_live_", "cbg_live_wrong", "sk_live_abc", "cbg_live_" + "a" * 200])
def test_unknown_and_malformed_secrets_are_refused(session, clock, secret):
    user = verified_user(session, clock)
    api_keys.create_key(session, user=user, label="real", now=clock())
    assert api_keys.authenticate_key(session, secret=secret, now=clock()) is None
