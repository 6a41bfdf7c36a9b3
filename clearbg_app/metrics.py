"""Prometheus metrics of this process (`/metrics` serves them): requests, inference, credits, jobs, tasks.

Counters live in the process that counts them (each web or worker process is scraped on its own);
figures that belong to the whole site (batch items by state) are read from the database at scrape
time by `clearbg_app.api.ops`. No label ever holds a user, a key or a raw path.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from sqlalchemy import event
from sqlalchemy.orm import Session

REGISTRY = CollectorRegistry(auto_describe=True)

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
STAGE_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

http_requests = Counter(
    "clearbg_http_requests", "HTTP requests answered, by route template, method and status.",
    ["route", "method", "status"], registry=REGISTRY,
)  # fmt: skip
http_latency = Histogram(
    "clearbg_http_request_seconds", "Time to answer an HTTP request (until the body is sent), by route template.",
    ["route", "method"], buckets=LATENCY_BUCKETS, registry=REGISTRY,
)  # fmt: skip
inference_in_flight = Gauge("clearbg_inference_in_flight", "Images accepted by this process's inference pool and not finished.", registry=REGISTRY)
inference_queued = Gauge("clearbg_inference_queue_depth", "Images waiting for a free inference worker in this process.", registry=REGISTRY)
inference_stage = Histogram(
    "clearbg_inference_stage_seconds", "Seconds per image in each stage: queue, decode, inference, refine, encode.",
    ["stage"], buckets=STAGE_BUCKETS, registry=REGISTRY,
)  # fmt: skip
credits_charged = Counter("clearbg_credits_charged_units", "Credit units charged for results (100 units = 1 credit), once committed.", registry=REGISTRY)
job_runs = Counter("clearbg_job_runs", "Scheduled job runs by this process, by job and outcome (succeeded, failed, skipped).",
                   ["job", "outcome"], registry=REGISTRY)  # fmt: skip

STAGES = ("queue", "decode", "inference", "refine", "encode")


def observe_stages(timings) -> None:
    """Record one image's `inference.Timings`."""
    for stage in STAGES:
        inference_stage.labels(stage).observe(getattr(timings, stage))


def watch_pool(pool) -> None:
    """Report this pool's in-flight and queued images (read at scrape time)."""
    inference_in_flight.set_function(lambda: pool.in_flight)
    inference_queued.set_function(lambda: max(0, pool.in_flight - pool.config.worker_count))


_PENDING_UNITS = "clearbg_metrics_charged_units"


def count_charge(session: Session, units: int) -> None:
    """Count `units` charged in `session`'s transaction once it commits (a rollback forgets them)."""
    session.info[_PENDING_UNITS] = session.info.get(_PENDING_UNITS, 0) + units


@event.listens_for(Session, "after_commit")
def _charges_committed(session: Session) -> None:
    if units := session.info.pop(_PENDING_UNITS, 0):
        credits_charged.inc(units)


@event.listens_for(Session, "after_rollback")
def _charges_rolled_back(session: Session) -> None:
    session.info.pop(_PENDING_UNITS, None)

batch_items = Gauge("clearbg_batch_items", "Batch items in the database by state (the whole site; read at scrape time).",
                    ["state"], registry=REGISTRY)  # fmt: skip
task_queue_depth = Gauge("clearbg_task_queue_depth", "Task messages waiting in each queue of the broker, delayed ones included (read at scrape time).",
                         ["queue"], registry=REGISTRY)  # fmt: skip
task_dead_letters = Gauge("clearbg_task_dead_letters", "Task messages the queue gave up on after their retries (read at scrape time).",
                          registry=REGISTRY)  # fmt: skip
tasks_processed = Counter("clearbg_tasks", "Task messages this process handled, by actor and outcome (done, retried, given_up).",
                          ["actor", "outcome"], registry=REGISTRY)  # fmt: skip
