"""Scheduled jobs, run by APScheduler inside the app process."""

from clearbg_app.jobs.scheduler import build_scheduler, credits_job, purge_images_job, purge_request_logs_job

__all__ = ["build_scheduler", "credits_job", "purge_images_job", "purge_request_logs_job"]
