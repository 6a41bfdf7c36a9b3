"""`python -m clearbg_app worker` processes for tests, and which batch items each holds (PostgreSQL)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from clearbg_app.services.job_runs import lock_key
from clearbg_app.settings import PROJECT_ROOT

FAST_RECOVERY = {"CLEARBG_QUEUE_HEARTBEAT_MS": "3000", "CLEARBG_QUEUE_MAINTENANCE_CHANCE": "1000000"}  # a dead worker's messages back in ~3 s


class WorkerProcess:
    """A worker connected to PostgreSQL as `application_name=<name>` (so its locks can be found)."""

    def __init__(self, name: str, env: dict[str, str], log: Path) -> None:
        self.name, self.log = name, log
        url = env["CLEARBG_DATABASE_URL"]
        env = env | {"CLEARBG_DATABASE_URL": f"{url}{'&' if '?' in url else '?'}application_name={name}"}
        with log.open("w") as out:
            self.process = subprocess.Popen([sys.executable, "-m", "clearbg_app", "worker"], cwd=PROJECT_ROOT, env=env,
                                            stdout=out, stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip

    def wait_serving(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while "serving the queue" not in self.log.read_text():
            if self.process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"worker {self.name} did not start:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.2)

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()


def item_keys(item_ids) -> dict[int, object]:
    """Each item's advisory-lock key as pg_locks shows it (unsigned), to the item id."""
    return {lock_key(f"batch-item:{item_id}") & 0xFFFFFFFFFFFFFFFF: item_id for item_id in item_ids}


def held_keys(engine: Engine, application_name: str) -> set[int]:
    """The advisory-lock keys the worker connected as `application_name` holds."""
    with engine.connect() as connection:
        rows = connection.execute(text(
            "SELECT (l.classid::bigint << 32) | l.objid::bigint FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND a.application_name = :name"), {"name": application_name}).all()  # fmt: skip
    return {row[0] for row in rows}
