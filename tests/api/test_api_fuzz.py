"""Schemathesis fuzzes every route: the public API from its own OpenAPI document (removebg, account,
batches and their ZIPs, webhook_secret), and the form, billing, privacy, image and Stripe routes from
a document written here. No request may cause a 5xx (other than a deliberate 503 "busy"), every API
error keeps remove.bg's shape, and a good request still succeeds afterwards. Seeded (derandomized),
so a run is repeatable; bounded to a couple of minutes."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from starlette.routing import Route
from starlette.testclient import TestClient

from clearbg_app.api import build_api
from clearbg_app.api.deps import ApiDeps
from clearbg_app.db import get_engine
from clearbg_app.inference import InferenceConfig, InferencePool
from clearbg_app.models import EntryKind
from clearbg_app.services import api_keys, credits
from clearbg_app.services.ratelimit import RateLimiter
from tests.conftest import migrate
from tests.factories import HORSE, verified_user

POOL = InferencePool(InferenceConfig(workers=1, queue_size=8, warm_up=False))
# The app reads its database and settings per request, so one app object serves every example.
APP = build_api(ApiDeps(pool=POOL, limiter=RateLimiter()))
schema = schemathesis.openapi.from_asgi("/api/openapi.json", APP)
ORIGIN = {"Origin": "http://testserver"}  # the forms' same-origin check passes, so the handlers run
TEXT = {"type": "string"}


def _form(*fields: str) -> dict:
    body = {"type": "object", "properties": {name: TEXT for name in fields}}
    return {"requestBody": {"content": {"application/x-www-form-urlencoded": {"schema": body}}}, "responses": {"default": {"description": "any"}}}


def _get(*query: str, path: tuple[str, ...] = ()) -> dict:
    parameters = [{"name": name, "in": "query", "schema": TEXT} for name in query]
    parameters += [{"name": name, "in": "path", "required": True, "schema": TEXT} for name in path]
    return {"get": {"parameters": parameters, "responses": {"default": {"description": "any"}}}}


ACCOUNT_FIELDS = ("email", "password", "display_name", "adult", "accept", "next", "token", "current_password", "new_password", "new_email")
FORM_ROUTES = {
    "/auth/signup": ACCOUNT_FIELDS, "/auth/login": ACCOUNT_FIELDS, "/auth/logout": (), "/auth/verify/resend": (),
    "/auth/forgot-password": ("email",), "/auth/reset-password": ("token", "password"), "/auth/password": ACCOUNT_FIELDS,
    "/auth/email": (*ACCOUNT_FIELDS, "back"), "/privacy/delete": ("password", "confirm"), "/privacy/restore": ("token",),
    "/billing/checkout": ("plan",), "/billing/portal": (), "/auth/google/login": ("adult", "accept", "next", "purpose", "confirm"),
}  # fmt: skip
OTHER_ROUTES = {
    "/auth/verify": _get("token"), "/auth/email/confirm": _get("token"), "/auth/google/callback": _get("code", "state", "error"), "/billing/receipt/{order_id}": _get(path=("order_id",)),
    "/api/images/{image_id}/{kind}": _get("download", path=("image_id", "kind")),
    "/api/images/{image_id}/edited": _get(
        "size", "format", "bg", "blur", "photo_fit", "shadow", "shadow_opacity", "shadow_blur", "shadow_offset", "crop", "margin", "download",
        path=("image_id",),
    ),
    "/api/images/{image_id}/edits": _get(path=("image_id",)),
    "/api/privacy/exports/{export_id}": _get(path=("export_id",)), "/api/batches/{batch_id}/result.zip": _get(path=("batch_id",)),
    "/healthz": _get(), "/readyz": _get(), "/metrics": _get(),
    "/api/batches/{batch_id}/items/{item_id}/result": _get("download", path=("batch_id", "item_id")),
    "/contact/confirm": _get("token"), "/news/unsubscribe": {**_get("token"), "post": _form("token")},
    "/api/stripe/webhook": {"post": {
        "parameters": [{"name": "Stripe-Signature", "in": "header", "schema": TEXT}],
        "requestBody": {"content": {"application/json": {"schema": {}}}}, "responses": {"default": {"description": "any"}}}},
}  # fmt: skip
forms = schemathesis.openapi.from_dict(
    {"openapi": "3.1.0", "info": {"title": "ClearBG forms", "version": "1"},
     "paths": {**{path: {"post": _form(*fields)} for path, fields in FORM_ROUTES.items()}, **OTHER_ROUTES}}
)  # fmt: skip
forms.app = APP


def test_every_route_is_fuzzed():
    """A new route must be added to one of the two documents (or it goes unfuzzed)."""
    documented = {operation.path for operation in schema.get_all_operations() for operation in [operation.ok()]}
    documented |= set(FORM_ROUTES) | set(OTHER_ROUTES)
    routes = {route.path for route in APP.routes if isinstance(route, Route)} - {"/api/openapi.json", "/api/docs"}
    assert routes <= documented, routes - documented


@pytest.fixture
def api_key(data_dir, clock, monkeypatch) -> str:
    """A funded, verified user's key, over a freshly migrated SQLite database; Stripe configured (its
    webhook then checks signatures rather than answering 'not configured')."""
    data_dir.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{data_dir / 'clearbg.db'}"
    migrate(url)
    monkeypatch.setenv("CLEARBG_DATABASE_URL", url)
    monkeypatch.setenv("CLEARBG_STRIPE_SECRET_KEY", "sk_test_fuzz")
    monkeypatch.setenv("CLEARBG_STRIPE_WEBHOOK_SECRET", "whsec_fuzz")
    from tests.conftest import _clear_caches

    _clear_caches()
    from sqlmodel import Session

    with Session(get_engine(), expire_on_commit=False) as session:
        user = verified_user(session, clock)
        credits.grant(session, user_id=user.id, units=100_000, kind=EntryKind.PURCHASE, reason="fuzz", reference="fuzz")
        session.commit()
        _, secret = api_keys.create_key(session, user=user, label="fuzz")
    return secret


def assert_no_server_error(response) -> None:
    assert response.status_code < 500 or response.status_code == 503, (response.status_code, response.text[:300])


@schema.parametrize()
@settings(max_examples=50, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case, api_key):
    response = case.call(headers={"X-Api-Key": api_key})
    assert_no_server_error(response)
    if response.status_code >= 400 and "application/json" in str(response.headers.get("content-type")):
        errors = response.json()["errors"]
        assert errors and all({"title", "code"} <= set(error) for error in errors)


@forms.parametrize()
@settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_no_server_errors_on_the_other_routes(case, api_key):
    assert_no_server_error(case.call(headers=ORIGIN))


def test_a_good_request_succeeds_after_the_fuzzing(api_key):
    response = TestClient(APP).post("/api/v1.0/removebg", files={"image_file": ("horse.jpg", HORSE)}, headers={"X-Api-Key": api_key})
    assert response.status_code == 200 and response.headers["content-type"] == "image/png", response.text
