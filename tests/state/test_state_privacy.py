"""What the Reflex states may hold: no secret ever, personal data only in the vars the registry lists
(services/personal_data.STATE_VARS, reset when a tab signs out), and the state itself only in memory
or in Redis with an expiry, never in files."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys

import reflex as rx

import clearbg_app.clearbg_app  # noqa: F401 - defines every state
from clearbg_app.http.cookies import SESSION_COOKIE
from clearbg_app.services import accounts, personal_data
from clearbg_app.settings import PROJECT_ROOT, get_settings
from clearbg_app.state.account import AccountState
from clearbg_app.state.base import SessionState
from clearbg_app.state.privacy import HistoryImage, HistoryState
from tests.factories import state_for, verified_user

SECRET_LOOKING = re.compile(r"secret|password|passwd|token|cookie|api_?key|signing|credential|hash|whsec|cbg_live")
PERSONAL_LOOKING = re.compile(
    r"(^|_)(e?mail|name|user_agent|device|browser|network|ip|address|filename|file|who|label|query|users?|account"
    r"|history|items|entries|orders|ledger|events|sessions|usage|consents?|phone)(_|$)"
)
NOT_PERSONAL = {
    # Configuration, public documents and counts: the same for everyone.
    ("PricingState", "packs"), ("PricingState", "plans"), ("AdminState", "stats"), ("AdminState", "jobs"),
    ("LegalState", "versions"), ("PolicyBannerState", "notices"), ("AdminPoliciesState", "policy_versions"),
    ("AdminPoliciesState", "edit_label"), ("SubprocessorsState", "active_subprocessors"),
    ("SubprocessorsState", "retired_subprocessors"), ("AdminSubprocessorsState", "entries"),
    ("AdminSubprocessorsState", "sp"), ("PrivacyState", "categories"), ("PrivacyState", "retention"),
    ("BatchState", "size_label"), ("LegalState", "doc_label"), ("CreditsState", "ledger_page"),
    ("CreditsState", "ledger_pages"), ("CreditsState", "orders_page"), ("CreditsState", "orders_pages"),
    ("BatchState", "each_label"),  # the price of one image, from the settings
    ("BatchState", "balance_label"),  # `balance_units` (a count, like every int var) as words: "12.5 credits"
}  # fmt: skip


def app_states() -> list[type[rx.State]]:
    found, pending = [], [SessionState]
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return found


def own_vars(cls: type[rx.State]) -> dict[str, type]:
    """The vars a state class defines itself (front-end and backend `_vars`, which are pickled too),
    with their types, and its computed vars."""
    fields = {name: field.type_ for name, field in cls.__fields__.items() if field._owner is cls}
    computed = {name: var._var_type for name, var in cls.computed_vars.items() if name in vars(cls)}
    return {**fields, **computed}


def test_every_state_of_the_app_derives_from_the_session_state():
    ours = [cls for cls in rx.State.__subclasses__() if cls.__module__.startswith("clearbg_app")]
    assert ours == [SessionState]


def test_no_state_var_holds_a_secret_and_personal_ones_are_registered():
    problems = []
    for cls in app_states():
        registered = set(personal_data.state_vars(cls.__name__))
        for name, kind in own_vars(cls).items():
            if kind in (bool, int):  # flags and counts ("email_verified", "has_password") hold neither
                continue
            if SECRET_LOOKING.search(name.lower()):
                problems.append(f"{cls.__name__}.{name} looks like a secret: secrets never enter state")
            elif name in registered or (cls.__name__, name) in NOT_PERSONAL:
                continue
            elif PERSONAL_LOOKING.search(name.lstrip("_")) or getattr(kind, "__origin__", kind) in (list, dict):
                problems.append(f"{cls.__name__}.{name} may hold personal data")
    assert not problems, (
        "register these in services/personal_data.py STATE_VARS (they are then reset when a tab signs out), "
        "or, if they hold nothing about a person, in NOT_PERSONAL here: " + "; ".join(problems)
    )


def test_registered_state_vars_exist():
    by_name = {cls.__name__: cls for cls in app_states()}
    for entry in personal_data.STATE_VARS:
        assert entry.state in by_name, entry.state
        missing = set(entry.personal) - set(own_vars(by_name[entry.state]))
        assert not missing, f"{entry.state} has no {missing}"


def reflex_config_in_a_fresh_process(**env: str) -> str:
    """rxconfig.py read as `reflex run` reads it, with `env` set."""
    code = "from reflex.config import get_config; c = get_config(); print(getattr(c.state_manager_mode, \"value\", c.state_manager_mode), c.redis_token_expiration)"
    environ = {key: value for key, value in os.environ.items() if not key.startswith("REFLEX_REDIS")} | env
    result = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, env=environ, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_state_lives_in_memory_or_in_redis_with_an_expiry_never_on_disk():
    assert reflex_config_in_a_fresh_process() == ["memory", str(get_settings().state_expiry_minutes * 60)]
    assert reflex_config_in_a_fresh_process(REFLEX_REDIS_URL="redis://127.0.0.1:6379/9", CLEARBG_STATE_EXPIRY_MINUTES="15") == [
        "redis", "900"]  # fmt: skip


def test_the_app_refuses_disk_state_and_erases_old_state_files(tmp_path):
    states = tmp_path / "states"
    states.mkdir()
    (states / "0123abcd.pkl").write_bytes(b"clearbg_session=old-token; Mozilla/5.0 ... ada@example.com")
    code = "import clearbg_app.clearbg_app"
    environ = {**os.environ, "REFLEX_STATES_WORKDIR": str(states), "CLEARBG_DATA_DIR": str(tmp_path / "data")}
    result = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, env=environ, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert list(states.iterdir()) == []
    refused = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, env={**environ, "REFLEX_STATE_MANAGER_MODE": "disk"},
                             capture_output=True, text=True, timeout=300)  # fmt: skip
    assert refused.returncode != 0 and "REFLEX_STATE_MANAGER_MODE=disk" in refused.stderr


def run(handler, state, *args):
    """An event handler of `state`'s class, run on it as the server would for one event."""
    result = type(state).event_handlers[handler].fn(state, *args)
    return asyncio.run(result) if asyncio.iscoroutine(result) else result


def handshake_router(session, user=None):
    """The router data of a new connection of the tab: signed in as `user`, or signed out."""
    cookie = f"{SESSION_COOKIE}={accounts.start_session(session, user=user, user_agent='t', ip=None)}" if user else ""
    return state_for(SessionState, cookie).parent_state.router


def test_a_tab_forgets_the_account_when_it_signs_out_or_another_signs_in(session, clock):
    ada, bob = verified_user(session, clock, email="ada@example.com"), verified_user(session, clock, email="bob@example.com")
    tab = state_for(SessionState)
    root = tab.parent_state
    account = root.get_substate(AccountState.get_full_name().split("."))
    history = root.get_substate(HistoryState.get_full_name().split("."))
    root.router = handshake_router(session, ada)
    run("load_session", tab)
    run("load", account)
    history.items = [HistoryImage(id="1", name="ada-holiday.jpg", uploaded="", expires="", thumb="", download="", original="", short="")]
    assert (tab.signed_in, account.email) == (True, "ada@example.com")

    root.router = handshake_router(session)  # signed out: the next page's load
    run("load_session", tab)
    assert (tab.signed_in, account.email, account.display_name, account.sessions, history.items) == (False, "", "", [], [])

    root.router = handshake_router(session, ada)
    run("load_session", tab)
    history.items = [HistoryImage(id="1", name="ada-holiday.jpg", uploaded="", expires="", thumb="", download="", original="", short="")]
    root.router = handshake_router(session, bob)  # another account signs in on the same tab
    run("load_session", tab)
    assert tab.signed_in and history.items == []
