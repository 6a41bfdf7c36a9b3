"""Alembic's schema matches the models on both databases; configuration fails clearly."""

from __future__ import annotations

import subprocess
import sys

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

from clearbg_app.db import get_engine
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
