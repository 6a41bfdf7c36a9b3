"""The scheduler that runs the jobs of `services.jobs` inside the app process."""

from clearbg_app.jobs.scheduler import build_scheduler

__all__ = ["build_scheduler"]
