"""A Google-only account confirms its deletion with a fresh Google sign-in (prompt=login, max_age and
the ID token's auth_time), against the loopback OIDC provider, on SQLite and PostgreSQL."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from sqlmodel import select
from starlette.applications import Starlette
from starlette.testclient import TestClient

from clearbg_app.api.web import google
from clearbg_app.api.web.privacy import privacy_routes
from clearbg_app.http.cookies import SESSION_COOKIE
from clearbg_app.models import AccountDeletion, User
from clearbg_app.services import accounts
from tests.factories import APP_URL, approve, flash_of, sign_in
from tests.oidc_provider import TestUser

ORIGIN = {"origin": APP_URL}
DELETE = {"purpose": "delete", "confirm": "on"}


@pytest.fixture
def client(provider) -> TestClient:
    provider.user = TestUser(sub="google-only-1", email="gonly@example.com", name="G Only")
    routes = [*google.google_routes(), *privacy_routes()]
    client = TestClient(Starlette(routes=routes), base_url=APP_URL, follow_redirects=False)
    response, _ = sign_in(client)  # a new Google-only account, signed in
    assert response.status_code == 303 and SESSION_COOKIE in client.cookies
    return client


def confirm_with_google(client, form=DELETE):
    start = client.post("/auth/google/login", data=form, headers=ORIGIN)
    if start.status_code != 302:
        return start
    query = parse_qs(urlsplit(start.headers["location"]).query)
    assert query["prompt"] == ["login"] and query["max_age"] == ["300"]
    return client.get(approve(start.headers["location"]))


def deletions(session):
    session.expire_all()
    return session.exec(select(AccountDeletion)).all()


def test_a_fresh_google_sign_in_confirms_the_deletion(client, session):
    response = confirm_with_google(client)
    assert response.headers["location"].startswith("/login?") and "will be deleted" in flash_of(response)["msg"]
    user = session.exec(select(User).where(User.email == "gonly@example.com")).one()
    assert [d.user_id for d in deletions(session)] == [user.id]
    assert accounts.active_sessions(session, user=user) == []


def test_the_password_form_tells_google_only_accounts_what_to_do(client, session):
    response = client.post("/privacy/delete", data={"password": "", "confirm": "on"}, headers=ORIGIN)
    assert "signing in with Google again" in flash_of(response)["msg"]
    assert deletions(session) == []


def test_refused_without_the_tick_a_stale_sign_in_or_another_identity(client, session, provider):
    response = confirm_with_google(client, {"purpose": "delete"})
    assert response.headers["location"] == "/privacy-center?error=delete_unconfirmed"
    provider.break_rule("stale_auth")
    assert confirm_with_google(client).headers["location"] == "/privacy-center?error=reauth_stale"
    provider.reset()
    provider.user = TestUser(sub="someone-else", email="else@example.com", name="Else")
    assert confirm_with_google(client).headers["location"] == "/privacy-center?error=reauth_mismatch"
    assert deletions(session) == []
