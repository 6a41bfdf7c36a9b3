"""The real app (`reflex run --env prod`, as `make run` starts it) and headless Chromium."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from clearbg_app.settings import PROJECT_ROOT
from tests.mail import free_port, smtp_sink
from tests.oidc_provider import CLIENT_ID, CLIENT_SECRET, OIDCProvider
from tests.stripe_fakes import SECRET_KEY, WEBHOOK_SECRET, FakeStripe, stripe_on_loopback

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = PROJECT_ROOT / "test-artifacts"
TOOLS_BIN = PROJECT_ROOT / ".tools" / "node_modules" / ".bin"


def wait_until_up(url: str, process: subprocess.Popen, log: Path, timeout: float = 420) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the app exited with {process.returncode}:\n{log.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(2)
    pytest.fail(f"the app did not answer at {url} within {timeout:.0f} s:\n{log.read_text()[-4000:]}")


@pytest.fixture(scope="session")
def smtp():
    """The SMTP sink the app sends its mail to."""
    with smtp_sink() as (sink, port):
        sink.port = port
        yield sink


@pytest.fixture(scope="session")
def oidc():
    """The loopback OpenID provider standing in for Google."""
    provider = OIDCProvider()
    with provider.serve():
        yield provider


@pytest.fixture(scope="session")
def stripe_loopback() -> Iterator[FakeStripe]:
    """localstripe and the loopback Checkout server; webhooks arrive a few seconds after paying."""
    with stripe_on_loopback() as fake:
        fake.delivery_delay = 3
        yield fake


@pytest.fixture(scope="package")
def app_data_dir(tmp_path_factory) -> Path:
    """The running app's data dir (its SQLite database and blobs), for test set-up that has no page."""
    return tmp_path_factory.mktemp("app-data")


@pytest.fixture(scope="package")
def app_url(app_data_dir, smtp, oidc, stripe_loopback) -> Iterator[str]:
    """Migrate a fresh data dir and start the app on a free port; stop it afterwards."""
    if not (TOOLS_BIN / "bun").exists():
        pytest.fail("bun and node are missing from .tools: run the tests through `make test`")
    data_dir = app_data_dir
    port = free_port()
    env = {
        **os.environ,
        "CLEARBG_DATA_DIR": str(data_dir),
        "CLEARBG_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "CLEARBG_SMTP_HOST": "127.0.0.1",
        "CLEARBG_SMTP_PORT": str(smtp.port),
        "CLEARBG_GOOGLE_CLIENT_ID": CLIENT_ID,
        "CLEARBG_GOOGLE_CLIENT_SECRET": CLIENT_SECRET,
        "CLEARBG_GOOGLE_DISCOVERY_URL": oidc.discovery_url,
        "CLEARBG_STRIPE_SECRET_KEY": SECRET_KEY,
        "CLEARBG_STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "CLEARBG_STRIPE_API_BASE": stripe_loopback.url,
        "PATH": f"{TOOLS_BIN}:{Path(sys.executable).parent}:{os.environ['PATH']}",
        "REFLEX_USE_SYSTEM_BUN": "1",
        "REFLEX_TELEMETRY_ENABLED": "false",
        "REFLEX_CHECK_LATEST_VERSION": "false",
    }
    env.pop("CLEARBG_DATABASE_URL", None)
    stripe_loopback.webhook_url = f"http://127.0.0.1:{port}/api/stripe/webhook"
    subprocess.run([sys.executable, "-m", "alembic", "upgrade", "head"], cwd=PROJECT_ROOT, env=env, check=True)
    log = data_dir / "app.log"
    with log.open("w") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "reflex", "run", "--env", "prod", "--single-port",
             "--frontend-port", str(port), "--backend-port", str(port)],
            cwd=PROJECT_ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(f"{url}/ping", process, log)
        wait_until_up(f"{url}/", process, log)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        if ARTIFACTS.is_dir():
            shutil.copy(log, ARTIFACTS / "app.log")


@pytest.fixture(scope="package")
def browser():
    """Chromium for the browser tests only: Playwright's sync API runs an event loop in this thread
    while it is open, so it must be closed before the rest of the suite (which uses asyncio.run)."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium (scripts/ensure-chromium.sh)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, app_url):
    ARTIFACTS.mkdir(exist_ok=True)
    context = browser.new_context(base_url=app_url, accept_downloads=True, viewport={"width": 1280, "height": 900})
    yield context.new_page()
    context.close()
