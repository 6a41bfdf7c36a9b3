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


class AppRunner:
    """The real app, one at a time (they share the checkout's `.web`): `url(mode)` starts it in a fresh
    data dir for that mode ("memory": the default, as `make run`; "redis": Reflex's state in Redis and
    mail to the outbox, for the data-at-rest test), stopping the other one first."""

    def __init__(self, tmp_path_factory, smtp, oidc, stripe_loopback) -> None:
        self.factory, self.smtp, self.oidc, self.stripe = tmp_path_factory, smtp, oidc, stripe_loopback
        self.mode: str | None = None
        self.process: subprocess.Popen | None = None
        self.data_dirs: dict[str, Path] = {}
        self.base_url = ""
        self.redis_url = ""  # for "redis": a Redis database of the test's own

    def data_dir(self, mode: str) -> Path:
        if mode not in self.data_dirs:
            self.data_dirs[mode] = self.factory.mktemp(f"app-data-{mode}")
        return self.data_dirs[mode]

    def env(self, mode: str, port: int) -> dict[str, str]:
        env = {
            **os.environ,
            "CLEARBG_DATA_DIR": str(self.data_dir(mode)),
            "CLEARBG_PUBLIC_URL": f"http://127.0.0.1:{port}",
            "CLEARBG_GOOGLE_CLIENT_ID": CLIENT_ID,
            "CLEARBG_GOOGLE_CLIENT_SECRET": CLIENT_SECRET,
            "CLEARBG_GOOGLE_DISCOVERY_URL": self.oidc.discovery_url,
            "CLEARBG_STRIPE_SECRET_KEY": SECRET_KEY,
            "CLEARBG_STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "CLEARBG_STRIPE_API_BASE": self.stripe.url,
            "PATH": f"{TOOLS_BIN}:{Path(sys.executable).parent}:{os.environ['PATH']}",
            "REFLEX_USE_SYSTEM_BUN": "1",
            "REFLEX_TELEMETRY_ENABLED": "false",
            "REFLEX_CHECK_LATEST_VERSION": "false",
            "REFLEX_STATES_WORKDIR": str(self.data_dir(mode) / "reflex-states"),  # must stay empty
            "CLEARBG_OPERATOR_NAME": "Example Imaging Ltd",
            "CLEARBG_OPERATOR_ADDRESS": "1 Example Street, 10115 Berlin, Germany",
            "CLEARBG_OPERATOR_EMAIL": "hello@example.com",
            "CLEARBG_OPERATOR_PRIVACY_CONTACT": "privacy@example.com",
        }
        for name in ("CLEARBG_DATABASE_URL", "REFLEX_REDIS_URL", "CLEARBG_SMTP_HOST", "REFLEX_STATE_MANAGER_MODE"):
            env.pop(name, None)
        if mode == "redis":
            assert self.redis_url, "set AppRunner.redis_url to a Redis database of the test's own first"
            env["REFLEX_REDIS_URL"] = self.redis_url
        else:
            env.update({"CLEARBG_SMTP_HOST": "127.0.0.1", "CLEARBG_SMTP_PORT": str(self.smtp.port)})
        return env

    def url(self, mode: str = "memory") -> str:
        if self.mode != mode:
            self.stop()
            self.start(mode)
        return self.base_url

    def start(self, mode: str) -> None:
        if not (TOOLS_BIN / "bun").exists():
            pytest.fail("bun and node are missing from .tools: run the tests through `make test`")
        port = free_port()
        env = self.env(mode, port)
        self.stripe.webhook_url = f"http://127.0.0.1:{port}/api/stripe/webhook"
        subprocess.run([sys.executable, "-m", "alembic", "upgrade", "head"], cwd=PROJECT_ROOT, env=env, check=True)
        log = self.data_dir(mode) / "app.log"
        with log.open("w") as log_file:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "reflex", "run", "--env", "prod", "--single-port",
                 "--frontend-port", str(port), "--backend-port", str(port)],
                cwd=PROJECT_ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        self.mode, self.base_url, self.log = mode, f"http://127.0.0.1:{port}", log
        wait_until_up(f"{self.base_url}/ping", self.process, log)
        wait_until_up(f"{self.base_url}/", self.process, log)

    def stop(self) -> None:
        if self.process is None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
        if ARTIFACTS.is_dir():
            shutil.copy(self.log, ARTIFACTS / f"app-{self.mode}.log")
        self.process, self.mode = None, None


@pytest.fixture(scope="package")
def apps(tmp_path_factory, smtp, oidc, stripe_loopback) -> Iterator[AppRunner]:
    runner = AppRunner(tmp_path_factory, smtp, oidc, stripe_loopback)
    try:
        yield runner
    finally:
        runner.stop()


@pytest.fixture
def app_url(apps) -> str:
    """The app as `make run` starts it (state in memory), on a free port, its mail to the SMTP sink."""
    return apps.url("memory")


@pytest.fixture
def app_data_dir(apps, app_url) -> Path:
    """The running app's data dir (its SQLite database and blobs), for test set-up that has no page."""
    return apps.data_dir("memory")


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
