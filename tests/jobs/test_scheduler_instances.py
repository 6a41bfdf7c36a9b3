"""Two real instances on one PostgreSQL, each with its own scheduler holding every job: the purge runs
once per period (the advisory lock, and the last run's start within the period), and each run
records the instance that made it."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta

import pytest
from sqlmodel import col, select

from clearbg_app.clock import as_utc
from clearbg_app.models import JobRun, JobStatus
from clearbg_app.settings import PROJECT_ROOT

pytestmark = [pytest.mark.multiprocess, pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)]

PERIOD, SECONDS = 4, 13
INSTANCE = f"""
import logging, time
logging.basicConfig(level=logging.INFO)
from clearbg_app.jobs import build_scheduler
scheduler = build_scheduler()
scheduler.start()
time.sleep({SECONDS})
scheduler.shutdown(wait=True)
"""


def test_two_instances_run_the_purge_once_per_period(db_url, data_dir, session, tmp_path):
    env = {key: value for key, value in os.environ.items() if not key.startswith("CLEARBG_")}
    env |= {"CLEARBG_DATABASE_URL": db_url, "CLEARBG_DATA_DIR": str(data_dir), "CLEARBG_PURGE_INTERVAL_SECONDS": str(PERIOD)}
    logs = {name: tmp_path / f"{name}.log" for name in ("instance-a", "instance-b")}
    processes = []
    for name, log in logs.items():
        with log.open("w") as out:
            processes.append(subprocess.Popen([sys.executable, "-c", INSTANCE], cwd=PROJECT_ROOT, env=env | {"CLEARBG_INSTANCE_NAME": name},
                                              stdout=out, stderr=subprocess.STDOUT))  # fmt: skip
    for process in processes:
        assert process.wait(120) == 0
    runs = session.exec(select(JobRun).where(JobRun.job == "purge_images").order_by(col(JobRun.started_at))).all()
    starts = [as_utc(run.started_at) for run in runs]
    assert 2 <= len(runs) <= SECONDS // PERIOD + 1, [(run.instance, run.started_at) for run in runs]  # not one per instance
    assert all(later - earlier >= timedelta(seconds=PERIOD / 2) for earlier, later in zip(starts, starts[1:], strict=False))
    assert all(run.status == JobStatus.SUCCEEDED and run.instance in logs for run in runs)
    skipped = sum(log.read_text().count("job purge_images: run on another instance this period, skipped") for log in logs.values())
    assert skipped >= len(runs) - 1  # both schedule it every period; the second to come skips
