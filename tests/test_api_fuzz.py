"""Schemathesis fuzzes the public API from its own OpenAPI document: no request may cause a 5xx
(other than a deliberate 503 "busy"), and every error keeps remove.bg's shape."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from clearbg_app.api import build_api
from clearbg_app.db import get_engine
from clearbg_app.models import EntryKind
from clearbg_app.services import api_keys, credits
from tests.conftest import migrate
from tests.test_accounts import verified_user


# The app reads its database and settings per request, so one app object serves every example.
schema = schemathesis.openapi.from_asgi("/api/openapi.json", build_api())


@pytest.fixture
def api_key(data_dir, clock, monkeypatch) -> str:
    """A funded, verified user's key, over a freshly migrated SQLite database."""
    data_dir.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{data_dir / 'clearbg.db'}"
    migrate(url)
    monkeypatch.setenv("CLEARBG_DATABASE_URL", url)
    from tests.conftest import _clear_caches

    _clear_caches()
    from sqlmodel import Session

    with Session(get_engine(), expire_on_commit=False) as session:
        user = verified_user(session, clock)
        credits.grant(session, user_id=user.id, units=10_000, kind=EntryKind.PURCHASE, reason="fuzz", reference="fuzz")
        session.commit()
        _, secret = api_keys.create_key(session, user=user, label="fuzz")
    return secret


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case, api_key):
    response = case.call(headers={"X-Api-Key": api_key})
    assert response.status_code < 500 or response.status_code == 503, (response.status_code, response.text[:300])
    if response.status_code >= 400 and "application/json" in str(response.headers.get("content-type")):
        errors = response.json()["errors"]
        assert errors and all({"title", "code"} <= set(error) for error in errors)
