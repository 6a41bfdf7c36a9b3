"""Wiring only: the Reflex app, its pages, the HTTP routes beside it, and lifespan tasks."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import reflex as rx

from clearbg_app.api import build_api
from clearbg_app.inference import ModelNotFound, check_model_file
from clearbg_app.jobs import build_scheduler
from clearbg_app.pages.index import index
from clearbg_app.services.images import default_model
from clearbg_app.settings import get_settings

log = logging.getLogger("clearbg")


@contextlib.asynccontextmanager
async def background_services():
    """Load the model before the first request, and run the scheduled jobs while the app is up."""
    await asyncio.to_thread(default_model)
    scheduler = build_scheduler()
    scheduler.start()
    log.info("ClearBG ready: model loaded, scheduler started")
    try:
        yield
    finally:
        scheduler.shutdown(wait=False)


try:
    check_model_file(get_settings().model_path)
except ModelNotFound as missing:
    raise SystemExit(f"clearbg: {missing}") from None

app = rx.App(api_transformer=build_api())
app.add_page(index, route="/", title="ClearBG: remove image backgrounds")
app.register_lifespan_task(background_services)
