"""The `/auth/*` routes through Starlette's TestClient, on SQLite and PostgreSQL; mail through a real
SMTP sink; and no secret in any log line or request-log row."""

from __future__ import annotations

import base64
import logging
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlmodel import select
from starlette.testclient import TestClient

from clearbg_app.api import build_api
from clearbg_app.api.middleware.request_log import writer
from clearbg_app.http.cookies import SESSION_COOKIE
from clearbg_app.http.flash import read_flash
from clearbg_app.http.redirects import safe_next
from clearbg_app.log_redaction import RedactSecrets
from clearbg_app.models import AuthSession, RequestLog, User
from clearbg_app.services import mail
from clearbg_app.settings import get_settings
from tests.factories import ORIGIN, PASSWORD, SIGN_UP, flash_of, sign_up_and_in
from tests.mail import smtp_sink, token_in


@pytest.fixture
def client(db_url) -> TestClient:
    return TestClient(build_api(), follow_redirects=False)


def test_form_posts_from_other_sites_are_refused(client, session):
    for headers in ({}, {"origin": "https://evil.example"}, {"referer": "https://evil.example/page"}):
        response = client.post("/auth/signup", data=SIGN_UP, headers=headers)
        assert response.status_code == 403
    assert session.exec(select(User)).all() == []


def test_form_posts_must_match_scheme_host_and_port(client, session, monkeypatch):
    """The site is http://testserver (and its public URL): another scheme, port or host is another origin."""
    monkeypatch.setenv("CLEARBG_PUBLIC_URL", "https://clearbg.example")
    monkeypatch.setenv("CLEARBG_CORS_ORIGINS", "https://www.clearbg.example")
    get_settings.cache_clear()
    foreign = ("https://testserver", "http://testserver:8080", "ws://testserver", "http://testserver.evil.example",
               "http://[::1", "null", "https://clearbg.example:444", "http://clearbg.example", "testserver")  # fmt: skip
    for origin in foreign:
        for header in ("origin", "referer"):
            assert client.post("/auth/signup", data=SIGN_UP, headers={header: origin}).status_code == 403, (header, origin)
    assert session.exec(select(User)).all() == []
    for number, origin in enumerate(("http://testserver:80", "https://clearbg.example", "https://CLEARBG.example:443/page",
                                     "https://www.clearbg.example")):  # fmt: skip
        form = {**SIGN_UP, "email": f"ada{number}@example.com"}
        assert client.post("/auth/signup", data=form, headers={"referer": origin}).status_code == 303, origin


def test_sign_up_signs_in_at_once_with_an_http_only_cookie(client, session):
    response = client.post("/auth/signup", data=SIGN_UP, headers=ORIGIN)
    assert response.headers["location"].startswith("/account?m=")
    assert flash_of(response)["kind"] == "info" and "you are signed in" in flash_of(response)["msg"]
    assert "free monthly credits, buy credits and create API keys" in flash_of(response)["msg"]  # what confirming unlocks
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=") and "HttpOnly" in cookie and "SameSite=lax" in cookie
    [row] = session.exec(select(AuthSession)).all()
    assert row.user_id == session.exec(select(User)).one().id and row.revoked_at is None


def test_sign_up_with_a_taken_address_signs_nobody_in(client, session):
    client.post("/auth/signup", data=SIGN_UP, headers=ORIGIN)
    client.cookies.clear()
    response = client.post("/auth/signup", data={**SIGN_UP, "password": "another-long-password"}, headers=ORIGIN)
    assert response.headers["location"].startswith("/login?m=") and "Confirm your address" in flash_of(response)["msg"]
    assert SESSION_COOKIE not in response.headers.get("set-cookie", "") and SESSION_COOKIE not in client.cookies
    assert len(session.exec(select(AuthSession)).all()) == 1  # only the first sign-up's


def test_sign_in_sets_an_http_only_cookie(client, session, monkeypatch):
    client.post("/auth/signup", data=SIGN_UP, headers=ORIGIN)
    client.cookies.clear()
    response = client.post(
        "/auth/login", data={"email": "ada@example.com", "password": PASSWORD, "next": "/account"}, headers=ORIGIN
    )
    assert response.headers["location"] == "/account"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=") and "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert "Secure" not in cookie  # development; production sets it (tested below)
    assert len(session.exec(select(AuthSession)).all()) == 2  # the sign-up's and this one


def test_sign_up_errors_come_back_with_the_fields_but_never_the_password(client, session):
    response = client.post("/auth/signup", data={**SIGN_UP, "password": "short"}, headers=ORIGIN)
    flash = flash_of(response)
    assert urlsplit(response.headers["location"]).path == "/signup"
    assert flash["kind"] == "error" and "at least 10" in flash["msg"]
    assert flash["fields"] == {"email": "ada@example.com", "display_name": "Ada"}
    assert "short" not in response.headers["location"]
    body = parse_qs(urlsplit(response.headers["location"]).query)["m"][0].split(".")[0]
    assert b"ada@example.com" not in base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))  # the URL hides the fields
    assert session.exec(select(User)).all() == []


def test_wrong_password_sets_no_cookie(client):
    client.post("/auth/signup", data=SIGN_UP, headers=ORIGIN)
    response = client.post("/auth/login", data={"email": "ada@example.com", "password": "wrong-password!"}, headers=ORIGIN)
    assert flash_of(response)["msg"] == "Email or password is incorrect."
    assert "set-cookie" not in response.headers or SESSION_COOKIE not in response.headers["set-cookie"]


def test_sign_out_revokes_the_session_server_side(client, session):
    sign_up_and_in(client)
    token = client.cookies[SESSION_COOKIE]
    response = client.post("/auth/logout", headers=ORIGIN)
    assert response.headers["location"] == "/" and 'clearbg_session=""' in response.headers["set-cookie"]
    assert session.exec(select(AuthSession)).one().revoked_at is not None
    client.cookies.set(SESSION_COOKIE, token)  # a stolen cookie of the signed-out session
    response = client.post("/auth/password", data={"current_password": PASSWORD, "new_password": "x" * 12}, headers=ORIGIN)
    assert response.headers["location"] == "/login?next=%2Faccount"


def test_verification_link_route(client, session, data_dir):
    from tests.mail import outbox

    client.post("/auth/signup", data=SIGN_UP, headers=ORIGIN)
    token = token_in(outbox(data_dir)[0], "/auth/verify")
    response = client.get(f"/auth/verify?token={token}")  # signed in since the sign-up
    assert response.headers["location"].startswith("/account?") and flash_of(response)["msg"].startswith("Your email address is confirmed.")
    client.cookies.clear()
    response = client.get(f"/auth/verify?token={token}")  # another browser
    assert response.headers["location"].startswith("/login?") and flash_of(response)["msg"].startswith("Your email address is confirmed.")
    assert session.exec(select(User)).one().is_verified
    tampered = client.get(f"/auth/verify?token={token[:-4]}AAAA")
    assert flash_of(tampered)["kind"] == "error"


def test_forgot_password_says_the_same_for_any_address(client):
    client.post("/auth/signup", data=SIGN_UP, headers=ORIGIN)
    known = client.post("/auth/forgot-password", data={"email": "ada@example.com"}, headers=ORIGIN)
    unknown = client.post("/auth/forgot-password", data={"email": "nobody@example.com"}, headers=ORIGIN)
    malformed = client.post("/auth/forgot-password", data={"email": "not an email"}, headers=ORIGIN)
    assert flash_of(known)["msg"] == flash_of(unknown)["msg"] == flash_of(malformed)["msg"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [("/account", "/account"), ("/history?page=2", "/history?page=2"), ("//evil.example", "/"),
     ("https://evil.example/", "/"), ("/\\evil.example", "/"), ("", "/"), (None, "/"), ("account", "/")],
)  # fmt: skip
def test_next_is_always_a_local_path(value, expected):
    assert safe_next(value) == expected


def test_forged_flash_messages_are_ignored():
    assert read_flash({"m": "eyJtc2ciOiJDYWxsIHVzIn0.forged"}) == {}
    assert read_flash({"error": "made_up_code"}) == {}
    assert read_flash({"error": "google_failed"})["msg"].startswith("Google sign-in did not complete")


def test_production_cookie_is_secure(db_url, monkeypatch):
    monkeypatch.setenv("CLEARBG_ENV", "production")
    monkeypatch.setenv("CLEARBG_SECRET_KEY", "k" * 40)
    monkeypatch.setenv("CLEARBG_PUBLIC_URL", "https://clearbg.example")
    get_settings.cache_clear()
    client = TestClient(build_api(), follow_redirects=False, base_url="https://testserver")
    client.post("/auth/signup", data=SIGN_UP, headers={"origin": "https://testserver"})
    response = client.post(
        "/auth/login", data={"email": "ada@example.com", "password": PASSWORD}, headers={"origin": "https://testserver"}
    )
    assert "Secure" in response.headers["set-cookie"]


def test_insecure_production_settings_are_refused(monkeypatch, data_dir):
    monkeypatch.setenv("CLEARBG_ENV", "production")
    get_settings.cache_clear()
    problems = get_settings().problems()
    assert any("CLEARBG_SECRET_KEY" in p for p in problems) and any("https://" in p for p in problems)


def test_mail_goes_through_smtp_when_configured_sent_by_the_worker_not_the_request(client, monkeypatch):
    with smtp_sink() as (sink, port):
        monkeypatch.setenv("CLEARBG_SMTP_HOST", "127.0.0.1")
        monkeypatch.setenv("CLEARBG_SMTP_PORT", str(port))
        get_settings.cache_clear()
        client.post("/auth/signup", data=SIGN_UP, headers=ORIGIN)
        assert sink.messages == []  # the request only queued it
        assert mail.deliver_due() == (1, 0)
    [message] = sink.messages
    assert message["To"] == "ada@example.com" and "/auth/verify?token=" in message.get_content()


def test_a_reset_link_hands_its_token_to_the_form_in_a_cookie_not_the_page_url(client, data_dir):
    from tests.mail import outbox

    sign_up_and_in(client)
    client.post("/auth/forgot-password", data={"email": "ada@example.com"}, headers=ORIGIN)
    opened = client.get(f"/auth/reset-password?token={token_in(outbox(data_dir)[-1], '/auth/reset-password')}")
    assert opened.status_code == 303 and opened.headers["location"] == "/reset-password"  # Reflex keeps page URLs in state
    cookie = opened.headers["set-cookie"]
    assert cookie.startswith("clearbg_reset=") and "Path=/auth/reset-password" in cookie and "HttpOnly" in cookie
    assert "Max-Age=3600" in cookie
    short = client.post("/auth/reset-password", data={"password": "short"}, headers=ORIGIN)
    assert short.headers["location"].startswith("/reset-password?m=") and "at least" in flash_of(short)["msg"]
    done = client.post("/auth/reset-password", data={"password": "a-brand-new-secret"}, headers=ORIGIN)
    assert flash_of(done)["msg"].startswith("Your password is changed") and 'clearbg_reset=""' in done.headers["set-cookie"]
    again = client.post("/auth/reset-password", data={"password": "another-good-one"}, headers=ORIGIN)
    assert flash_of(again)["kind"] == "error"
    assert urlsplit(client.get("/auth/reset-password").headers["location"]).path == "/forgot-password"


def test_request_logs_and_app_logs_never_hold_secrets(client, session, data_dir, caplog):
    caplog.set_level(logging.DEBUG)
    sign_up_and_in(client)
    client.post("/auth/login", data={"email": "ada@example.com", "password": PASSWORD}, headers=ORIGIN)
    session_token = client.cookies[SESSION_COOKIE]
    from tests.mail import outbox

    verify_token = token_in(outbox(data_dir)[0], "/auth/verify")
    client.get(f"/auth/verify?token={verify_token}")
    client.post("/auth/forgot-password", data={"email": "ada@example.com"}, headers=ORIGIN)
    reset_token = token_in(outbox(data_dir)[-1], "/auth/reset-password")
    client.get(f"/auth/reset-password?token={reset_token}")
    reset = client.post("/auth/reset-password", data={"password": "a-brand-new-secret"}, headers=ORIGIN)
    assert flash_of(reset)["msg"].startswith("Your password is changed")
    writer.flush()

    rows = session.exec(select(RequestLog)).all()
    assert {row.path for row in rows} >= {"/auth/signup", "/auth/login", "/auth/verify", "/auth/reset-password"}
    signed_in_rows = [row for row in rows if row.path == "/auth/verify"]
    assert signed_in_rows[0].user_id is not None and signed_in_rows[0].status == 303
    # httpx's own lines are the test client's (the browser's side), not the server's.
    app_lines = [caplog.handler.format(record) for record in caplog.records if not record.name.startswith("httpx")]
    dump = "\n".join([repr(row.model_dump()) for row in rows] + app_lines)
    for secret in (PASSWORD, "a-brand-new-secret", session_token, verify_token, reset_token):
        assert secret not in dump


CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.7801.3 Safari/537.36"


def test_request_logs_and_sessions_keep_only_a_coarse_user_agent(client, session):
    client.headers["user-agent"] = CHROME
    client.get("/api/images/00000000-0000-0000-0000-000000000000/result")  # before signing in
    sign_up_and_in(client)
    client.post("/auth/logout", headers=ORIGIN)  # and after signing out
    client.get("/api/docs", headers={"user-agent": "curl/8.5.0"})
    writer.flush()
    rows = session.exec(select(RequestLog)).all()
    assert {row.user_agent for row in rows} == {"Chrome 156", "curl 8"} and len(rows) == 4
    assert [row.user_agent for row in session.exec(select(AuthSession)).all()] == ["Chrome 156 on Linux"]


@pytest.mark.parametrize(("user_agent", "coarse", "with_system"), [
    (CHROME, "Chrome 156", "Chrome 156 on Linux"),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Edg/120.0.2210.91",
     "Edge 120", "Edge 120 on Windows"),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
     "Safari 17", "Safari 17 on iOS"),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14.1; rv:128.0) Gecko/20100101 Firefox/128.0", "Firefox 128", "Firefox 128 on macOS"),
    ("curl/8.5.0", "curl 8", "curl 8"), ("python-requests/2.32.3", "python-requests 2", "python-requests 2"),
    ("Mozilla/5.0 (X11; Linux x86_64) GraceBrowser/1.0", "other", "other on Linux"), ("", "other", "other"),
    ("Chrome/" + "9" * 500, "Chrome 9999", "Chrome 9999"), ("\u202eChrome/1\x00 <script>", "Chrome 1", "Chrome 1"),
])  # fmt: skip
def test_coarse_user_agent_keeps_the_browser_family_and_major_version(user_agent, coarse, with_system):
    from clearbg_app.services.security import coarse_user_agent

    assert coarse_user_agent(user_agent) == coarse and coarse_user_agent(user_agent, with_system=True) == with_system


def test_redaction_filter_scrubs_tokens_and_keys():
    record = logging.LogRecord("granian.access", logging.INFO, "", 0, '"GET /auth/verify?token=%s&x=1" %s', ("abc.def", "cbg_live_Sekr3t"), None)
    RedactSecrets().filter(record)
    assert record.getMessage() == '"GET /auth/verify?token=[redacted]&x=1" [redacted]'


def test_account_forms_change_password_and_email(client, data_dir):
    from tests.mail import outbox

    sign_up_and_in(client)
    wrong = client.post("/auth/password", data={"current_password": "nope-nope-nope", "new_password": "another-good-one"}, headers=ORIGIN)
    assert urlsplit(wrong.headers["location"]).path == "/account"
    assert flash_of(wrong) == {**flash_of(wrong), "kind": "error", "msg": "Your current password is not correct."}
    changed = client.post("/auth/password", data={"current_password": PASSWORD, "new_password": "another-good-one"}, headers=ORIGIN)
    assert flash_of(changed)["msg"] == "Your password is changed; your other browsers are signed out."
    email = client.post("/auth/email", data={"new_email": "New@Example.com", "password": "another-good-one"}, headers=ORIGIN)
    assert flash_of(email)["msg"] == "We sent a link to the new address; your address changes when you open it."
    assert outbox(data_dir)[-1]["To"] == "new@example.com"
    bad = client.post("/auth/email", data={"new_email": "not an address", "password": "another-good-one"}, headers=ORIGIN)
    assert flash_of(bad)["kind"] == "error" and "valid email" in flash_of(bad)["msg"]


@pytest.mark.parametrize("back", ["/privacy-center", "/account"])
def test_a_wrong_password_comes_back_beside_its_form_on_its_own_page(client, back):
    """The email form of the privacy center answers on the privacy center, keeps the new address, never the password."""
    sign_up_and_in(client)
    response = client.post("/auth/email", data={"new_email": "new@example.com", "password": "wrong-password!", "back": back}, headers=ORIGIN)
    assert urlsplit(response.headers["location"]).path == back
    flash = flash_of(response)
    assert flash["kind"] == "error" and flash["fields"] == {"form": "email", "new_email": "new@example.com"}
    assert "wrong-password!" not in response.headers["location"]
    response = client.post("/auth/password", data={"current_password": "wrong-password!", "new_password": "x" * 12, "back": back}, headers=ORIGIN)
    assert urlsplit(response.headers["location"]).path == back and flash_of(response)["fields"] == {"form": "password"}


def test_the_answer_never_goes_to_another_site(client):
    sign_up_and_in(client)
    for back in ("https://evil.example/", "//evil.example", "/admin", ""):
        response = client.post("/auth/email", data={"new_email": "new@example.com", "password": "x", "back": back}, headers=ORIGIN)
        assert urlsplit(response.headers["location"]).path == "/account"
