"""The Starlette app that wraps Reflex's backend (our routes first, then Reflex), and the Reflex app
with the site's guards around all of it."""

from __future__ import annotations

import reflex as rx
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route
from starlette.types import ASGIApp

from clearbg_app.api.deps import ApiDeps
from clearbg_app.api.middleware.event_socket import EventSocketScrub
from clearbg_app.api.middleware.headers import PublicApiCors, SecurityHeaders
from clearbg_app.api.middleware.origins import websocket_origin_allowed
from clearbg_app.api.middleware.request_log import RequestLogMiddleware
from clearbg_app.api.middleware.upload_limit import UploadSizeLimitMiddleware
from clearbg_app.api.middleware.visitor_cookie import VisitorCookieMiddleware
from clearbg_app.api.ops import RequestObservability, ops_routes
from clearbg_app.api.stripe_webhook import stripe_routes
from clearbg_app.api.v1.account import account_routes
from clearbg_app.api.v1.batches import BatchApi
from clearbg_app.api.v1.openapi import docs_routes
from clearbg_app.api.v1.removebg import RemoveBg
from clearbg_app.api.web.auth import auth_routes
from clearbg_app.api.web.batches import page_batch_routes
from clearbg_app.api.web.billing import billing_routes
from clearbg_app.api.web.google import google_routes
from clearbg_app.api.web.images import edited_image, image_blob, image_strokes
from clearbg_app.api.web.privacy import privacy_routes
from clearbg_app.api.web.privacy_ops import privacy_ops_routes


def build_api(deps: ApiDeps | None = None) -> Starlette:
    """Our routes; the middleware covers Reflex's pages and upload endpoint too. Tests pass
    `ApiDeps` with their own pool, rate limiter or URL policy."""
    deps = deps or ApiDeps()
    return Starlette(
        routes=[
            *RemoveBg(deps).routes(),
            *account_routes(deps),
            *BatchApi(deps).routes(),
            *page_batch_routes(),
            *docs_routes(),
            Route("/api/images/{image_id}/edited", edited_image, methods=["GET"]),
            Route("/api/images/{image_id}/edits", image_strokes, methods=["GET"]),
            Route("/api/images/{image_id}/{kind}", image_blob, methods=["GET"]),
            *auth_routes(),
            *google_routes(),
            *stripe_routes(),
            *billing_routes(),
            *privacy_routes(),
            *ops_routes(),
            *privacy_ops_routes(),
        ],
        middleware=[
            Middleware(RequestObservability),
            Middleware(RequestLogMiddleware),
            Middleware(VisitorCookieMiddleware),
            Middleware(UploadSizeLimitMiddleware),
            Middleware(EventSocketScrub),
        ],
    )


class ClearBGApp(rx.App):
    """`rx.App` whose event socket accepts only the site's origins, and whose every response, Reflex's
    own included, passes through the security headers and the public API's CORS."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.sio is not None:  # engine.io checks the handshake's Origin with this
            self.sio.eio.cors_allowed_origins = websocket_origin_allowed

    def __call__(self) -> ASGIApp:
        return SecurityHeaders(PublicApiCors(super().__call__()))
