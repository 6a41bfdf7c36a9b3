"""Batch webhooks against real HTTP receivers on loopback: the signature verifies (and a forged one does
not), a failing receiver is retried at 1 min, 5 min, 30 min, 2 h and 12 h by the scheduled job on the
injected clock, and delivery stops at the first 2xx."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
import uuid
from datetime import timedelta

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from clearbg_app.models import Batch, WebhookStatus
from clearbg_app.services import batch_webhooks
from tests.factories import BATCHES, SMALL, create, run_all
from tests.loopback import loopback_only, serve_asgi


@pytest.fixture
def owner_credits() -> int:
    return 1000

pytestmark = pytest.mark.both_blob_backends  # the local directory, and S3 on moto


class Receiver:
    """Records every POST; answers `statuses` in turn (the last one from then on)."""

    def __init__(self, *statuses: int) -> None:
        self.statuses, self.calls = list(statuses), []

    async def hook(self, request: Request) -> Response:
        self.calls.append((dict(request.headers), await request.body()))
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        return Response("ok" if status < 300 else "nope", status_code=status)

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/hook", self.hook, methods=["POST"])])


def verify(secret: str, header: str, body: bytes) -> bool:
    """What the docs tell receivers to do, written independently of the service."""
    fields = dict(part.split("=", 1) for part in header.split(","))
    expected = hmac.new(secret.encode(), f"{fields['t']}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, fields["v1"])


def test_the_completed_batch_is_posted_signed_once(client, key, owner, worker, clock):
    receiver = Receiver(200)
    with serve_asgi(receiver.app(), "webhook receiver") as base:
        response = create(client, key, (("a.jpg", SMALL), ("b.jpg", b"not an image")), webhook_url=f"{base}/hook")
        assert response.status_code == 202, response.text
        assert response.json()["data"]["webhook"]["status"] == "waiting"
        run_all(worker)
        assert len(receiver.calls) == 1
        assert batch_webhooks.deliver_due_webhooks(policy=loopback_only, clock=clock) == (0, 0)  # nothing more is due
    headers, body = receiver.calls[0]
    secret = batch_webhooks.webhook_secret(owner.id)
    assert secret.startswith("whsec_") and secret != batch_webhooks.webhook_secret(owner.id.__class__(int=owner.id.int + 1))
    header = headers["clearbg-signature"]
    assert header.startswith(f"t={int(clock().timestamp())},v1=")
    assert verify(secret, header, body)
    assert batch_webhooks.verify_signature(secret, header, body, now=clock().timestamp())
    # A forged body, a wrong secret, an old timestamp: all detectable.
    forged = body.replace(b'"failed":1', b'"failed":0')
    assert forged != body and not verify(secret, header, forged)
    assert not batch_webhooks.verify_signature(secret, header, forged, now=clock().timestamp())
    assert not batch_webhooks.verify_signature("whsec_wrong", header, body, now=clock().timestamp())
    assert not batch_webhooks.verify_signature(secret, header, body, now=clock().timestamp() + 3600)
    event = json.loads(body)
    assert event["type"] == "batch.completed"
    assert event["data"]["id"] == response.json()["data"]["id"] and event["data"]["counts"]["done"] == 1
    shown = client.get(f"{BATCHES}/{event['data']['id']}", headers={"X-Api-Key": key}).json()["data"]["webhook"]
    assert shown == {"url": f"{base}/hook", "status": "delivered", "attempts": 1}
    assert client.get("/api/v1.0/webhook_secret", headers={"X-Api-Key": key}).json()["data"]["signing_secret"] == secret


def test_a_failing_receiver_is_retried_with_backoff_until_it_gives_up(client, key, worker, clock, session, monkeypatch):
    import clearbg_app.services.jobs as scheduler

    deliver = batch_webhooks.deliver_due_webhooks  # the job as scheduled, with the tests' loopback policy
    monkeypatch.setattr(batch_webhooks, "deliver_due_webhooks", lambda clock: deliver(policy=loopback_only, clock=clock))
    receiver = Receiver(500)
    with serve_asgi(receiver.app(), "webhook receiver") as base:
        batch_id = create(client, key, webhook_url=f"{base}/hook").json()["data"]["id"]
        run_all(worker)
        finished = clock()
        assert len(receiver.calls) == 1  # the first attempt, at completion
        expected = [finished]
        for wait in batch_webhooks.WEBHOOK_BACKOFF:
            clock.advance(seconds=wait.total_seconds() - 1)
            assert scheduler.batch_webhooks_job(clock=clock) == {"webhooks_delivered": 0, "webhooks_failed": 0}  # not yet
            clock.advance(seconds=1)
            assert scheduler.batch_webhooks_job(clock=clock) == {"webhooks_delivered": 0, "webhooks_failed": 1}
            expected.append(clock())
        clock.advance(days=2)
        assert scheduler.batch_webhooks_job(clock=clock) == {"webhooks_delivered": 0, "webhooks_failed": 0}
    assert [int(headers["clearbg-signature"].split(",")[0][2:]) for headers, _ in receiver.calls] == [int(t.timestamp()) for t in expected]
    assert [b - a for a, b in itertools.pairwise(expected)] == list(batch_webhooks.WEBHOOK_BACKOFF)
    session.expire_all()
    batch = session.get(Batch, uuid.UUID(batch_id))
    assert batch.webhook_status == WebhookStatus.FAILED and batch.webhook_attempts == 6 and batch.webhook_last_error == "HTTP 500"


def test_delivery_stops_at_the_first_2xx(client, key, worker, clock):
    receiver = Receiver(503, 502, 204)
    with serve_asgi(receiver.app(), "webhook receiver") as base:
        batch_id = create(client, key, webhook_url=f"{base}/hook").json()["data"]["id"]
        run_all(worker)
        for wait in (timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=30), timedelta(hours=2)):
            clock.advance(seconds=wait.total_seconds())
            batch_webhooks.deliver_due_webhooks(policy=loopback_only, clock=clock)
    assert len(receiver.calls) == 3
    shown = client.get(f"{BATCHES}/{batch_id}", headers={"X-Api-Key": key}).json()["data"]["webhook"]
    assert shown["status"] == "delivered" and shown["attempts"] == 3


@pytest.mark.parametrize("status", [301, 404])
def test_redirects_and_errors_count_as_failures(client, key, worker, clock, status):
    receiver = Receiver(status)
    with serve_asgi(receiver.app(), "webhook receiver") as base:
        batch_id = create(client, key, webhook_url=f"{base}/hook").json()["data"]["id"]
        run_all(worker)
    shown = client.get(f"{BATCHES}/{batch_id}", headers={"X-Api-Key": key}).json()["data"]["webhook"]
    assert shown == {"url": f"{base}/hook", "status": "pending", "attempts": 1}


def test_the_documented_python_snippet_verifies_our_signatures(monkeypatch):
    from clearbg_app.api.v1.openapi import WEBHOOK_VERIFY_EXAMPLE, docs_html, openapi_document

    namespace: dict = {}
    exec(WEBHOOK_VERIFY_EXAMPLE, namespace)  # noqa: S102 - the documentation's own code
    check = namespace["verify_clearbg_webhook"]
    body, now = b'{"type":"batch.completed"}', int(time.time())
    header = batch_webhooks.signature_header("whsec_test", now, body)
    assert check("whsec_test", header, body)
    assert not check("whsec_test", header, body + b" ")
    assert not check("whsec_other", header, body)
    assert not check("whsec_test", batch_webhooks.signature_header("whsec_test", now - 3600, body), body)  # a replay
    assert WEBHOOK_VERIFY_EXAMPLE in openapi_document()["info"]["description"]
    assert "verify_clearbg_webhook" in docs_html("http://x")
