"""Alembic's schema matches the models on both databases; configuration fails clearly."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlmodel import SQLModel, select

from clearbg_app.db import get_engine, make_engine
from clearbg_app.models import AuthSession, RequestLog
from clearbg_app.services import accounts, policies
from clearbg_app.settings import PROJECT_ROOT


def test_migrations_match_the_models(db_url):
    with get_engine().connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection, opts={"compare_type": True}), SQLModel.metadata)
    assert diff == []


def run_check(env_overrides: dict[str, str], tmp_path) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "CLEARBG_DATA_DIR": str(tmp_path / "data"), **env_overrides}
    return subprocess.run(
        [sys.executable, "-m", "clearbg_app", "check"], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True
    )


def test_missing_model_stops_start_up_with_one_clear_line(tmp_path):
    result = run_check({"CLEARBG_MODEL_PATH": str(tmp_path / "nowhere.onnx")}, tmp_path)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"clearbg: Model file not found at {tmp_path / 'nowhere.onnx'}; put u2netp.onnx there"
        " or set CLEARBG_MODEL_PATH to its path."
    ]


def test_default_configuration_is_ready(tmp_path):
    result = run_check({}, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "configuration OK" in result.stdout


def alembic(url: str, action, revision: str) -> None:
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.attributes["configure_logger"] = False
    engine = make_engine(url)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        action(config, revision)
    engine.dispose()


def test_0012_cuts_stored_user_agents_down_and_publishes_policy_1_1(db_url, session):
    """Rows written before the upgrade keep only the browser family and version too."""
    alembic(db_url, command.downgrade, "0011")
    user = accounts.sign_up(session, email="ada@example.com", display_name="Ada", password="correct-horse-battery",
                            adult_confirmed=True, policy_accepted=True, ip="127.0.0.1")  # fmt: skip
    full = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0"
    now = datetime.now(UTC)
    session.add(AuthSession(token_hash="h" * 64, user_id=user.id, expires_at=now + timedelta(days=1), user_agent=full))
    session.add_all(RequestLog(at=now, method="GET", path="/", status=200, latency_ms=1, user_agent=agent, ip_prefix="")
                    for agent in (full, "curl/8.5.0", ""))  # fmt: skip
    session.commit()
    alembic(db_url, command.upgrade, "head")
    session.expire_all()
    assert sorted(row.user_agent for row in session.exec(select(RequestLog)).all()) == ["Firefox 128", "curl 8", "other"]
    assert [row.user_agent for row in session.exec(select(AuthSession)).all()] == ["Firefox 128 on Windows"]
    assert policies.current_label(session, kind="privacy", now=now) == "1.1"
