"""Wiring only: the Reflex app, its pages (each registers itself with `pages.route.route`), the HTTP
routes beside it, and lifespan tasks."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from reflex.config import get_config
from reflex.constants import StateManagerMode
from reflex.istate.manager import reset_disk_state_manager

from clearbg_app import log_redaction, metrics
from clearbg_app.api import ClearBGApp, build_api
from clearbg_app.api.middleware.request_log import writer as request_log_writer
from clearbg_app.inference import InferenceConfig, InferenceError
from clearbg_app.inference.model import check_providers, verify_configured_models
from clearbg_app.inference.registry import DEFAULT_MODEL, FAST_MODEL
from clearbg_app.jobs import build_scheduler
from clearbg_app.pages import (  # noqa: F401 - importing a page module registers its pages
    account,
    admin,
    admin_policies,
    admin_requests,
    api_docs,
    auth,
    contact,
    credits,
    history,
    index,
    legal,
    pricing,
    privacy_center,
)
from clearbg_app.services.removal import default_pool
from clearbg_app.settings import get_settings
from clearbg_app.tasks import broker, worker

log = logging.getLogger("clearbg")


@contextlib.asynccontextmanager
async def background_services():
    """Load the inference pool (its model serves the page and the API) before the first request, and
    run the scheduled jobs and a queue worker (batch items, mail, webhooks, exports) while the app is
    up; with CLEARBG_INFERENCE=queue this process holds no model and the worker processes serve the queue."""
    log_redaction.install()  # the servers have set up their log handlers by now
    pool = await asyncio.to_thread(default_pool)
    metrics.watch_pool(pool)
    scheduler = build_scheduler()
    scheduler.start()
    queue_worker = None if settings.inference == "queue" else await asyncio.to_thread(worker.start, pool=pool)
    fast = f"; fast mode: {FAST_MODEL}" if settings.enable_fast_mode else "; fast mode off"
    log.info("ClearBG ready: model %s loaded (the large U^2-Net, best cut-outs)%s; scheduler started", DEFAULT_MODEL, fast)
    try:
        yield
    finally:
        scheduler.shutdown(wait=False)
        if queue_worker:
            await asyncio.to_thread(queue_worker.stop)
        await asyncio.to_thread(pool.close)
        request_log_writer.flush()


settings = get_settings()
log_redaction.configure_logging(settings.log_level, settings.log_format)
try:
    check_providers(settings.inference_provider_list)
except InferenceError as error:
    raise SystemExit(f"clearbg: {error}") from None
if problems := verify_configured_models(InferenceConfig.from_settings(settings)) + settings.problems():
    raise SystemExit("clearbg: " + " ".join(problems))
try:
    broker.check()
except broker.QueueUnavailable as error:
    raise SystemExit(f"clearbg: {error}") from None
if get_config().state_manager_mode == StateManagerMode.DISK:
    raise SystemExit("clearbg: REFLEX_STATE_MANAGER_MODE=disk would write every tab's state to disk; "
                     "use the default (memory) or REFLEX_REDIS_URL.")  # fmt: skip
reset_disk_state_manager()  # the .states/ files of earlier versions held cookies and personal data

app = ClearBGApp(api_transformer=build_api(), stylesheets=["/clearbg.css"])
app.register_lifespan_task(background_services)
