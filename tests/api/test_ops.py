"""/healthz, /readyz and /metrics, request ids and JSON logs, on the real parts: SQLite and PostgreSQL,
a Redis of the test's own (stopped and started again), S3 on moto behind a proxy that is cut."""

from __future__ import annotations

import functools
import io
import json
import logging
import socket
import time
import uuid

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from clearbg_app import metrics
from clearbg_app.api import build_api, ops
from clearbg_app.inference import Job
from clearbg_app.log_format import JsonFormatter, RequestIdFilter
from clearbg_app.log_redaction import RedactSecrets
from clearbg_app.models import EntryKind
from clearbg_app.services import credits
from clearbg_app.services.job_runs import run_job
from clearbg_app.services.removal import default_pool
from tests.conftest import s3_settings, sample_bytes
from tests.factories import verified_user
from tests.loopback import serve_asgi
from tests.privacy_helpers import every_feature
from tests.redis_server import OwnRedis
from tests.tcp_proxy import tcp_proxy

TOKEN = "metrics-token-for-tests-" + "x" * 16


@pytest.fixture
def client(db_url) -> TestClient:
    default_pool()  # the app loads it at start-up
    return TestClient(build_api())


@pytest.fixture
def own_redis():
    server = OwnRedis()
    server.start()
    yield server
    server.stop()


def scrape(client: TestClient) -> dict[tuple[str, tuple], float]:
    response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def test_healthz_answers_without_touching_anything(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}
    assert response.headers["cache-control"] == "no-store"


def test_ready_on_the_embedded_default(client):
    response = client.get("/readyz")
    body = response.json()
    assert response.status_code == 200 and body["status"] == "ready"
    assert set(body["checks"]) == {"database", "storage", "model"}  # no Redis configured, none checked
    assert all(part["status"] == "ok" and part["ms"] >= 0 for part in body["checks"].values())


def test_not_ready_while_the_model_is_loading(client, monkeypatch):
    monkeypatch.setattr(ops, "default_pool", functools.lru_cache(lambda: None))  # never called yet
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["model"] == {"status": "not_ready", "error": "the model is still loading"}


def test_redis_stopped_and_started_again(client, own_redis, monkeypatch, caplog):
    monkeypatch.setenv("CLEARBG_REDIS_URL", own_redis.url)
    ops.get_settings.cache_clear()
    assert client.get("/readyz").json()["checks"]["redis"]["status"] == "ok"
    own_redis.stop()
    down = client.get("/readyz")
    assert down.status_code == 503 and down.json()["status"] == "not_ready"
    assert down.json()["checks"]["redis"] == {"status": "down", "error": "ConnectionError"}
    assert all(down.json()["checks"][part]["status"] == "ok" for part in ("database", "storage", "model"))
    assert f"127.0.0.1:{own_redis.port}" not in down.text  # hosts stay in the log
    assert any("readyz: redis is down" in line for line in caplog.messages)
    own_redis.start()
    back = client.get("/readyz")
    assert back.status_code == 200 and back.json()["checks"]["redis"]["status"] == "ok"


def test_reflex_redis_is_checked_as_its_own_part(client, own_redis, monkeypatch):
    monkeypatch.setenv("REFLEX_REDIS_URL", own_redis.url)
    assert client.get("/readyz").json()["checks"]["reflex_redis"]["status"] == "ok"
    own_redis.stop()
    assert client.get("/readyz").json()["checks"]["reflex_redis"]["status"] == "down"
    monkeypatch.setenv("CLEARBG_REDIS_URL", own_redis.url)  # the same server is checked once
    ops.get_settings.cache_clear()
    assert set(client.get("/readyz").json()["checks"]) == {"database", "storage", "model", "redis"}


def test_a_redis_that_never_answers_is_down_within_the_timeout(client, monkeypatch):
    listener = socket.create_server(("127.0.0.1", 0))  # accepts, never answers
    monkeypatch.setenv("CLEARBG_REDIS_URL", f"redis://127.0.0.1:{listener.getsockname()[1]}/0")
    monkeypatch.setenv("CLEARBG_READINESS_TIMEOUT_SECONDS", "0.5")
    ops.get_settings.cache_clear()
    try:
        started = time.monotonic()
        response = client.get("/readyz")
        assert time.monotonic() - started < 3
        assert response.status_code == 503 and response.json()["checks"]["redis"]["status"] == "down"
    finally:
        listener.close()


def test_storage_cut_makes_it_not_ready(client, s3_endpoint, s3_bucket, monkeypatch):
    monkeypatch.setenv("CLEARBG_S3_MAX_ATTEMPTS", "1")
    with tcp_proxy(s3_endpoint) as proxy:
        s3_settings(monkeypatch, proxy.url, f"s3://{s3_bucket}/ready-{uuid.uuid4().hex}")
        assert client.get("/readyz").json()["checks"]["storage"]["status"] == "ok"
        proxy.cut()
        response = client.get("/readyz")
        assert response.status_code == 503 and response.json()["checks"]["storage"] == {"status": "down", "error": "StorageUnavailable"}
        proxy.restore()
        assert client.get("/readyz").status_code == 200


@pytest.mark.parametrize("blob_backend", ["local"], indirect=True)
def test_database_down_is_not_ready(data_dir, monkeypatch):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("CLEARBG_DATABASE_URL", f"postgresql+psycopg://postgres@127.0.0.1:{port}/nothing?connect_timeout=1")
    ops.get_settings.cache_clear()
    ops.get_engine.cache_clear()
    default_pool()
    response = TestClient(build_api()).get("/readyz")
    assert response.status_code == 503 and response.json()["checks"]["database"] == {"status": "down", "error": "OperationalError"}


# /metrics ---------------------------------------------------------------------------------------------


def test_metrics_need_the_token_or_a_loopback_client(client, monkeypatch):
    assert client.get("/metrics").status_code == 403  # the test client is not a loopback address
    monkeypatch.setenv("CLEARBG_METRICS_TOKEN", TOKEN)
    ops.get_settings.cache_clear()
    for wrong in ("", "Bearer nope", f"Bearer {TOKEN}x", f"bearer {TOKEN}", "Bearer \xe9".encode("latin-1")):
        assert client.get("/metrics", headers={"Authorization": wrong}).status_code == 403
    assert client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200


def test_metrics_are_open_to_loopback_without_a_token(db_url):
    with serve_asgi(build_api(), "the API") as base:
        response = httpx.get(f"{base}/metrics")
    assert response.status_code == 200 and "clearbg_http_requests_total" in response.text


def test_metrics_count_requests_by_route_template_with_latency(client, monkeypatch):
    monkeypatch.setenv("CLEARBG_METRICS_TOKEN", TOKEN)
    ops.get_settings.cache_clear()
    before = scrape(client)
    image_route = (("method", "GET"), ("route", "/api/images/{image_id}/{kind}"), ("status", "404"))
    for _ in range(3):
        client.get(f"/api/images/{uuid.uuid4()}/result")
    client.get("/healthz")
    after = scrape(client)
    assert after[("clearbg_http_requests_total", image_route)] - before.get(("clearbg_http_requests_total", image_route), 0) == 3
    latency = ("clearbg_http_request_seconds_count", (("method", "GET"), ("route", "/api/images/{image_id}/{kind}")))
    assert after[latency] - before.get(latency, 0) == 3
    routes = {dict(labels)["route"] for _, labels in after if "route" in dict(labels)}
    assert not any(route.startswith("/api/images/") and "{" not in route for route in routes)  # templates, never raw paths


def test_metrics_of_inference_batches_credits_and_jobs(client, session, clock, monkeypatch, store):
    monkeypatch.setenv("CLEARBG_METRICS_TOKEN", TOKEN)
    ops.get_settings.cache_clear()
    before = scrape(client)
    default_pool().process(Job(data=sample_bytes("horse.jpg"), max_pixels=50_000_000))
    user = verified_user(session, clock)
    credits.grant(session, user_id=user.id, units=500, kind=EntryKind.PURCHASE, reason="test", reference=f"test:{uuid.uuid4()}")
    credits.charge(session, user_id=user.id, units=100, reason="a result", reference=f"img:{uuid.uuid4()}")
    session.commit()
    credits.charge(session, user_id=user.id, units=25, reason="rolled back", reference=f"img:{uuid.uuid4()}")
    session.rollback()  # never charged, never counted
    run_job("metrics_test_ok", lambda clock: {"n": 1})
    run_job("metrics_test_broken", lambda clock: 1 / 0)
    every_feature(session, store, clock)  # among much else, a batch with one queued item
    after = scrape(client)

    def grew(name, **labels):
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0) - before.get(key, 0)

    assert grew("clearbg_credits_charged_units_total") == 100
    for stage in metrics.STAGES:
        assert grew("clearbg_inference_stage_seconds_count", stage=stage) == 1
    assert after[("clearbg_inference_stage_seconds_sum", (("stage", "inference"),))] > 0
    assert grew("clearbg_job_runs_total", job="metrics_test_ok", outcome="succeeded") == 1
    assert grew("clearbg_job_runs_total", job="metrics_test_broken", outcome="failed") == 1
    assert after[("clearbg_batch_items", (("state", "queued"),))] == 1
    assert after[("clearbg_batch_items", (("state", "done"),))] == 0
    assert after[("clearbg_inference_queue_depth", ())] == 0 and ("clearbg_inference_in_flight", ()) in after


def queue_depth() -> float:
    return next(s.value for f in metrics.REGISTRY.collect() for s in f.samples if s.name == "clearbg_inference_queue_depth")


def test_queue_depth_follows_the_pool(client):
    pool = default_pool()
    metrics.watch_pool(pool)
    futures = [pool.submit(Job(data=sample_bytes("horse.jpg"), max_pixels=50_000_000), lane="web") for _ in range(pool.config.worker_count + 2)]
    try:
        assert queue_depth() >= 1
    finally:
        for future in futures:
            future.result()
    assert queue_depth() == 0


# Request ids and JSON logs --------------------------------------------------------------------------------


def test_every_response_carries_a_request_id_and_a_plain_one_from_a_proxy_is_kept(client):
    first, second = client.get("/healthz"), client.get("/healthz")
    assert len(first.headers["x-request-id"]) == 32 and first.headers["x-request-id"] != second.headers["x-request-id"]
    assert client.get("/healthz", headers={"X-Request-ID": "proxy-abc-12345"}).headers["x-request-id"] == "proxy-abc-12345"
    for hostile in ("short", "x" * 65, "has space here", "new\tline-1234567", "<script>alert(1)</script>", ("\xe9" * 10).encode("latin-1")):
        kept = client.get("/healthz", headers={"X-Request-ID": hostile}).headers["x-request-id"]
        assert kept != hostile and len(kept) == 32


def test_json_log_lines(client, monkeypatch, own_redis):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RequestIdFilter())
    handler.addFilter(RedactSecrets())
    handler.setFormatter(JsonFormatter())
    logging.getLogger().addHandler(handler)
    try:
        monkeypatch.setenv("CLEARBG_REDIS_URL", own_redis.url)
        ops.get_settings.cache_clear()
        own_redis.stop()
        client.get("/readyz", headers={"X-Request-ID": "trace-0001-abcdef"})
        private = logging.getLogger("clearbg_app.test_json_only")  # only this handler sees the secret
        private.propagate = False
        private.addHandler(handler)
        private.warning("a link https://x/reset?token=SECRETSECRETSECRETSECRET1234")
        private.removeHandler(handler)
        try:
            raise ValueError("boom")
        except ValueError:
            logging.getLogger("clearbg_app.test").exception("it failed")
    finally:
        logging.getLogger().removeHandler(handler)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    served = [line for line in lines if line["message"].startswith("readyz: redis is down")]
    assert served and served[0]["request_id"] == "trace-0001-abcdef" and served[0]["level"] == "WARNING"
    assert served[0]["logger"] == "clearbg_app.api.ops" and served[0]["time"].endswith("+00:00") and served[0]["pid"] > 0
    link = next(line for line in lines if line["message"].startswith("a link"))
    assert "SECRET" not in link["message"] and link["request_id"] == "-"
    failed = next(line for line in lines if line["message"] == "it failed")
    assert "ValueError: boom" in failed["exception"]


def test_work_outside_requests_logs_under_its_own_id(client, session, clock, store, monkeypatch):
    """A batch item's lines carry `batch-<id>` (its creation is logged with the request's id and the batch
    id, which links the two); a job run's lines carry `job-<name>-<run id>`."""
    from clearbg_app.services import api_keys, batch_worker  # noqa: PLC0415
    from clearbg_app.storage import StorageUnavailable  # noqa: PLC0415

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter())
    logging.getLogger().addHandler(handler)
    try:
        user = verified_user(session, clock)
        credits.grant(session, user_id=user.id, units=500, kind=EntryKind.PURCHASE, reason="test", reference=f"test:{uuid.uuid4()}")
        session.commit()
        _, key = api_keys.create_key(session, user=user, label="ops")
        created = client.post("/api/v1.0/batches", files={"image_file": ("a.jpg", sample_bytes("horse.jpg"), "image/jpeg")},
                              headers={"X-Api-Key": key, "X-Request-ID": "trace-batch-0001"})  # fmt: skip
        assert created.status_code == 202, created.text
        batch_id = uuid.UUID(created.json()["data"]["id"].removeprefix("batch_"))

        def storage_down(*args, **kwargs):
            raise StorageUnavailable("Blob storage (bucket 'b') failed to read a blob: ConnectTimeoutError.")

        monkeypatch.setattr(batch_worker, "STORAGE_RETRY_SECONDS", 0)
        worker = batch_worker.BatchWorker(pool=default_pool(), store=store, clock=clock)
        monkeypatch.setattr(worker, "_source", storage_down)
        assert worker.run_once() is True
        run = run_job("logs_under_its_id", lambda clock: logging.getLogger("clearbg_app.test").info("job work") or {})
    finally:
        logging.getLogger().removeHandler(handler)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    queued = next(line for line in lines if line["message"].startswith("batches: batch"))
    assert str(batch_id) in queued["message"] and queued["request_id"] == "trace-batch-0001"
    waiting = next(line for line in lines if "waits for blob storage" in line["message"])
    assert waiting["request_id"] == f"batch-{batch_id}"
    assert next(line for line in lines if line["message"] == "job work")["request_id"] == f"job-logs_under_its_id-{run.id}"
