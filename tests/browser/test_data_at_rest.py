"""Nothing of a deleted account stays at rest. A person signs up, confirms the address, uploads an image,
creates an API key and opens every page of theirs; signs out; signs in again and deletes the account;
the grace period passes and the anonymization job runs. Then no file under the data dir (SQLite and
its WAL, blobs, the mail outbox, the app's log, anything) and no key of the state store holds the key's
secret, a session or visitor cookie, the email, the display name, the file name or the full user
agent. The app runs with Reflex's state in Redis (where, unlike memory, it rests between events) and
without SMTP, so mail goes to the outbox. While signed in, personal data sits only in the state vars
the registry lists, and no secret in any."""

from __future__ import annotations

import email
import email.policy
import pickle
import shutil
import uuid
from datetime import timedelta

import pytest
import redis
from playwright.sync_api import expect

import clearbg_app.clearbg_app  # noqa: F401 - the state classes, to read the pickled states
from clearbg_app.clock import utcnow
from clearbg_app.services import personal_data
from clearbg_app.services.jobs import anonymize_accounts_job
from tests.browser.conftest import ARTIFACTS
from tests.conftest import SAMPLES, _clear_caches
from tests.mail import link_in

pytestmark = pytest.mark.browser

MARK = uuid.uuid4().hex[:12]  # in the email, the name, the file name and the user agent
EMAIL = f"rest.{MARK}@example.com"
NAME = f"Resta {MARK} Person"
FILE_STEM = f"holiday-{MARK}"
USER_AGENT = f"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36 Rest/{MARK}"
PASSWORD = "correct-horse-battery"


@pytest.fixture(scope="module")
def state_store(apps):
    """A Redis database of this test's own (the first empty one), flushed afterwards."""
    for number in range(15, 0, -1):
        client = redis.Redis(host="127.0.0.1", port=6379, db=number)
        if client.dbsize() == 0:
            break
    else:
        pytest.fail("no empty Redis database on 127.0.0.1:6379 for the state store")
    apps.redis_url = f"redis://127.0.0.1:6379/{number}"
    yield client
    apps.stop()
    client.flushdb()


def stored(client: redis.Redis) -> dict[bytes, bytes]:
    """Every key of the state store with its value, whatever its type."""
    values = {}
    for key in client.scan_iter(count=1000):
        kind = client.type(key)
        if kind == b"string":
            values[key] = client.get(key) or b""
        elif kind == b"hash":
            values[key] = b" ".join(name + b"=" + value for name, value in client.hgetall(key).items())
        elif kind in (b"set", b"list", b"zset"):
            values[key] = b" ".join(client.sort(key, alpha=True))
        else:
            values[key] = client.dump(key) or b""
    return values


def vars_holding(client: redis.Redis, needle: str) -> set[str]:
    """`State.var` for every pickled state var whose value holds `needle` (or the raw key if unreadable)."""
    found = set()
    for key, raw in stored(client).items():
        if needle.encode() not in key + raw:
            continue
        try:
            state = pickle.loads(raw)
        except Exception:  # noqa: BLE001 - not a state: report the key itself
            found.add(repr(key))
            continue
        if isinstance(state, tuple) and len(state) == 2:  # Reflex pickles (schema, state)
            state = state[1]
        fields = vars(state) if hasattr(state, "__dict__") else {repr(key): state}
        found.update(f"{type(state).__name__}.{name}" for name, value in fields.items() if needle in repr(value))
    return found


def unregistered(found: set[str]) -> set[str]:
    return {item for item in found if item.partition(".")[2] not in personal_data.state_vars(item.partition(".")[0])}


def outbox_link(data_dir, path: str) -> str:
    for file in sorted((data_dir / "outbox").glob("*.eml"), reverse=True):
        message = email.message_from_bytes(file.read_bytes(), policy=email.policy.default)
        if message["To"] == EMAIL:
            return link_in(message, path)
    raise AssertionError(f"no mail to {EMAIL} in the outbox")


def test_a_deleted_account_leaves_nothing_at_rest(browser, apps, state_store, tmp_path, monkeypatch):
    base = apps.url("redis")
    data_dir = apps.data_dir("redis")
    context = browser.new_context(base_url=base, user_agent=USER_AGENT, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto("/signup")
    page.fill("#email", EMAIL)
    page.fill("#display_name", NAME)
    page.fill("#password", PASSWORD)
    page.check("#adult")
    page.check("#accept")
    page.click("#signup-form button[type=submit]")
    page.wait_for_url("**/account**")  # signing up signs in
    page.goto(outbox_link(data_dir, "/auth/verify"))
    page.wait_for_url("**/account**")

    photo = tmp_path / f"{FILE_STEM}.jpg"
    shutil.copy(SAMPLES / "images" / "horse.jpg", photo)
    page.goto("/")
    page.set_input_files("input[type=file]", str(photo))
    page.wait_for_function("() => document.querySelector('#result-image')?.naturalWidth > 0", timeout=60_000)
    page.goto("/account")
    page.fill("input[name=label]", f"Key of {NAME}")
    page.click("#create-key")
    page.wait_for_function("() => document.querySelector('#new-key-secret').value.startsWith('cbg_live_')")
    secret = page.input_value("#new-key-secret")
    for path in ("/history", "/privacy-center", "/credits", "/"):
        page.goto(path)
        page.locator("#header-account").wait_for()
    cookies = {cookie["value"] for cookie in context.cookies()}
    page.screenshot(path=str(ARTIFACTS / "at-rest-signed-in.png"), full_page=True)

    # Signed in: secrets and the full user agent are in no state; personal data only in registered vars.
    for needle in (secret, USER_AGENT, f"Rest/{MARK}", *cookies):
        assert not vars_holding(state_store, needle), needle
    for needle in (EMAIL, NAME, FILE_STEM):
        assert not unregistered(vars_holding(state_store, needle)), needle
    assert vars_holding(state_store, EMAIL) == {"AccountState.email"}  # the account page showed it

    page.click("#sign-out")
    page.wait_for_url(base + "/")
    for _ in range(60):  # the signed-out page's load event forgets the account, then the state is written
        if not (left := vars_holding(state_store, MARK)):
            break
        page.wait_for_timeout(250)
    assert not left, left

    page.goto("/login")
    page.fill("#email", EMAIL)
    page.fill("#password", PASSWORD)
    page.click("#login-form button[type=submit]")
    page.wait_for_url("**/account**")
    cookies |= {cookie["value"] for cookie in context.cookies()}
    page.goto("/privacy-center")
    page.fill("#delete-password", PASSWORD)
    page.check("#delete-confirm")
    page.click("#delete-account")
    page.wait_for_url("**/login**")
    expect(page.locator("#flash-message")).to_contain_text("will be deleted")
    context.close()

    monkeypatch.setenv("CLEARBG_DATA_DIR", str(data_dir))  # the app's database and blobs, eight days on
    monkeypatch.delenv("CLEARBG_DATABASE_URL", raising=False)
    _clear_caches()
    try:
        counts = anonymize_accounts_job(clock=lambda: utcnow() + timedelta(days=8))
    finally:
        monkeypatch.undo()
        _clear_caches()
    assert counts["accounts_anonymized"] == 1 and counts["blobs_deleted"] == 2 and counts["outbox_files_deleted"] >= 2

    files = [path for path in data_dir.rglob("*") if path.is_file()]
    assert {path.name for path in files} >= {"clearbg.db", "app.log"}
    assert not (data_dir / "reflex-states").exists() or not any((data_dir / "reflex-states").iterdir())
    needles = (MARK, secret, *cookies)
    for path in files:
        content = path.read_bytes()
        assert not [needle for needle in needles if needle.encode() in content], path
    assert stored(state_store), "the state store was used"
    for key, value in stored(state_store).items():
        assert not [needle for needle in needles if needle.encode() in key + value], key
