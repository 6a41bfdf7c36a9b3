"""The tasks. Each message carries an id (or a key), never the work itself: the database is the
record, so a message delivered twice, late, or naming nothing ends without effect, and a task that
raises is retried with exponential back-off by Dramatiq. Importing this module registers the
senders of `services.background.announce`. Data exports are built here too; the scheduled exports
job sweeps up any whose message was lost (once per period across instances).

Priorities (lower first, when a worker holds several messages): single images 0, mail and webhooks
10, data exports 50, batch items 100; batch items also start only on an idle inference worker.
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

import dramatiq

from clearbg_app.clock import as_utc, utcnow
from clearbg_app.db import session_scope
from clearbg_app.inference import InferencePool
from clearbg_app.inference.remote import INFER_ACTOR, INFER_QUEUE, serve
from clearbg_app.models import Batch, WebhookStatus
from clearbg_app.services import batch_webhooks, batch_worker, exports, mail
from clearbg_app.services.background import register_sender
from clearbg_app.services.url_fetch import public_only
from clearbg_app.storage import get_blob_store
from clearbg_app.tasks import broker

log = logging.getLogger(__name__)

REQUEUE_DELAY_MS = 2_000  # an item that found the pool busy or storage down is sent again this much later
RETRIES = {"max_retries": 8, "min_backoff": 1_000, "max_backoff": 300_000}  # a task that raised: 1 s, 2 s, 4 s ... 5 min


class _Served:
    """What this process's worker serves with: set by `tasks.worker.start`."""

    processor: batch_worker.BatchWorker | None = None
    pool: InferencePool | None = None


served = _Served()


def _text(value: object) -> str | None:
    """A message's one argument, if it is a string of sane length (a malformed payload ends the task)."""
    if isinstance(value, str) and 0 < len(value) <= 200:
        return value
    log.warning("tasks: malformed message argument %r; dropped", repr(value)[:80])
    return None


@dramatiq.actor(queue_name="batch", priority=100, **RETRIES)
def process_batch_item(item_id: object = None) -> None:
    """One batch item (`BatchWorker.process_item`), then its batch's webhook when it finished the batch."""
    if (text := _text(item_id)) is None or served.processor is None:
        return
    outcome = served.processor.process_item(text)
    if outcome.requeued:
        process_batch_item.send_with_options(args=(text,), delay=REQUEUE_DELAY_MS)
    if outcome.webhook_due and outcome.batch_id:
        deliver_webhook.send(str(outcome.batch_id))


@dramatiq.actor(actor_name=INFER_ACTOR, queue_name=INFER_QUEUE, priority=0, max_retries=0)
def infer(job_key: object = None) -> None:
    """One single image of a web process (`CLEARBG_INFERENCE=queue`): its caller waits for the result."""
    if (text := _text(job_key)) is None or served.pool is None:
        return
    if broker.embedded:  # web processes of the embedded default hold the pool and never send these
        log.warning("tasks: an inference message on the in-process queue; dropped")
        return
    serve(served.pool, text, broker.redis_client())


@dramatiq.actor(queue_name="default", priority=10, **RETRIES)
def deliver_webhook(batch_id: object = None) -> None:
    """One attempt at a batch's webhook; a failed one is sent again when its back-off is over."""
    if (text := _text(batch_id)) is None:
        return
    try:
        parsed = uuid.UUID(text)
    except ValueError:
        log.warning("tasks: webhook message named no batch (%r); dropped", text)
        return
    policy = served.processor.url_policy if served.processor else public_only
    if batch_webhooks.deliver_webhook(parsed, policy=policy):
        return
    with session_scope() as session:
        batch = session.get(Batch, parsed)
        next_at = batch.webhook_next_at if batch and batch.webhook_status == WebhookStatus.PENDING else None
    if next_at is not None:
        delay = max(timedelta(0), as_utc(next_at) - utcnow())
        deliver_webhook.send_with_options(args=(text,), delay=int(delay.total_seconds() * 1000))


@dramatiq.actor(queue_name="default", priority=10, **RETRIES)
def deliver_mail() -> None:
    """Send the outbox mail that is due; when some is waiting for a retry, look again at its time."""
    mail.deliver_due()
    if (next_at := mail.next_attempt_at()) is not None:
        delay = max(timedelta(seconds=1), as_utc(next_at) - utcnow())
        deliver_mail.send_with_options(delay=int(delay.total_seconds() * 1000))


@dramatiq.actor(queue_name="default", priority=50, **RETRIES)
def build_export(export_id: object = None) -> None:
    """One data export (`exports.build_one`): a second message, or one for an export built meanwhile, does nothing."""
    if (text := _text(export_id)) is None:
        return
    try:
        parsed = uuid.UUID(text)
    except ValueError:
        log.warning("tasks: export message named no export (%r); dropped", text)
        return
    with session_scope() as session:
        exports.build_one(session, store=get_blob_store(), export_id=parsed)


def send_items(item_ids: list[uuid.UUID]) -> None:
    for item_id in item_ids:
        process_batch_item.send(str(item_id))


register_sender("batch_items", send_items)
register_sender("mail", deliver_mail.send)
register_sender("webhook", lambda batch_id: deliver_webhook.send(str(batch_id)))
register_sender("export", lambda export_id: build_export.send(str(export_id)))
