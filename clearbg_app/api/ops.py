"""Operations routes: `/healthz` (the process answers), `/readyz` (its dependencies answer, per part),
`/metrics` (Prometheus), and the middleware giving each request an id, a count and a latency."""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import logging
import os
import time
from collections.abc import Callable

import redis
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import func, text
from sqlmodel import select
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from clearbg_app import metrics
from clearbg_app.db import get_engine, session_scope
from clearbg_app.log_format import new_request_id, request_id
from clearbg_app.models import BatchItem, ItemStatus
from clearbg_app.services.removal import default_pool
from clearbg_app.settings import get_settings
from clearbg_app.storage import get_blob_store
from clearbg_app.tasks import broker

log = logging.getLogger(__name__)

NO_STORE = {"Cache-Control": "no-store"}


class NotReady(Exception):
    """A part that answers, but is not ready yet (the model still loading)."""


def _database() -> None:
    with get_engine().connect() as connection:
        connection.execute(text("SELECT 1"))


def _redis(url: str) -> Callable[[], None]:
    def ping() -> None:
        timeout = get_settings().readiness_timeout_seconds
        client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
        try:
            client.ping()
        finally:
            client.close()

    return ping


def _storage() -> None:
    get_blob_store().check()


def _model() -> None:
    if default_pool.cache_info().currsize == 0:
        raise NotReady("the model is still loading")
    if not default_pool().models:
        raise NotReady("no inference worker answers" if get_settings().inference == "queue" else "no model loaded")


def readiness_checks() -> dict[str, Callable[[], None]]:
    """The parts this process needs: database, storage, model (with CLEARBG_INFERENCE=queue: a live
    worker's), the task queue's broker when CLEARBG_QUEUE_URL is set, and each configured Redis."""
    checks: dict[str, Callable[[], None]] = {"database": _database, "storage": _storage, "model": _model}
    if queue_url := get_settings().queue_url:
        checks["queue"] = _redis(queue_url)
    urls = {"redis": get_settings().redis_url, "reflex_redis": os.environ.get("REFLEX_REDIS_URL", "")}
    if urls["redis"] == urls["reflex_redis"]:
        urls["reflex_redis"] = ""
    checks.update({name: _redis(url) for name, url in urls.items() if url})
    return checks


async def _run_check(name: str, check: Callable[[], None], timeout: float) -> dict:
    started = time.perf_counter()
    try:
        await asyncio.wait_for(asyncio.to_thread(check), timeout)
    except NotReady as waiting:
        return {"status": "not_ready", "error": str(waiting)}
    except TimeoutError:
        log.warning("readyz: %s did not answer within %g s", name, timeout)
        return {"status": "down", "error": f"no answer within {timeout:g} s"}
    except Exception as error:  # noqa: BLE001 - whatever a dependency raises makes it "down"
        log.warning("readyz: %s is down: %s", name, error)  # the details (hosts, buckets) stay in the log
        return {"status": "down", "error": type(error).__name__}
    return {"status": "ok", "ms": round((time.perf_counter() - started) * 1000, 1)}


async def readyz(request: Request) -> Response:
    """200 when every part answers, else 503; the body says per part what is wrong."""
    timeout = get_settings().readiness_timeout_seconds
    checks = readiness_checks()
    results = await asyncio.gather(*(_run_check(name, check, timeout) for name, check in checks.items()))
    parts = dict(zip(checks, results, strict=True))
    ready = all(part["status"] == "ok" for part in parts.values())
    body = {"status": "ready" if ready else "not_ready", "checks": parts}
    return JSONResponse(body, status_code=200 if ready else 503, headers=NO_STORE)


async def healthz(request: Request) -> Response:
    """The process is up and its event loop answers; nothing else is checked."""
    return JSONResponse({"status": "ok"}, headers=NO_STORE)


def _count_batch_items() -> None:
    with session_scope() as session:
        counts = dict(session.exec(select(BatchItem.status, func.count()).group_by(BatchItem.status)).all())
    for state in ItemStatus:
        metrics.batch_items.labels(state.value).set(counts.get(state, 0))


def _may_scrape(request: Request) -> bool:
    """With CLEARBG_METRICS_TOKEN: a matching `Authorization: Bearer` header; without: a loopback client."""
    token = get_settings().metrics_token.get_secret_value()
    if token:
        offered = request.headers.get("authorization", "")
        return hmac.compare_digest(offered.encode("latin-1"), f"Bearer {token}".encode())
    try:
        return bool(request.client) and ipaddress.ip_address(request.client.host).is_loopback
    except ValueError:
        return False


def _count_tasks() -> None:
    for queue, depth in broker.depths().items():
        metrics.task_queue_depth.labels(queue).set(depth)
    metrics.task_dead_letters.set(broker.dead_letters())


async def metrics_route(request: Request) -> Response:
    """The Prometheus text format; batch items are counted from the database now."""
    if not _may_scrape(request):
        return PlainTextResponse("Not allowed: set CLEARBG_METRICS_TOKEN and send it as a bearer token.", status_code=403, headers=NO_STORE)
    try:
        await asyncio.to_thread(_count_batch_items)
    except Exception:  # noqa: BLE001 - the other figures still matter when the database is down
        log.warning("metrics: batch items could not be counted", exc_info=True)
    try:
        await asyncio.to_thread(_count_tasks)
    except Exception:  # noqa: BLE001 - a broker that is down is /readyz's to report
        log.warning("metrics: the task queue could not be read", exc_info=True)
    if default_pool.cache_info().currsize:
        metrics.watch_pool(default_pool())
    return Response(generate_latest(metrics.REGISTRY), media_type=CONTENT_TYPE_LATEST, headers=NO_STORE)


def ops_routes() -> list[Route]:
    return [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics_route, methods=["GET"]),
    ]


def route_label(scope: Scope) -> str:
    """The matched route's template (`/api/images/{image_id}/{kind}`), never the raw path."""
    route = scope.get("route")
    if isinstance(route, Route):
        return route.path
    if isinstance(route, Mount):
        return (route.path or "") + "/*"
    return "unmatched"


class RequestObservability:
    """Every HTTP request gets an id (kept from a proxy's `X-Request-ID` if it is a plain token), sent
    back in `X-Request-ID` and carried by every log line written while serving it; and is counted and
    timed by route template and status."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        offered = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        current = new_request_id(offered)
        token = request_id.set(current)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", current.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            route, method = route_label(scope), scope["method"] if scope["method"] in KNOWN_METHODS else "OTHER"
            metrics.http_requests.labels(route, method, str(status)).inc()
            metrics.http_latency.labels(route, method).observe(time.perf_counter() - started)
            request_id.reset(token)


KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
