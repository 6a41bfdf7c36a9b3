"""The blob route and the visitor cookie, through Starlette's TestClient."""

from __future__ import annotations

import io

import pytest
from PIL import Image
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from clearbg_app.api import build_api
from clearbg_app.api.middleware.upload_limit import UploadSizeLimitMiddleware
from clearbg_app.http.cookies import VISITOR_COOKIE
from tests.conftest import sample_bytes


@pytest.fixture
def client(db_url) -> TestClient:
    """The site's routes as the app serves them (conftest's `processed` uploads through this client)."""
    return TestClient(build_api())


def test_owner_sees_original_and_downloads_result(processed):
    browser, image = processed
    original = browser.get(f"/api/images/{image.id}/original")
    assert original.status_code == 200 and original.headers["content-type"] == "image/jpeg"
    assert original.content == sample_bytes("horse.jpg")
    assert original.headers["cache-control"] == "private, no-store"

    download = browser.get(f"/api/images/{image.id}/result?download=1")
    assert download.status_code == 200 and download.headers["content-type"] == "image/png"
    assert download.headers["content-disposition"] == 'attachment; filename="my_horse-no-bg-preview.png"'
    assert Image.open(io.BytesIO(download.content)).mode == "RGBA"
    assert "set-cookie" not in download.headers


def test_other_browsers_and_bad_paths_get_404(processed, db_url):
    _, image = processed
    stranger = TestClient(build_api())
    assert stranger.get(f"/api/images/{image.id}/result").status_code == 404
    stranger.cookies.set(VISITOR_COOKIE, "forged-" + "x" * 40)
    assert stranger.get(f"/api/images/{image.id}/result").status_code == 404
    owner, _ = processed
    for path in (f"/api/images/{image.id}/thumbnail", "/api/images/not-a-uuid/result", f"/api/images/{image.id}/../original"):
        assert owner.get(path).status_code == 404


def test_secure_cookie_in_production(db_url, monkeypatch):
    monkeypatch.setenv("CLEARBG_ENV", "production")
    from clearbg_app.settings import get_settings

    get_settings.cache_clear()
    response = TestClient(build_api()).get("/api/images/00000000-0000-0000-0000-000000000000/result")
    assert "; Secure" in response.headers["set-cookie"]


def test_oversized_upload_is_refused_before_parsing(data_dir):
    async def reads_whole_body(request):  # what Reflex's upload endpoint does
        return PlainTextResponse(str(len(await request.body())))

    upload_app = Starlette(
        routes=[Route("/_upload", reads_whole_body, methods=["POST"])],
        middleware=[Middleware(UploadSizeLimitMiddleware)],
    )
    client = TestClient(upload_app)
    declared = client.post("/_upload", content=b"x" * 25_070_000, headers={"content-type": "multipart/form-data"})
    assert declared.status_code == 413
    assert declared.text == "The upload is over the 25 MB limit."
    streamed = client.post("/_upload", content=iter([b"x" * 1_000_000] * 26))
    assert streamed.status_code == 413
    assert client.post("/_upload", content=b"small").text == "5"
