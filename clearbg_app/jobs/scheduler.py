"""The in-process scheduler: every job of `services.jobs` at its interval, each run through
`run_job` (recorded, on one instance at a time, once per period however many instances schedule it)."""

from __future__ import annotations

from apscheduler.schedulers.background import BackgroundScheduler

from clearbg_app.clock import Clock, utcnow
from clearbg_app.services.job_runs import run_job
from clearbg_app.services.jobs import job_name, scheduled_jobs


def build_scheduler(clock: Clock = utcnow) -> BackgroundScheduler:
    """A scheduler with every job registered; the caller starts and stops it."""
    scheduler = BackgroundScheduler(timezone="UTC")
    for job, seconds in scheduled_jobs():
        scheduler.add_job(
            run_job,
            "interval",
            seconds=seconds,
            args=(job_name(job), job),
            kwargs={"clock": clock, "period": seconds},  # once per period across instances
            id=job_name(job),
            max_instances=1,
            coalesce=True,
            next_run_time=clock(),
        )
    return scheduler
