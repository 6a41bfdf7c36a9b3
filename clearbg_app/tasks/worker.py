"""Serving the queue: a Dramatiq `Worker` (its threads) in this process, with the inference pool and
the batch processor the tasks use. The app starts one in its own process (the embedded default, or
beside a local pool with a Redis queue); `python -m clearbg_app worker` is a process that does only this."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

import dramatiq

from clearbg_app.db import session_scope
from clearbg_app.inference import InferencePool
from clearbg_app.inference.remote import HEARTBEAT_SECONDS, heartbeat
from clearbg_app.services import batch_worker
from clearbg_app.services.background import announce
from clearbg_app.services.url_fetch import AddressPolicy, public_only
from clearbg_app.settings import get_settings
from clearbg_app.tasks import actors, broker

log = logging.getLogger(__name__)


@dataclass
class Running:
    worker: dramatiq.Worker
    processor: batch_worker.BatchWorker
    name: str
    _stop: threading.Event = field(default_factory=threading.Event)

    def stop(self, timeout_ms: int = 30_000) -> None:
        """Stop taking messages and finish the ones in hand (an item waiting for the pool goes back)."""
        self._stop.set()
        self.processor.stop()
        self.worker.stop(timeout=timeout_ms)
        broker.empty_embedded()  # in-process messages end with the process; the next start sends again what is open


def start(
    *,
    pool: InferencePool,
    url_policy: AddressPolicy = public_only,
    threads: int | None = None,
) -> Running:
    """Serve every queue with `pool`; send again the batch items left open (a lost message, a restart)."""
    broker.check()
    broker.empty_embedded()  # what was announced with nobody serving: the sweep below sends what is still open
    processor = batch_worker.BatchWorker(pool=pool, url_policy=url_policy)
    actors.served.processor, actors.served.pool = processor, pool
    # A thread per inference worker and two more, so a single image is taken while batch items wait for
    # an idle inference worker; each queue prefetches no more than that (Dramatiq's default, twice as
    # many, lets the first worker of several take a whole batch, and a killed worker hold more items).
    threads = threads or pool.config.worker_count + 2
    worker = dramatiq.Worker(broker.broker, worker_threads=threads, worker_timeout=200)
    worker.queue_prefetch = threads
    worker.start()
    running = Running(worker=worker, processor=processor, name=get_settings().instance())
    with session_scope() as session:
        if open_items := batch_worker.open_item_ids(session):
            log.info("tasks: %d open batch items sent to the queue again", len(open_items))
            announce("batch_items", open_items)
    announce("mail")
    if not broker.embedded:
        threading.Thread(target=_beat, args=(running, pool), name="clearbg-heartbeat", daemon=True).start()
    return running


def _beat(running: Running, pool: InferencePool) -> None:
    while not running._stop.is_set():
        try:
            heartbeat(pool, broker.redis_client(), running.name)
        except Exception:  # noqa: BLE001 - Redis away for a moment: the next beat tries again
            log.warning("tasks: heartbeat failed", exc_info=True)
        running._stop.wait(HEARTBEAT_SECONDS)
