"""Every page works under the Content-Security-Policy (no violation in Chromium's console, events and
uploads included), and a page on another origin of the same site (another port on 127.0.0.1) can
neither read a signed-in user's responses, nor frame the site, nor open its event socket."""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest
from sqlmodel import Session

from clearbg_app.db import make_engine
from clearbg_app.services import accounts
from tests.browser.conftest import ARTIFACTS
from tests.browser.factories import sign_up_confirmed
from tests.conftest import SAMPLES
from tests.mail import free_port

pytestmark = pytest.mark.browser

PUBLIC_PAGES = ("/", "/signup", "/login", "/forgot-password", "/reset-password", "/restore-account", "/pricing",
                "/docs/api", "/privacy", "/privacy/versions", "/privacy/versions/1", "/terms", "/terms/versions",
                "/subprocessors", "/api/docs")  # fmt: skip
SIGNED_IN_PAGES = ("/account", "/credits", "/history", "/privacy-center", "/admin", "/admin/audit", "/admin/policies",
                   "/admin/subprocessors")  # fmt: skip


def record_csp_violations(page) -> list[str]:
    """Console errors about the policy, the `securitypolicyviolation` events of every document, and script
    errors the policy caused (others, like React's hydration warnings on /admin, are not its business)."""
    found: list[str] = []
    page.on("console", lambda message: "Content Security Policy" in message.text and found.append(message.text))
    page.on("pageerror", lambda error: re.search(r"Content Security Policy|unsafe-eval|EvalError", str(error)) and found.append(str(error)))
    page.add_init_script("document.addEventListener('securitypolicyviolation', e => "
                         "console.error('Content Security Policy violation: ' + e.violatedDirective + ' ' + e.blockedURI))")  # fmt: skip
    return found


def test_every_page_works_under_the_csp(page, smtp, app_url, app_data_dir):
    violations = record_csp_violations(page)
    for path in PUBLIC_PAGES:  # signed out
        response = page.goto(path)
        assert "script-src 'self' 'sha256-" in response.headers["content-security-policy"], path
        assert response.headers["x-frame-options"] == "DENY"
    sign_up_confirmed(page, smtp, app_url, "csp@example.com")
    engine = make_engine(f"sqlite:///{app_data_dir / 'clearbg.db'}")
    with Session(engine) as session:
        accounts.make_admin(session, email="csp@example.com")
    engine.dispose()
    for path in PUBLIC_PAGES[:-1] + SIGNED_IN_PAGES:  # signed in: each page's events ran (the header shows it)
        page.goto(path)
        page.locator("#header-account").wait_for()
        page.wait_for_timeout(300)
    page.goto("/account")  # events whose replies act on the page: a new key, the webhook secret
    page.fill("input[name=label]", "CSP check")
    page.click("#create-key")
    page.wait_for_function("() => document.querySelector('#new-key-secret').value.startsWith('cbg_live_')")
    page.click("#show-webhook-secret")  # on /account beside the keys
    page.wait_for_function("() => document.querySelector('#webhook-secret').value.startsWith('whsec_')")
    page.goto("/")
    page.set_input_files("input[type=file]", str(SAMPLES / "images" / "horse.jpg"))  # an upload, and its result
    page.wait_for_function("() => document.querySelector('#result-image')?.naturalWidth > 0", timeout=60_000)
    page.locator("#sample-dog").wait_for(state="attached")  # the input script and the samples load under the CSP
    page.get_by_role("tab", name="Batch").click()
    page.locator("#batch-price").wait_for()
    page.screenshot(path=str(ARTIFACTS / "csp-batch-tab.png"), full_page=True)
    assert violations == []
    assert not any((app_data_dir / "reflex-states").glob("*")), "Reflex wrote tab state to disk"


ATTACKER_PAGE = b"<!doctype html><title>another origin</title><p>hello</p>"


@contextmanager
def another_origin() -> Iterator[str]:
    """A page on 127.0.0.1 at another port: another origin, but the same site (cookies go along)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(ATTACKER_PAGE)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


READ = """async url => {
  try {
    const response = await fetch(url, {credentials: "include"});
    return "read " + response.status + " " + (await response.text()).length;
  } catch (error) { return "blocked"; }
}"""


def websocket_handshake(app_url: str, origin: str) -> str:
    """The status line the event socket answers a browser-like handshake from `origin` with."""
    address = urlsplit(app_url)
    request = (f"GET /_event/?EIO=4&transport=websocket HTTP/1.1\r\nHost: {address.netloc}\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
               f"Origin: {origin}\r\n\r\n")  # fmt: skip
    with socket.create_connection((address.hostname, address.port), timeout=10) as connection:
        connection.sendall(request.encode())
        return connection.recv(4096).split(b"\r\n", 1)[0].decode()


def test_another_origin_of_the_site_reads_nothing_frames_nothing_and_gets_no_socket(page, smtp, app_url):
    sign_up_confirmed(page, smtp, app_url, "target@example.com")
    page.goto("/")
    page.set_input_files("input[type=file]", str(SAMPLES / "images" / "horse.jpg"))
    page.wait_for_function("() => document.querySelector('#result-image')?.naturalWidth > 0", timeout=60_000)
    result = app_url + page.locator("#result-image").get_attribute("src")
    private = (result, result.replace("/result", "/original"), f"{app_url}/api/images/00000000-0000-0000-0000-000000000000/result")
    assert page.evaluate(READ, result).startswith("read 200")  # the site itself reads it

    with another_origin() as origin:
        page.goto(origin)
        for url in private:
            assert page.evaluate(READ, url) == "blocked", url
        public = page.evaluate("async url => (await fetch(url, {headers: {'X-Api-Key': 'cbg_live_nope'}})).status",
                               f"{app_url}/api/v1.0/account")  # fmt: skip
        assert public == 403  # the public API answers any origin, without cookies
        page.set_content(f'<iframe id="framed" src="{app_url}/account"></iframe>')
        page.wait_for_timeout(1500)
        framed = page.frame_locator("#framed")
        assert framed.locator("#header-account").count() == 0 and framed.locator("text=ClearBG").count() == 0
        assert websocket_handshake(app_url, origin).split(" ")[1] != "101"
    assert websocket_handshake(app_url, app_url).split(" ")[1] == "101"
