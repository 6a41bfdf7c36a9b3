"""The create-admin command, and the request-log retention job (time moved by the injected clock)."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta

from sqlmodel import select

from clearbg_app.clock import as_utc
from clearbg_app.models import RequestLog, User
from clearbg_app.services.jobs import purge_request_logs_job
from clearbg_app.settings import PROJECT_ROOT
from tests.mail import outbox


def run_cli(*args: str, db_url: str, data_dir) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "CLEARBG_DATA_DIR": str(data_dir), "CLEARBG_DATABASE_URL": db_url}
    return subprocess.run([sys.executable, "-m", "clearbg_app", *args], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True)


def test_create_admin_makes_a_new_account_and_emails_a_reset_link(db_url, data_dir, session):
    result = run_cli("create-admin", "Ops@Example.com", db_url=db_url, data_dir=data_dir)
    assert result.returncode == 0, result.stderr
    assert "created admin ops@example.com" in result.stdout
    user = session.exec(select(User)).one()
    assert user.is_admin and user.password_hash is None
    assert outbox(data_dir)[-1]["Subject"] == "Reset your ClearBG password"  # the CLI sent it at once
    again = run_cli("create-admin", "ops@example.com", db_url=db_url, data_dir=data_dir)
    assert again.returncode == 0 and "is now an admin" in again.stdout


def test_create_admin_refuses_a_malformed_email(db_url, data_dir):
    result = run_cli("create-admin", "not-an-email", db_url=db_url, data_dir=data_dir)
    assert result.returncode == 1 and "valid email" in result.stderr


def test_request_logs_are_deleted_after_the_retention_period(session, clock):
    for age in (timedelta(days=91), timedelta(days=89)):
        session.add(RequestLog(at=clock() - age, method="GET", path="/", status=200, latency_ms=3))
    session.commit()
    assert purge_request_logs_job(clock=clock) == {"logs_deleted": 1}
    assert [as_utc(row.at) for row in session.exec(select(RequestLog)).all()] == [clock() - timedelta(days=89)]
