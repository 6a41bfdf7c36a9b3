"""Job runs, the one place for their records: run a job once across every instance sharing the
database and record the run, and read the records back for the admin dashboard.

On PostgreSQL a session-level advisory lock (keyed by the job's name) elects the runner: a
second instance finds the lock taken and skips the run. SQLite serves one instance and needs
none. Each run is a `JobRun` row: written `running` before the work, finished with its counts
or its error; a row left `running` is a run that was killed (the job is idempotent, so the
next run finishes what it left).
"""

from __future__ import annotations

import hashlib
import logging
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta

from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, func, select

from clearbg_app.clock import Clock, as_utc, utcnow
from clearbg_app.db import get_engine, session_scope
from clearbg_app.log_format import log_context
from clearbg_app.metrics import job_runs
from clearbg_app.models import JobRun, JobStatus
from clearbg_app.settings import get_settings

log = logging.getLogger(__name__)

Counts = dict[str, int]


def lock_key(job: str) -> int:
    """A stable signed 64-bit advisory-lock key for `job`."""
    return int.from_bytes(hashlib.sha256(f"clearbg-job:{job}".encode()).digest()[:8], "big", signed=True)


@contextmanager
def single_runner(job: str, engine: Engine) -> Iterator[bool]:
    """Yields True when this process may run `job` now (it holds the lock until the block ends)."""
    if engine.dialect.name != "postgresql":
        yield True
        return
    with engine.connect() as connection:
        key = lock_key(job)
        held = connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": key}).scalar()
        connection.commit()
        try:
            yield bool(held)
        finally:
            if held:
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
                connection.commit()


def run_job(
    name: str, work: Callable[..., Counts], *, clock: Clock = utcnow, engine: Engine | None = None, period: float | None = None
) -> JobRun | None:
    """Run `work(clock=clock)` under the single-runner lock and record it. None when another
    instance is running it, or (with `period`, the scheduler's interval in seconds) has started it
    within the last half period: each instance schedules every job, and one run per period is made.
    An error is recorded (and logged), not raised: the scheduler keeps going."""
    engine = engine or get_engine()
    with single_runner(name, engine) as mine:
        if mine and period:
            with session_scope(engine) as session:
                last = session.exec(select(func.max(JobRun.started_at)).where(JobRun.job == name)).one()
            mine = last is None or as_utc(last) <= clock() - timedelta(seconds=period / 2)
        if not mine:
            log.info("job %s: run on another instance this period, skipped", name)
            job_runs.labels(name, "skipped").inc()
            return None
        with session_scope(engine) as session:
            run = JobRun(job=name, started_at=clock(), instance=get_settings().instance()[:100])
            session.add(run)
        try:
            with log_context(f"job-{name}-{run.id}"):
                run.counts = work(clock=clock)
            run.status = JobStatus.SUCCEEDED
        except Exception as error:  # noqa: BLE001 - recorded for the admin dashboard
            log.exception("job %s failed", name)
            run.status = JobStatus.FAILED
            run.error = "".join(traceback.format_exception_only(error)).strip()[:2000]
        run.finished_at = clock()
        with session_scope(engine) as session:
            session.merge(run)
        job_runs.labels(name, run.status.value).inc()
        return run



def latest_runs(session: Session, *, per_job: int = 1) -> dict[str, list[JobRun]]:
    """The newest `per_job` runs of every job that has run, by job name."""
    names = session.exec(select(JobRun.job).distinct()).all()
    return {
        name: list(
            session.exec(
                select(JobRun).where(JobRun.job == name).order_by(col(JobRun.started_at).desc()).limit(per_job)
            ).all()
        )
        for name in sorted(names)
    }
