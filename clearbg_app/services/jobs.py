"""The scheduled jobs: what each does and how often. Each opens its own sessions, is idempotent and
returns its counts; `job_runs.run_job` records every run and keeps a job to one instance at a time.
`clearbg_app.jobs` schedules them; a state may also run one at once (an export asked for now)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from clearbg_app.clock import Clock, utcnow
from clearbg_app.db import checkpoint_wal, session_scope
from clearbg_app.services import batch_webhooks, batch_worker, batches, credits, deletion, exports, images, policies, request_logs, requests
from clearbg_app.services.job_runs import Counts
from clearbg_app.settings import get_settings
from clearbg_app.storage import get_blob_store

log = logging.getLogger(__name__)

REQUEST_LOG_PURGE_SECONDS = 3600
CREDITS_JOB_SECONDS = 3600
BATCH_WEBHOOK_SECONDS = 60
ANONYMIZE_JOB_SECONDS = 3600
POLICY_NOTICES_SECONDS = 900


def purge_images_job(clock: Clock = utcnow) -> Counts:
    """Delete expired originals and results (blobs first, then rows); those of accounts under a legal
    hold stay, counted as `images_held`."""
    with session_scope() as session:
        purged = images.purge_expired(session, store=get_blob_store(), clock=clock)
        held = images.held_expired(session, now=clock())
    if purged or held:
        log.info("purge_images: deleted %d expired images, kept %d under a legal hold", purged, held)
    return {"images_deleted": purged, "images_held": held}


def purge_request_logs_job(clock: Clock = utcnow) -> Counts:
    """Delete request logs past their retention period."""
    with session_scope() as session:
        purged = request_logs.purge_old(session, clock=clock)
    if purged:
        log.info("purge_request_logs: deleted %d old entries", purged)
    return {"logs_deleted": purged}


def credits_job(clock: Clock = utcnow) -> Counts:
    """Grant this month's free allowance to verified accounts, then expire lots past their date."""
    with session_scope() as session:
        granted = credits.grant_monthly_allowance(session, now=clock())
    with session_scope() as session:
        expired = credits.expire_due(session, now=clock())
    if granted or expired:
        log.info("credits: %d monthly allowances granted, %d lots expired", granted, expired)
    return {"allowances_granted": granted, "lots_expired": expired}


def purge_batches_job(clock: Clock = utcnow) -> Counts:
    """Delete finished batches past their retention (blobs first, then rows), and queue again the items
    an instance left `processing` when it died."""
    with session_scope() as session:
        purged = batches.purge_expired(session, store=get_blob_store(), clock=clock)
    with session_scope() as session:
        requeued = batch_worker.requeue_interrupted(session, now=clock())
    return {"batches_deleted": purged, "items_requeued": requeued}


def batch_webhooks_job(clock: Clock = utcnow) -> Counts:
    """Retry the batch webhooks that are due (backoff 1 min, 5 min, 30 min, 2 h, 12 h)."""
    delivered, failed = batch_webhooks.deliver_due_webhooks(clock=clock)
    return {"webhooks_delivered": delivered, "webhooks_failed": failed}


def exports_job(clock: Clock = utcnow) -> Counts:
    """Build the data exports people asked for, then purge those past their download period."""
    store = get_blob_store()
    with session_scope() as session:
        built = exports.build_pending(session, store=store, clock=clock)
    with session_scope() as session:
        purged = exports.purge_expired(session, store=store, clock=clock)
    return {"exports_built": built, "exports_purged": purged}


def truncate_log_ips_job(clock: Clock = utcnow) -> Counts:
    """Remove IP prefixes from request logs and ended sessions after a week."""
    with session_scope() as session:
        return {"ips_removed": request_logs.truncate_ips(session, clock=clock)}


def anonymize_accounts_job(clock: Clock = utcnow) -> Counts:
    """Anonymize the accounts whose deletion grace period is over, then truncate SQLite's WAL so that
    no earlier version of their rows stays in it."""
    with session_scope() as session:
        counts = deletion.anonymize_due(session, store=get_blob_store(), clock=clock)
    if counts["accounts_anonymized"]:
        checkpoint_wal()
        log.info("anonymize_accounts: %d accounts anonymized", counts["accounts_anonymized"])
    return counts


def policy_notices_job(clock: Clock = utcnow) -> Counts:
    """Email every account once about each material policy change that has taken effect."""
    with session_scope() as session:
        sent = policies.send_material_notices(session, now=clock())
    if sent:
        log.info("policy_notices: %d notices sent", sent)
    return {"notices_sent": sent}


def purge_privacy_requests_job(clock: Clock = utcnow) -> Counts:
    """Delete unconfirmed contact requests after a day, closed ones after their retention period."""
    with session_scope() as session:
        return {"requests_deleted": requests.purge_old(session, clock=clock)}


def scheduled_jobs() -> list[tuple[Callable[..., Counts], int]]:
    """Every job with its interval in seconds."""
    return [
        (purge_images_job, get_settings().purge_interval_seconds),
        (purge_request_logs_job, REQUEST_LOG_PURGE_SECONDS),
        (credits_job, CREDITS_JOB_SECONDS),
        (purge_batches_job, get_settings().purge_interval_seconds),
        (batch_webhooks_job, BATCH_WEBHOOK_SECONDS),
        (exports_job, get_settings().export_interval_seconds),
        (truncate_log_ips_job, REQUEST_LOG_PURGE_SECONDS),
        (anonymize_accounts_job, ANONYMIZE_JOB_SECONDS),
        (policy_notices_job, POLICY_NOTICES_SECONDS),
        (purge_privacy_requests_job, REQUEST_LOG_PURGE_SECONDS),
    ]


def job_name(job: Callable[..., Counts]) -> str:
    return job.__name__.removesuffix("_job")
