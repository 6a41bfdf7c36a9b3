"""Cross-origin reads, security headers and the event socket's handshake, through Starlette's TestClient
on the app as Reflex wraps it: our routes with Reflex's CORS middleware (configured by rxconfig.py),
inside the site's security headers and the public API's CORS (the browser tests run the real thing)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import uuid

import pytest
import reflex as rx
from reflex.config import get_config
from starlette.responses import Response
from starlette.testclient import TestClient

from clearbg_app.api import build_api
from clearbg_app.api.middleware.event_socket import EventSocketScrub
from clearbg_app.api.middleware.headers import PublicApiCors, SecurityHeaders, inline_script_hashes
from clearbg_app.api.middleware.origins import websocket_origin_allowed
from clearbg_app.http.cookies import SESSION_COOKIE, SESSION_REF, VISITOR_COOKIE, VISITOR_REF
from clearbg_app.services import images, removal
from clearbg_app.services.security import sha256_hex
from clearbg_app.settings import get_settings
from tests.conftest import sample_bytes
from tests.factories import ORIGIN, sign_up_and_in

FOREIGN = ("http://evil.example", "http://localhost:3001", "https://localhost:3000", "http://127.0.0.1:3000", "null")
CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.7801.3 Safari/537.36"


def site() -> TestClient:
    """Our routes as the running app serves them (Reflex adds its CORS middleware to the Starlette app
    it is given, with rxconfig's origins), inside the layers ClearBGApp puts around everything."""
    api = build_api()
    rx.App._add_cors(api)
    return TestClient(SecurityHeaders(PublicApiCors(api)), follow_redirects=False)


def site_origin() -> str:
    allowed = list(get_config().cors_allowed_origins)
    assert "*" not in allowed and allowed, allowed
    return allowed[0]


@pytest.fixture
def signed_in_with_image(db_url, session, store):
    """A signed-in browser with a processed image of its own, and the routes that read its cookies."""
    client = site()
    sign_up_and_in(client)
    visitor = client.cookies[VISITOR_COOKIE]
    image = images.store_upload(session, store=store, data=sample_bytes("horse.jpg"), filename="horse.jpg", visitor_hash=sha256_hex(visitor))
    images.process_image(session, store=store, image_id=image.id, pool=removal.default_pool(), max_pixels=250_000)
    routes = [
        ("GET", f"/api/images/{image.id}/result"),
        ("GET", f"/api/images/{image.id}/original?download=1"),
        ("GET", f"/api/privacy/exports/{uuid.uuid4()}"),
        ("GET", f"/api/batches/{uuid.uuid4()}/result.zip"),
        ("GET", f"/billing/receipt/{uuid.uuid4()}"),
        ("POST", "/auth/logout"),
    ]
    return client, routes


def test_cookie_routes_share_responses_only_with_the_sites_origin(signed_in_with_image):
    client, routes = signed_in_with_image
    assert client.get(routes[0][1], headers={"origin": FOREIGN[0]}).status_code == 200  # readable to the site only
    for method, path in routes:
        for origin in FOREIGN:
            response = client.request(method, path, headers={"origin": origin})
            assert "access-control-allow-origin" not in response.headers, (path, origin)  # so no page there reads it
            preflight = client.options(path, headers={"origin": origin, "access-control-request-method": method})
            assert "access-control-allow-origin" not in preflight.headers, (path, origin)
    own = client.get(routes[0][1], headers={"origin": site_origin()})
    assert own.headers["access-control-allow-origin"] == site_origin()
    assert own.headers["access-control-allow-credentials"] == "true"


def test_the_public_api_allows_any_origin_without_credentials(db_url):
    client = site()
    preflight = client.options("/api/v1.0/removebg", headers={
        "origin": "https://shop.example", "access-control-request-method": "POST", "access-control-request-headers": "x-api-key"})  # fmt: skip
    assert preflight.status_code == 204 and preflight.headers["access-control-allow-origin"] == "*"
    assert "X-Api-Key" in preflight.headers["access-control-allow-headers"]
    assert "access-control-allow-credentials" not in preflight.headers
    client.cookies.set(SESSION_COOKIE, "s" * 43)
    for method, path in (("GET", "/api/v1.0/account"), ("POST", "/api/v1.0/removebg"), ("GET", "/api/openapi.json")):
        response = client.request(method, path, headers={"origin": "https://shop.example"})
        assert response.headers["access-control-allow-origin"] == "*", path
        assert "access-control-allow-credentials" not in response.headers, path
        assert "X-Credits-Charged" in response.headers["access-control-expose-headers"]


def test_every_response_carries_the_security_headers(db_url, monkeypatch):
    client = site()
    requests = [("GET", "/api/docs"), ("GET", "/api/openapi.json"), ("GET", "/api/images/nope/result"),
                ("POST", "/auth/login"), ("GET", "/api/v1.0/account"), ("GET", "/no/such/route"),
                ("OPTIONS", "/api/v1.0/removebg"), ("GET", "/auth/reset-password")]  # fmt: skip
    for method, path in requests:
        headers = client.request(method, path, headers={"access-control-request-method": "POST", **ORIGIN}).headers
        assert headers["x-frame-options"] == "DENY" and headers["x-content-type-options"] == "nosniff", path
        assert headers["referrer-policy"] == "same-origin", path
        policy = headers["content-security-policy"]
        assert "frame-ancestors 'none'" in policy, path
        if headers.get("content-type", "text/html").startswith("text/html"):  # pages (and typeless redirects)
            script_src = next(part for part in policy.split("; ") if part.startswith("script-src"))
            assert "'unsafe-inline'" not in script_src and "'unsafe-eval'" not in script_src
            assert "object-src 'none'" in policy and "base-uri 'self'" in policy
        else:
            assert policy.startswith("default-src 'none'"), path
        assert "strict-transport-security" not in headers  # development: plain http
    monkeypatch.setenv("CLEARBG_ENV", "production")
    get_settings.cache_clear()
    assert site().get("/api/openapi.json").headers["strict-transport-security"] == "max-age=31536000"


def test_a_revalidated_page_keeps_the_page_policy():
    """A 304 has no content type, and the browser applies its headers to the cached page."""

    async def not_modified(scope, receive, send):
        await Response(status_code=304)(scope, receive, send)

    assert TestClient(SecurityHeaders(not_modified)).get("/login").headers["content-security-policy"].startswith("default-src 'self'")


def test_pages_allow_the_built_inline_scripts_by_hash_only(tmp_path):
    (tmp_path / "account").mkdir()
    (tmp_path / "index.html").write_text('<script>window.a = 1;</script><script type="module" src="/assets/x.js"></script>')
    (tmp_path / "account" / "index.html").write_text("<SCRIPT id=\"_R_\">requestAnimationFrame(f)</SCRIPT>")
    expected = {f"'sha256-{base64.b64encode(hashlib.sha256(code).digest()).decode()}'"
                for code in (b"window.a = 1;", b"requestAnimationFrame(f)")}  # fmt: skip
    assert set(inline_script_hashes(tmp_path)) == expected


def handshake(scope: dict) -> dict:
    """What reaches Reflex of a connection, after the scrub."""
    seen = {}

    async def reflex(scope, receive, send):
        seen.update(scope)

    asyncio.run(EventSocketScrub(reflex)(scope, None, None))
    return seen


def test_the_event_socket_handshake_leaves_reflex_no_token_user_agent_or_ip():
    session_token, visitor_token = "S" * 43, "V" * 43
    raw = [(b"host", b"clearbg.example"), (b"origin", b"https://clearbg.example"), (b"user-agent", CHROME.encode()),
           (b"cookie", f"{SESSION_COOKIE}={session_token}; {VISITOR_COOKIE}={visitor_token}; other=1".encode()),
           (b"x-forwarded-for", b"203.0.113.9"), (b"referer", b"https://clearbg.example/reset-password?token=abc"),
           (b"accept-language", b"de-CH"), (b"sec-websocket-key", b"k")]  # fmt: skip
    seen = handshake({"type": "websocket", "path": "/_event/", "headers": raw, "client": ("203.0.113.9", 50000)})
    headers = dict(seen["headers"])
    assert headers[b"cookie"] == f"{SESSION_REF}={sha256_hex(session_token)}; {VISITOR_REF}={sha256_hex(visitor_token)}".encode()
    assert headers[b"user-agent"] == b"Chrome 156" and seen["client"] == ("0.0.0.0", 0)
    assert set(headers) == {b"host", b"origin", b"user-agent", b"cookie", b"sec-websocket-key"}
    for leak in (session_token, visitor_token, "203.0.113", "7801", "token=abc", "de-CH"):
        assert leak not in repr(seen), leak
    assert b"cookie" not in dict(handshake({"type": "websocket", "headers": [(b"cookie", b"junk")]})["headers"])
    http = {"type": "http", "headers": raw, "client": ("203.0.113.9", 1)}
    assert handshake(http) == http  # plain HTTP requests pass untouched


def test_the_event_socket_accepts_only_the_sites_origins(monkeypatch):
    monkeypatch.setenv("CLEARBG_PUBLIC_URL", "https://clearbg.example")
    monkeypatch.setenv("CLEARBG_CORS_ORIGINS", "https://www.clearbg.example")
    get_settings.cache_clear()
    behind_proxy = {"wsgi.url_scheme": "ws", "HTTP_HOST": "clearbg.example"}
    local = {"wsgi.url_scheme": "ws", "HTTP_HOST": "127.0.0.1:8080"}
    for origin in ("https://clearbg.example", "https://www.clearbg.example"):
        assert websocket_origin_allowed(origin, behind_proxy), origin
    assert websocket_origin_allowed("http://127.0.0.1:8080", local)  # the address it was opened on
    for origin in ("http://clearbg.example", "https://clearbg.example.evil.example", "https://app.clearbg.example",
                   "http://127.0.0.1:8081", "https://127.0.0.1:8080", "null", "", None):  # fmt: skip
        assert not websocket_origin_allowed(origin, behind_proxy | {"HTTP_HOST": "127.0.0.1:8080"}), origin
