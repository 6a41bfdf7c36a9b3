"""Google sign-in end to end against a real OIDC provider on loopback, on SQLite and PostgreSQL.

Each sign-in is driven by hand: the app's login route, the provider's `/authorize` over HTTP, then
the callback URL it redirects to, back into the app. Every refused case checks that no user,
identity or session row appeared and that the log names the reason without the code or the email.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from http.cookies import Morsel, SimpleCookie
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlmodel import Session, func, select
from starlette.applications import Starlette
from starlette.testclient import TestClient

from clearbg_app.api.web import google
from clearbg_app.db import get_engine
from clearbg_app.http.cookies import SESSION_COOKIE
from clearbg_app.http.redirects import safe_next
from clearbg_app.models import AuthSession, OAuthIdentity, User
from clearbg_app.services import accounts
from clearbg_app.services.security import sha256_hex
from tests.factories import APP_URL, CONSENTS, approve, configure_google, sign_in, start
from tests.oidc_provider import CLIENT_ID


@pytest.fixture
def client(provider) -> TestClient:
    return TestClient(Starlette(routes=google.google_routes()), base_url=APP_URL, follow_redirects=False)


@contextmanager
def closed_port() -> Iterator[int]:
    """A loopback port where nothing listens (bound, never listening) while the block runs."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def set_cookies(response: httpx.Response) -> dict[str, Morsel]:
    """Each Set-Cookie header of `response`, parsed, by cookie name."""
    morsels = {}
    for header in response.headers.get_list("set-cookie"):
        morsels.update(SimpleCookie(header))
    return morsels


def counts() -> tuple[int, int, int]:
    with Session(get_engine()) as session:
        tables = (User, OAuthIdentity, AuthSession)
        return tuple(session.exec(select(func.count()).select_from(model)).one() for model in tables)


def assert_refused(response, before, caplog, provider, callback_url, *, reason, to="/login?error=google_failed"):
    """Redirected to `to`, nothing written, the state cookie dropped, the reason logged without secrets."""
    assert response.status_code == 303 and response.headers["location"] == to
    cookies = set_cookies(response)
    assert SESSION_COOKIE not in cookies
    assert cookies["clearbg_google"].value == "" and cookies["clearbg_google"]["max-age"] == "0"  # one try only
    assert counts() == before
    assert reason in caplog.text
    code = parse_qs(urlsplit(callback_url).query).get("code", ["<no code>"])[0]
    assert code not in caplog.text and provider.user.email not in caplog.text
    caplog.clear()


def make_user(session, *, email: str, verified: bool) -> User:
    user = accounts.sign_up(
        session,
        email=email,
        display_name="Existing Ada",
        password="a long enough password 42",
        adult_confirmed=True,
        policy_accepted=True,
        ip="127.0.0.1",
    )
    if verified:
        user.email_verified_at = user.created_at
        session.add(user)
        session.commit()
    return user


def test_login_sends_pkce_state_and_nonce_and_keeps_them_in_a_short_lived_cookie(client, provider):
    response = start(client, "next=/account/keys&adult=1&accept=1")
    url = urlsplit(response.headers["location"])
    params = {key: values[0] for key, values in parse_qs(url.query).items()}
    assert f"{url.scheme}://{url.netloc}{url.path}" == f"{provider.url}/authorize"
    assert params["client_id"] == CLIENT_ID and params["response_type"] == "code"
    assert params["scope"].split() == ["openid", "email", "profile"]
    assert params["redirect_uri"] == f"{APP_URL}/auth/google/callback"
    assert params["code_challenge_method"] == "S256" and len(params["code_challenge"]) == 43
    assert len(params["state"]) >= 32 and len(params["nonce"]) >= 32 and params["state"] != params["nonce"]
    cookie = set_cookies(response)["clearbg_google"]
    assert cookie["httponly"] and cookie["samesite"] == "lax" and cookie["path"] == "/auth/google"
    assert cookie["max-age"] == "600" and not cookie["secure"]
    second = start(client)
    assert parse_qs(urlsplit(second.headers["location"]).query)["state"][0] != params["state"]


def test_new_account_with_consents_is_created_and_signed_in(client, provider):
    response, _ = sign_in(client, "next=/account/keys&adult=1&accept=1")
    assert response.status_code == 303 and response.headers["location"] == "/account/keys"
    session_cookie = set_cookies(response)
    token = session_cookie[SESSION_COOKIE].value
    assert session_cookie[SESSION_COOKIE]["httponly"] and session_cookie[SESSION_COOKIE]["samesite"] == "lax"
    assert session_cookie["clearbg_google"]["max-age"] == "0"  # the one-time state cookie is gone
    with Session(get_engine()) as session:
        user = session.exec(select(User)).one()
        identity = session.exec(select(OAuthIdentity)).one()
        auth_session = session.exec(select(AuthSession)).one()
    assert (user.email, user.display_name, user.is_verified) == ("ada@example.com", "Ada Lovelace", True)
    assert user.adult_confirmed_at is not None and user.policy_accepted_at is not None and user.password_hash is None
    assert (identity.provider, identity.subject, identity.user_id) == ("google", "google-sub-1001", user.id)
    assert auth_session.user_id == user.id and auth_session.token_hash == sha256_hex(token)
    assert auth_session.user_agent == "other"  # only the browser family is kept, and "testclient" is none
    assert provider.hits["auth:client_secret_basic"] == 1 and provider.hits["token"] == 1


@pytest.mark.parametrize(
    ("google_name", "display_name"),
    [("A" * 100, "A" * 80), ("Ada \U0001F469\u200d\U0001F4BB", "ada"), ("", "ada")],
)
def test_a_google_name_clearbg_cannot_use_still_makes_an_account(client, provider, google_name, display_name):
    provider.user.name = google_name
    response, _ = sign_in(client)
    assert response.status_code == 303 and response.headers["location"] == "/account"
    with Session(get_engine()) as session:
        assert session.exec(select(User)).one().display_name == display_name


def test_a_provider_that_only_takes_form_credentials_gets_them(client, provider):
    provider.auth_methods = ["client_secret_post"]
    response, _ = sign_in(client)
    assert response.status_code == 303 and response.headers["location"] == "/account"
    assert provider.hits["auth:client_secret_post"] == 1 and "auth:client_secret_basic" not in provider.hits


def test_new_account_without_consents_is_sent_to_sign_up(client, provider, caplog):
    before = counts()
    response, callback_url = sign_in(client, "adult=1")
    assert_refused(
        response, before, caplog, provider, callback_url,
        reason="needs the sign-up confirmations", to="/signup?error=google_consent",
    )


def test_verified_google_email_links_the_existing_account(client, provider, session):
    existing = make_user(session, email="Ada@Example.com", verified=True)
    response, _ = sign_in(client, "")  # no consents needed: the account exists
    assert response.status_code == 303 and response.headers["location"] == "/account"
    assert counts() == (1, 1, 1)
    with Session(get_engine()) as check:
        identity = check.exec(select(OAuthIdentity)).one()
        assert identity.user_id == existing.id and check.exec(select(AuthSession)).one().user_id == existing.id


def test_unverified_google_email_does_not_link_the_existing_account(client, provider, session, caplog):
    existing = make_user(session, email="ada@example.com", verified=True)
    provider.user.email_verified = False
    before = counts()
    response, callback_url = sign_in(client, CONSENTS)
    assert_refused(
        response, before, caplog, provider, callback_url,
        reason="unverified Google address", to="/login?error=google_unverified",
    )
    with Session(get_engine()) as check:
        assert check.get(User, existing.id).email_verified_at is not None


def test_later_sign_ins_reuse_the_identity_cached_metadata_and_follow_key_rotation(client, provider):
    first, _ = sign_in(client)
    second, _ = sign_in(client, "")  # a returning user needs no consents
    assert first.status_code == second.status_code == 303
    assert counts() == (1, 1, 2)
    assert (provider.hits["discovery"], provider.hits["jwks"]) == (1, 1)
    provider.rotate_key()
    third, _ = sign_in(client, "")
    assert third.status_code == 303 and third.headers["location"] == "/account"
    assert counts() == (1, 1, 3) and provider.hits["jwks"] == 2


def test_wrong_missing_forged_or_stale_state_is_refused_before_the_code_is_spent(
    client, provider, caplog, monkeypatch
):
    before = counts()
    callback_url = approve(start(client).headers["location"])
    state_cookie = client.cookies["clearbg_google"]
    forged = callback_url.replace("state=", "state=x")
    assert_refused(client.get(forged), before, caplog, provider, forged, reason="state does not match")
    stranger = TestClient(client.app, base_url=APP_URL, follow_redirects=False)  # a browser without the cookie
    assert_refused(stranger.get(callback_url), before, caplog, provider, callback_url, reason="no state cookie")
    body, _, _ = state_cookie.partition(".")
    tampered = stranger.get(callback_url, headers={"cookie": f"clearbg_google={body}.AAAA"})
    assert_refused(tampered, before, caplog, provider, callback_url, reason="state cookie invalid or expired")
    later = google.utcnow() + timedelta(minutes=google.STATE_MINUTES, seconds=1)
    monkeypatch.setattr(google, "utcnow", lambda: later)
    stale = stranger.get(callback_url, headers={"cookie": f"clearbg_google={state_cookie}"})
    assert_refused(stale, before, caplog, provider, callback_url, reason="state cookie invalid or expired")
    assert provider.hits["token"] == 0


def test_a_replayed_code_is_refused(client, provider, caplog):
    callback_url = approve(start(client).headers["location"])
    state_cookie = client.cookies["clearbg_google"]
    first = client.get(callback_url)
    assert first.status_code == 303 and first.headers["location"] == "/account"
    after_first = counts()
    replay = client.get(callback_url, headers={"cookie": f"clearbg_google={state_cookie}"})
    assert_refused(
        replay, after_first, caplog, provider, callback_url, reason="token endpoint refused the code (invalid_grant)"
    )


@pytest.mark.parametrize(
    ("misbehaviour", "reason"),
    [
        ("wrong_key", "ID token signature rejected (bad_signature"),
        ("wrong_audience", "ID token rejected (invalid_claim: Invalid claim: 'aud'"),
        ("wrong_issuer", "ID token rejected (invalid_claim: Invalid claim: 'iss'"),
        ("expired", "ID token rejected (expired_token"),
        ("wrong_nonce", "ID token rejected (invalid_claim: Invalid claim: 'nonce'"),
        ("deny", "provider answered error=access_denied"),
        ("slow_token", "token endpoint unavailable (ReadTimeout)"),
    ],
)
def test_a_misbehaving_provider_signs_nobody_in(client, provider, caplog, monkeypatch, misbehaviour, reason):
    monkeypatch.setattr(google, "HTTP_TIMEOUT", httpx.Timeout(0.5))
    provider.break_rule(misbehaviour)
    before = counts()
    response, callback_url = sign_in(client)
    assert_refused(response, before, caplog, provider, callback_url, reason=reason)


def test_an_unreachable_or_mismatched_provider_is_a_failed_sign_in(client, provider, monkeypatch, caplog):
    with closed_port() as port:
        configure_google(monkeypatch, CLIENT_ID, f"http://127.0.0.1:{port}/.well-known/openid-configuration")
        response = client.get(f"/auth/google/login?{CONSENTS}")
    assert response.status_code == 303 and response.headers["location"] == "/login?error=google_failed"
    assert "discovery document unavailable (ConnectError)" in caplog.text
    configure_google(monkeypatch, CLIENT_ID, provider.discovery_url)
    provider.break_rule("foreign_discovery")  # a document naming an issuer other than the configured URL
    for attempt in (1, 2):  # a bad document is not cached
        response = client.get(f"/auth/google/login?{CONSENTS}")
        assert response.status_code == 303 and response.headers["location"] == "/login?error=google_failed"
        assert provider.hits["discovery"] == attempt and provider.hits["authorize"] == 0
    assert "discovery document names another issuer" in caplog.text


def test_google_sign_in_is_off_without_a_client_id(client, provider, monkeypatch):
    configure_google(monkeypatch, "", provider.discovery_url)
    for path in ("/auth/google/login", "/auth/google/callback?code=x&state=y"):
        response = client.get(path)
        assert response.status_code == 404 and response.text == "Google sign-in is not enabled on this server."
    assert provider.hits["discovery"] == 0


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("/account/keys?tab=2", "/account/keys?tab=2"),
        (None, "/account"),
        ("", "/account"),
        ("https://evil.example/", "/account"),
        ("//evil.example/x", "/account"),
        ("/\\evil.example", "/account"),
        ("/a\r\nSet-Cookie: x=1", "/account"),
        ("account", "/account"),
        ("/" + "a" * 600, "/account"),
    ],
)
def test_next_is_only_ever_a_local_path(raw, expected):
    assert safe_next(raw, "/account") == expected


def test_a_link_cannot_give_the_sign_up_consents(client, session, provider):
    callback_url = approve(client.get("/auth/google/login?adult=1&accept=1").headers["location"])
    response = client.get(callback_url)
    assert response.headers["location"] == "/signup?error=google_consent"
    assert session.exec(select(User)).all() == []


def test_consent_form_from_another_site_is_refused(client, session, provider):
    response = client.post("/auth/google/login", data={"adult": "1", "accept": "1"}, headers={"origin": "https://evil.example"})
    assert response.status_code == 303 and response.headers["location"] == "/login?error=google_failed"
