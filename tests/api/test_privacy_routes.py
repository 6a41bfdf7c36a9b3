"""The privacy routes through Starlette's TestClient on SQLite and PostgreSQL: the export download needs
the owner's session and a live link; deletion needs the password; signing in during the grace period
offers to cancel, and cancelling signs in again."""

from __future__ import annotations

import io
import zipfile
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlmodel import select
from starlette.testclient import TestClient

from clearbg_app.api import build_api
from clearbg_app.clock import utcnow
from clearbg_app.http.cookies import SESSION_COOKIE
from clearbg_app.models import AccountDeletion, DataExport
from clearbg_app.services import accounts, exports
from clearbg_app.services.jobs import exports_job
from tests.factories import ORIGIN, flash_of
from tests.privacy_helpers import EMAIL, PASSWORD, signed_in

pytestmark = pytest.mark.both_blob_backends  # the local directory, and S3 on moto


@pytest.fixture
def client(db_url) -> TestClient:
    return TestClient(build_api(), follow_redirects=False)


def test_export_download_needs_the_owner_and_a_live_link(client, session, clock):
    user = signed_in(client, session, clock)
    export = exports.request_export(session, user=user)
    assert client.get(f"/api/privacy/exports/{export.id}").status_code == 404  # not built yet
    exports_job()
    response = client.get(f"/api/privacy/exports/{export.id}")
    assert response.status_code == 200 and response.headers["content-type"] == "application/zip"
    assert "attachment" in response.headers["content-disposition"] and "no-store" in response.headers["cache-control"]
    assert exports.DOCUMENT in zipfile.ZipFile(io.BytesIO(response.content)).namelist()

    other = TestClient(build_api(), follow_redirects=False)
    assert other.get(f"/api/privacy/exports/{export.id}").status_code == 404  # signed out
    signed_in(other, session, clock, email="other@example.com")
    assert other.get(f"/api/privacy/exports/{export.id}").status_code == 404  # someone else's
    assert client.get("/api/privacy/exports/not-a-uuid").status_code == 404

    row = session.get(DataExport, export.id)
    row.expires_at = utcnow() - timedelta(seconds=1)
    session.add(row)
    session.commit()
    assert client.get(f"/api/privacy/exports/{export.id}").status_code == 404  # expired


def test_deletion_needs_the_password_and_the_tick(client, session, clock):
    signed_in(client, session, clock)
    response = client.post("/privacy/delete", data={"password": PASSWORD}, headers=ORIGIN)
    assert "Tick the box" in flash_of(response)["msg"]
    response = client.post("/privacy/delete", data={"password": "wrong-password-1", "confirm": "on"}, headers=ORIGIN)
    assert "password is not correct" in flash_of(response)["msg"]
    assert session.exec(select(AccountDeletion)).all() == []
    assert client.post("/privacy/delete", data={"confirm": "on"}, headers={"origin": "https://evil.example"}).status_code == 403


def test_delete_then_sign_in_offers_to_cancel_and_cancelling_signs_in(client, session, clock):
    user = signed_in(client, session, clock)
    response = client.post("/privacy/delete", data={"password": PASSWORD, "confirm": "on"}, headers=ORIGIN)
    assert response.headers["location"].startswith("/login?") and "will be deleted" in flash_of(response)["msg"]
    assert 'clearbg_session=""' in response.headers["set-cookie"] or "Max-Age=0" in response.headers["set-cookie"]
    client.cookies.clear()

    response = client.post("/auth/login", data={"email": EMAIL, "password": PASSWORD}, headers=ORIGIN)
    location = urlsplit(response.headers["location"])
    assert location.path == "/restore-account" and SESSION_COOKIE not in client.cookies
    assert "token" not in parse_qs(location.query)  # the page's URL, which Reflex keeps in the tab's state
    restore = response.headers["set-cookie"]
    assert restore.startswith("clearbg_restore=") and "Path=/privacy/restore" in restore and "HttpOnly" in restore
    token = client.cookies["clearbg_restore"]
    assert "scheduled for deletion" in flash_of(response)["msg"]

    client.cookies.set("clearbg_restore", token[:-2], domain="testserver.local", path="/privacy/restore")
    assert "not valid" in flash_of(client.post("/privacy/restore", headers=ORIGIN))["msg"]
    client.cookies.set("clearbg_restore", token, domain="testserver.local", path="/privacy/restore")
    response = client.post("/privacy/restore", headers=ORIGIN)
    assert response.headers["location"].startswith("/privacy-center") and SESSION_COOKIE in client.cookies
    session.expire_all()
    assert session.exec(select(AccountDeletion)).one().cancelled_at is not None
    assert accounts.resolve_session(session, token=client.cookies[SESSION_COOKIE]).user.id == user.id
