"""A finished batch announced to its webhook: signed (`ClearBG-Signature`), delivered through the SSRF-safe
connection, retried with back-off, each attempt claimed so the task and the sweep never repeat one."""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import logging
import uuid
from datetime import timedelta

from sqlmodel import col, select, update

from clearbg_app.clock import Clock, utcnow
from clearbg_app.db import session_scope
from clearbg_app.models import Batch, WebhookStatus
from clearbg_app.services.batches import summary
from clearbg_app.services.url_fetch import (
    AddressPolicy,
    Timeouts,
    UrlFetchFailed,
    UrlRefused,
    pinned_connection,
    public_only,
)
from clearbg_app.settings import get_settings

log = logging.getLogger(__name__)


WEBHOOK_TIMEOUTS = Timeouts(5, 10, 15)
WEBHOOK_LEASE = timedelta(minutes=1)  # an attempt in hand: longer than its timeouts add up to
WEBHOOK_BACKOFF = (timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=30), timedelta(hours=2), timedelta(hours=12))
SIGNATURE_HEADER = "ClearBG-Signature"
SIGNATURE_TOLERANCE_SECONDS = 300


def webhook_secret(user_id: uuid.UUID) -> str:
    """The account's signing secret, derived from the server's secret key and the user id."""
    digest = hmac.new(get_settings().signing_key(), f"batch-webhook:{user_id}".encode(), hashlib.sha256).hexdigest()
    return f"whsec_{digest}"


def signature_header(secret: str, timestamp: int, body: bytes) -> str:
    """`t=<unix>,v1=<hex HMAC-SHA256 of "{timestamp}.{body}">`."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify_signature(secret: str, header: str, body: bytes, *, now: float, tolerance: int = SIGNATURE_TOLERANCE_SECONDS) -> bool:
    """Whether `header` signs `body` with `secret` within `tolerance` seconds of `now` (what receivers do)."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    if not fields.get("t", "").isdigit() or abs(now - int(fields["t"])) > tolerance:
        return False
    expected = signature_header(secret, int(fields["t"]), body).split("v1=", 1)[1]
    return hmac.compare_digest(expected, fields.get("v1", ""))


def _post(url: str, body: bytes, headers: dict[str, str], *, policy: AddressPolicy, timeouts: Timeouts) -> int:
    """POST to `url` at its checked addresses (no redirects followed); the status answered."""
    connection, target = pinned_connection(url, policy=policy, timeouts=timeouts)
    try:
        connection.request("POST", target, body=body, headers=headers)
        response = connection.getresponse()
        response.read(64 * 1024)
        return response.status
    finally:
        connection.close()


def deliver_webhook(
    batch_id: uuid.UUID, *, policy: AddressPolicy = public_only, clock: Clock = utcnow, timeouts: Timeouts = WEBHOOK_TIMEOUTS
) -> bool:
    """One attempt, if it is due: POST the signed summary; 2xx delivers, anything else schedules the
    next attempt (1 min, 5 min, 30 min, 2 h, 12 h after the previous one) or gives up after the last.
    The attempt is claimed first (its due time moves past a lease), so the queue's task and the
    scheduled sweep never make the same attempt twice."""
    now = clock()
    with session_scope() as session:
        claimed = session.exec(
            update(Batch)
            .where(col(Batch.id) == batch_id, col(Batch.webhook_status) == WebhookStatus.PENDING, col(Batch.webhook_next_at) <= now)
            .values(webhook_next_at=now + WEBHOOK_LEASE)
        )  # fmt: skip
        session.commit()
        batch = session.get(Batch, batch_id) if claimed.rowcount == 1 else None
        if batch is None or not batch.webhook_url:
            return False
        body = json.dumps({"type": "batch.completed", "data": summary(session, batch=batch)}, separators=(",", ":")).encode()
        url, user_id = batch.webhook_url, batch.user_id
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "ClearBG webhooks",
        SIGNATURE_HEADER: signature_header(webhook_secret(user_id), int(now.timestamp()), body),
    }
    try:
        status = _post(url, body, headers, policy=policy, timeouts=timeouts)
        error = None if 200 <= status < 300 else f"HTTP {status}"
    except (UrlRefused, UrlFetchFailed) as refused:
        error = str(refused)
    except (OSError, http.client.HTTPException) as failed:
        error = f"{type(failed).__name__}: {failed}"
    with session_scope() as session:
        batch = session.get_one(Batch, batch_id)
        batch.webhook_attempts += 1
        batch.webhook_last_error = error[:500] if error else None
        if error is None:
            batch.webhook_status, batch.webhook_delivered_at, batch.webhook_next_at = WebhookStatus.DELIVERED, now, None
        elif batch.webhook_attempts > len(WEBHOOK_BACKOFF):
            batch.webhook_status, batch.webhook_next_at = WebhookStatus.FAILED, None
        else:
            batch.webhook_next_at = now + WEBHOOK_BACKOFF[batch.webhook_attempts - 1]
        session.add(batch)
    if error:
        log.info("batches: webhook of %s failed (attempt %d): %s", batch_id, batch.webhook_attempts, error)
    return error is None


def deliver_due_webhooks(*, policy: AddressPolicy = public_only, clock: Clock = utcnow) -> tuple[int, int]:
    """Attempt every webhook whose time has come; (delivered, failed attempts)."""
    with session_scope() as session:
        due = session.exec(
            select(Batch.id).where(Batch.webhook_status == WebhookStatus.PENDING, col(Batch.webhook_next_at) <= clock())
        ).all()
    delivered = sum(deliver_webhook(batch_id, policy=policy, clock=clock) for batch_id in due)
    return delivered, len(due) - delivered
