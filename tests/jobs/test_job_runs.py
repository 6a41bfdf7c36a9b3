"""Scheduled jobs record their runs, and on PostgreSQL run on one instance at a time."""

from __future__ import annotations

import threading

from sqlmodel import select

from clearbg_app.db import make_engine
from clearbg_app.jobs import build_scheduler
from clearbg_app.models import JobRun, JobStatus
from clearbg_app.services.job_runs import latest_runs, run_job
from clearbg_app.services.jobs import scheduled_jobs


def test_a_run_is_recorded_with_its_counts(session, clock):
    run = run_job("demo", lambda clock: {"done": 3}, clock=clock)
    assert run is not None and run.status == JobStatus.SUCCEEDED
    stored = session.exec(select(JobRun)).one()
    assert stored.job == "demo" and stored.counts == {"done": 3} and stored.finished_at is not None


def test_a_failing_job_is_recorded_and_does_not_raise(session, clock):
    def broken(clock):
        raise RuntimeError("disk full")

    run = run_job("broken", broken, clock=clock)
    assert run.status == JobStatus.FAILED and "disk full" in run.error
    clock.advance(minutes=5)
    run_job("broken", lambda clock: {"done": 0}, clock=clock)
    newest = latest_runs(session)["broken"][0]
    assert newest.status == JobStatus.SUCCEEDED


def test_every_scheduled_job_is_registered_through_the_runner(data_dir, clock):
    scheduler = build_scheduler(clock=clock)
    assert {job.id for job in scheduler.get_jobs()} == {job.__name__.removesuffix("_job") for job, _ in scheduled_jobs()}
    assert all(job.func is run_job for job in scheduler.get_jobs())


def test_two_instances_on_one_postgresql_never_run_a_job_at_once(postgres_url, clock):
    first, second = make_engine(postgres_url), make_engine(postgres_url)
    started, release = threading.Event(), threading.Event()
    calls: list[str] = []

    def slow(clock):
        calls.append("first")
        started.set()
        assert release.wait(10)
        return {"done": 1}

    worker = threading.Thread(target=run_job, args=("exclusive", slow), kwargs={"clock": clock, "engine": first})
    worker.start()
    assert started.wait(10)
    assert run_job("exclusive", lambda clock: calls.append("second") or {}, clock=clock, engine=second) is None
    release.set()
    worker.join(10)
    assert calls == ["first"]
    # The lock is released with the run: the other instance runs it next time.
    assert run_job("exclusive", lambda clock: calls.append("second") or {}, clock=clock, engine=second) is not None
    assert calls == ["first", "second"]
    first.dispose()
    second.dispose()

