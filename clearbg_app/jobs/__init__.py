"""Scheduled jobs, run by APScheduler inside the app process."""

from clearbg_app.jobs.scheduler import (
    anonymize_accounts_job,
    build_scheduler,
    credits_job,
    exports_job,
    purge_images_job,
    purge_request_logs_job,
    truncate_log_ips_job,
)

__all__ = [
    "anonymize_accounts_job",
    "build_scheduler",
    "credits_job",
    "exports_job",
    "purge_images_job",
    "purge_request_logs_job",
    "truncate_log_ips_job",
]
