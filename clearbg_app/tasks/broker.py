"""The one broker of this process, made at import from the settings (Dramatiq binds each actor to
the broker set when it is declared): a `RedisBroker` for `CLEARBG_QUEUE_URL=redis://...`, otherwise
Dramatiq's in-process `StubBroker`, which a worker thread of the app serves."""

from __future__ import annotations

from typing import Any

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker

from clearbg_app import metrics
from clearbg_app.settings import get_settings

NAMESPACE = "clearbg"
QUEUES = ("inference", "default", "batch")  # single images, mail and webhooks, batch items


class QueueUnavailable(Exception):
    """The broker named by CLEARBG_QUEUE_URL cannot be reached."""


def _make_broker() -> dramatiq.Broker:
    settings = get_settings()
    if not settings.queue_url:
        return StubBroker()
    return RedisBroker(
        url=settings.queue_url, namespace=NAMESPACE, heartbeat_timeout=settings.queue_heartbeat_ms,
        maintenance_chance=settings.queue_maintenance_chance, socket_timeout=5, socket_connect_timeout=5,
    )  # fmt: skip


class TaskMetrics(dramatiq.Middleware):
    """Counts each handled message by actor and outcome: done, retried (it raised and has retries
    left, so Dramatiq sends it again after its back-off) or given_up (its retries are spent)."""

    def after_process_message(self, broker: dramatiq.Broker, message: Any, *, result: Any = None, exception: BaseException | None = None) -> None:
        outcome = "done"
        if exception is not None:
            limit = message.options.get("max_retries", broker.get_actor(message.actor_name).options.get("max_retries", 20))
            outcome = "retried" if message.options.get("retries", 0) < limit else "given_up"
        metrics.tasks_processed.labels(message.actor_name, outcome).inc()


broker = _make_broker()
broker.add_middleware(TaskMetrics())
dramatiq.set_broker(broker)
embedded = isinstance(broker, StubBroker)


def redis_client() -> Any:
    """The broker's Redis connection (results of `CLEARBG_INFERENCE=queue` travel through it too)."""
    if not isinstance(broker, RedisBroker):
        raise QueueUnavailable("The in-process queue has no Redis; set CLEARBG_QUEUE_URL.")
    return broker.client


def check() -> None:
    """Raise `QueueUnavailable` with a sentence when the broker cannot be reached (nothing to reach
    for the in-process queue)."""
    if embedded:
        return
    try:
        redis_client().ping()
    except redis.RedisError as error:
        raise QueueUnavailable(f"The task queue at CLEARBG_QUEUE_URL cannot be reached: {error}") from None


def depths() -> dict[str, int]:
    """Messages waiting in each queue (delayed ones included)."""
    if isinstance(broker, StubBroker):
        return {name: sum(broker.queues[q].qsize() for q in (name, f"{name}.DQ") if q in broker.queues) for name in QUEUES}
    client = redis_client()
    return {name: int(client.llen(f"{NAMESPACE}:{name}")) + int(client.llen(f"{NAMESPACE}:{name}.DQ")) for name in QUEUES}


def dead_letters() -> int:
    """Messages Dramatiq gave up on (kept a week in its dead-letter queues)."""
    if isinstance(broker, StubBroker):
        return len(broker.dead_letters)
    client = redis_client()
    return sum(int(client.zcard(f"{NAMESPACE}:{name}.XQ")) for name in QUEUES)


def empty_embedded() -> None:
    """Drop every message of the in-process broker. Its queues count a message that a stopping worker
    hands back twice (put back, never marked done), so after the flush they are set to hold nothing
    unfinished, which is then true: a later `join` or drain waits for real work only."""
    if not isinstance(broker, StubBroker):
        return
    broker.flush_all()
    for queue in broker.queues.values():
        with queue.all_tasks_done:
            queue.unfinished_tasks = 0
            queue.all_tasks_done.notify_all()
