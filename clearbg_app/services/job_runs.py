"""Reading the record of scheduled-job runs (written by `clearbg_app.jobs.runs`)."""

from __future__ import annotations

from sqlmodel import Session, col, select

from clearbg_app.models import JobRun


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
