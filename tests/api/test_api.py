"""The public API through Starlette's TestClient, on SQLite and PostgreSQL, with a real inference pool."""

from __future__ import annotations

import base64
import io
import uuid
import zipfile

import pytest
from PIL import Image
from sqlmodel import select
from starlette.testclient import TestClient

from clearbg_app.inference import InferenceConfig, InferencePool, Job
from clearbg_app.models import ApiUsage, EntryKind, LedgerEntry
from clearbg_app.services import api_keys, credits
from clearbg_app.services.ratelimit import RateLimiter
from tests import images as bad
from tests.factories import ENDPOINT, HORSE, SQLITE_ONLY, api_client, balance, give, opened, post


@pytest.fixture
def client(db_url, pool) -> TestClient:
    """The API with the production address policy (conftest's `client` may fetch from loopback)."""
    return api_client(pool)


def usage(session) -> list[ApiUsage]:
    session.expire_all()
    return list(session.exec(select(ApiUsage).order_by(ApiUsage.at)).all())


def test_preview_costs_a_quarter_credit_and_says_so(client, session, owner, key):
    give(session, owner, 100)
    response = post(client, key, size="preview")
    assert response.status_code == 200, response.text
    image = opened(response)
    assert response.headers["content-type"] == "image/png" and image.mode == "RGBA"
    assert image.width * image.height <= 250_000 and image.width / image.height == pytest.approx(770 / 595, rel=0.01)
    headers = response.headers
    assert headers["X-Credits-Charged"] == "0.25" and (headers["X-Width"], headers["X-Height"]) == (str(image.width), str(image.height))
    assert headers["X-Type"] == "other"
    left, top, right, bottom = image.getchannel("A").point(lambda a: 255 if a else 0).getbbox()
    assert (int(headers["X-Foreground-Left"]), int(headers["X-Foreground-Top"])) == (left, top)
    assert (int(headers["X-Foreground-Width"]), int(headers["X-Foreground-Height"])) == (right - left, bottom - top)
    assert headers["X-RateLimit-Limit"] == "500" and headers["X-RateLimit-Remaining"] == "499"
    assert balance(session, owner) == 75
    [row] = usage(session)
    assert (row.status, row.size, row.credits_units, row.width, row.model) == (200, "preview", 25, image.width, "u2net")
    entry = session.exec(select(LedgerEntry).where(LedgerEntry.kind == EntryKind.USAGE)).one()
    assert entry.amount_units == -25 and entry.reference.startswith("api:")


def test_full_size_jpg_on_a_colour_from_base64_json(client, session, owner, key):
    give(session, owner, 100)
    body = {"image_file_b64": base64.b64encode(HORSE).decode(), "size": "full", "format": "jpg", "bg_color": "81d4fa"}
    response = client.post(ENDPOINT, json=body, headers={"X-Api-Key": key, "Accept": "application/json"})
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    image = Image.open(io.BytesIO(base64.b64decode(data["result_b64"])))
    assert (image.format, image.size) == ("JPEG", (770, 595))
    assert max(abs(a - b) for a, b in zip(image.getpixel((2, 2)), (0x81, 0xD4, 0xFA), strict=True)) < 12
    assert {"foreground_top", "foreground_left", "foreground_width", "foreground_height"} <= data.keys()
    assert response.headers["X-Credits-Charged"] == "1" and balance(session, owner) == 0


def test_auto_size_is_full_when_the_balance_covers_it_else_a_preview(client, session, owner, key):
    give(session, owner, 125)
    assert opened(post(client, key, size="auto")).size == (770, 595)
    small = post(client, key, size="auto")
    assert small.headers["X-Credits-Charged"] == "0.25" and opened(small).width < 770 and balance(session, owner) == 0


@SQLITE_ONLY
@pytest.mark.parametrize(
    ("params", "check"),
    [
        ({"channels": "alpha"}, lambda image, _: image.mode == "L"),
        ({"format": "webp"}, lambda image, _: image.format == "WEBP" and image.mode == "RGBA"),
        ({"crop": "true"}, lambda image, _: image.size < (570, 440)),
        ({"crop": "true", "crop_margin": "20px"}, lambda image, _: image.getchannel("A").getpixel((5, 5)) == 0),
        ({"scale": "50%", "position": "0% 100%"}, lambda image, _: image.getchannel("A").getbbox()[0] == 0),
        ({"roi": "0% 0% 10% 10%"}, lambda image, _: image.getchannel("A").getbbox() is None or image.getchannel("A").getbbox()[2] <= 58),
        ({"bg_color": "ff000080", "format": "png"}, lambda image, _: image.getpixel((1, 1)) == (255, 0, 0, 128)),
        ({"format": "zip"}, lambda _, response: sorted(zipfile.ZipFile(io.BytesIO(response.content)).namelist()) == ["alpha.png", "color.jpg"]),
    ],
)
def test_remove_bg_options(client, session, owner, key, params, check):
    give(session, owner, 100)
    response = post(client, key, **params)
    assert response.status_code == 200, response.text
    image = None if params.get("format") == "zip" else opened(response)
    assert check(image, response)


@SQLITE_ONLY
def test_background_image_fills_behind(client, session, owner, key):
    give(session, owner, 100)
    green = bad.encode(Image.new("RGB", (40, 30), (0, 200, 0)), "PNG")
    files = {"image_file": ("horse.jpg", HORSE, "image/jpeg"), "bg_image_file": ("bg.png", green, "image/png")}
    image = opened(post(client, key, files=files))
    assert image.format == "JPEG" and max(abs(a - b) for a, b in zip(image.getpixel((2, 2)), (0, 200, 0), strict=True)) < 12


@pytest.mark.parametrize(
    ("files", "data", "status", "code"),
    [
        ({"image_file": ("a.jpg", HORSE)}, {"image_file_b64": base64.b64encode(HORSE).decode()}, 400, "multiple_sources"),
        (None, {"size": "preview"}, 400, "missing_source"),
        ({"image_file": ("a.jpg", HORSE)}, {"size": "gigantic"}, 400, "invalid_parameter"),
        ({"image_file": ("a.jpg", HORSE)}, {"format": "gif"}, 400, "invalid_parameter"),
        ({"image_file": ("a.jpg", HORSE)}, {"crop": "true", "crop_margin": "9000px"}, 400, "invalid_parameter"),
        ({"image_file": ("a.jpg", HORSE)}, {"crop_margin": "1px 2px 3px"}, 400, "invalid_parameter"),
        ({"image_file": ("a.jpg", HORSE)}, {"roi": "50% 0% 10% 100%"}, 400, "invalid_parameter"),
        ({"image_file": ("a.jpg", HORSE)}, {"bg_color": "not-a-colour"}, 400, "invalid_parameter"),
        ({"image_file": ("a.jpg", HORSE)}, {"model": "silueta"}, 400, "invalid_parameter"),  # known, not installed
        ({"image_file": ("a.jpg", HORSE)}, {"model": "../../etc/passwd" * 50}, 400, "invalid_parameter"),
        (None, {"image_file_b64": "this is %% not base64!"}, 400, "invalid_parameter"),
        ({"image_file": ("notes.txt", bad.text_as_jpeg(), "text/plain")}, {}, 400, "invalid_image"),
        ({"image_file": ("cut.jpg", bad.truncated_jpeg())}, {}, 400, "invalid_image"),
        ({"image_file": ("empty.jpg", b"")}, {}, 400, "invalid_image"),
        ({"image_file": ("bomb.png", bad.decompression_bomb())}, {}, 413, "file_too_large"),
    ],
)
def test_bad_requests_are_refused_and_never_charged(client, session, owner, key, files, data, status, code):
    give(session, owner, 100)
    response = client.post(ENDPOINT, files=files, data=data, headers={"X-Api-Key": key})
    assert response.status_code == status, response.text
    [error] = response.json()["errors"]
    assert error["code"] == code and error["title"] and error["detail"]
    assert "X-RateLimit-Limit" in response.headers
    assert balance(session, owner) == 100
    [row] = usage(session)
    assert (row.status, row.error_code, row.credits_units) == (status, code, 0)


def test_an_oversized_body_is_refused_before_it_is_read(client, session, owner, key, monkeypatch):
    monkeypatch.setenv("CLEARBG_MAX_UPLOAD_BYTES", "100000")
    from clearbg_app.settings import get_settings

    get_settings.cache_clear()
    response = post(client, key, files={"image_file": ("big.jpg", bad.oversized_file(400_000))})
    assert response.status_code == 413 and response.json()["errors"][0]["code"] == "file_too_large"


def test_missing_invalid_and_revoked_keys_get_403(client, session, clock, owner, key):
    give(session, owner, 100)
    assert client.post(ENDPOINT, files={"image_file": ("a.jpg", HORSE)}).json()["errors"][0]["title"] == "Missing API key"
    assert post(client, "cbg_live_" + "x" * 43).status_code == 403
    [live] = api_keys.list_keys(session, user=owner)
    api_keys.revoke_key(session, user=owner, key_id=live.id, now=clock())
    response = post(client, key)
    assert response.status_code == 403 and response.json()["errors"][0]["code"] == "auth_failed"
    assert client.get("/api/v1.0/account", headers={"X-Api-Key": key}).status_code == 403
    assert balance(session, owner) == 100 and usage(session) == []


def test_insufficient_credits_is_402_and_charges_nothing(client, session, owner, key):
    give(session, owner, 20)
    response = post(client, key)
    assert response.status_code == 402 and response.json()["errors"][0]["code"] == "insufficient_credits"
    assert balance(session, owner) == 20 and credits.ledger_sum(session, user_id=owner.id) == 20


def test_a_full_pool_answers_503_with_retry_after(db_url, session, owner, key):
    give(session, owner, 100)
    busy = InferencePool(InferenceConfig(workers=1, queue_size=0, warm_up=False))
    try:
        big = bad.encode(Image.open(io.BytesIO(HORSE)).resize((3000, 2300)), "JPEG")
        running = busy.submit(Job(data=big, max_pixels=50_000_000, mode="quality"))
        response = post(api_client(busy), key)
        # Refused before the upload is read: even a request with no image gets the 503, not a 400.
        unread = api_client(busy).post("/api/v1.0/removebg", headers={"X-Api-Key": key}, data={"size": "preview"})
        running.result()
    finally:
        busy.close()
    assert response.status_code == 503, response.text
    assert response.json()["errors"][0]["code"] == "server_busy" and int(response.headers["Retry-After"]) >= 1
    assert unread.status_code == 503 and unread.json()["errors"][0]["code"] == "server_busy"
    assert balance(session, owner) == 100


def test_rate_limit_per_key_in_redis_weighted_by_megapixels(db_url, session, owner, key, pool, monkeypatch):
    monkeypatch.setenv("CLEARBG_API_RATE_LIMIT_PER_KEY", "3")
    from clearbg_app.settings import get_settings

    get_settings.cache_clear()
    give(session, owner, 500)
    prefix = f"clearbg-test-{uuid.uuid4().hex}"
    client = api_client(pool, limiter=RateLimiter("redis://127.0.0.1:6379", key_prefix=prefix))
    big = bad.encode(Image.open(io.BytesIO(HORSE)).resize((1540, 1190)), "JPEG")  # 1.8 MP: 2 megapixel images
    first = post(client, key, files={"image_file": ("big.jpg", big)}, size="full")
    assert first.status_code == 200 and first.headers["X-RateLimit-Remaining"] == "1"
    refused = post(client, key, files={"image_file": ("big.jpg", big)}, size="full")
    assert refused.status_code == 429 and refused.json()["errors"][0]["code"] == "rate_limit_exceeded"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60 and refused.headers["X-RateLimit-Limit"] == "3"
    assert post(client, key, size="preview").headers["X-RateLimit-Remaining"] == "0"  # a preview weighs 1
    # the same Redis seen by another app instance
    other = api_client(pool, limiter=RateLimiter("redis://127.0.0.1:6379", key_prefix=prefix))
    assert post(other, key).status_code == 429
    assert balance(session, owner) == 500 - 100 - 25


def test_rate_limit_per_ip_covers_bad_keys(db_url, pool, monkeypatch):
    monkeypatch.setenv("CLEARBG_API_RATE_LIMIT_PER_IP", "2")
    from clearbg_app.settings import get_settings

    get_settings.cache_clear()
    client = api_client(pool)
    statuses = [client.post(ENDPOINT, headers={"X-Api-Key": "cbg_live_wrong"}).status_code for _ in range(3)]
    assert statuses == [403, 403, 429]


def test_account_reports_credits_in_remove_bg_shape(client, session, clock, owner, key):
    give(session, owner, 350)
    credits.grant_monthly_allowance(session, now=clock())
    session.commit()
    response = client.get("/api/v1.0/account", headers={"X-Api-Key": key})
    assert response.status_code == 200 and "X-RateLimit-Remaining" in response.headers
    attributes = response.json()["data"]["attributes"]
    assert attributes["credits"] == {"total": 16, "subscription": 0, "payg": 3.5, "enterprise": 0}
    assert attributes["api"] == {"free_calls": 50, "sizes": "all"}


def test_usage_log_lists_calls_newest_first_with_their_key(client, session, owner, key):
    from clearbg_app.services import removal

    give(session, owner, 100)
    assert post(client, key).status_code == 200
    assert post(client, key, size="huge").status_code == 400
    (failed, prefix), (done, _) = removal.recent_usage(session, user_id=owner.id)
    assert key.startswith(prefix.removesuffix("…")) and prefix.endswith("…") and (failed.status, failed.error_code, done.status, done.credits_units) == (400, "invalid_parameter", 200, 25)
    assert failed.at >= done.at and done.latency_ms >= 0


def test_model_parameter_picks_the_model_at_the_same_price(client, session, owner, key):
    give(session, owner, 100)
    small = post(client, key, model="u2netp", channels="alpha")
    large = post(client, key, model="U2Net ", channels="alpha")
    assert small.status_code == large.status_code == 200, (small.text, large.text)
    assert small.headers["X-Credits-Charged"] == large.headers["X-Credits-Charged"] == "0.25"
    assert opened(small).size == opened(large).size and opened(small).tobytes() != opened(large).tobytes()
    unknown = post(client, key, model="nope")
    assert unknown.status_code == 400
    assert unknown.json()["errors"][0]["detail"] == "model='nope' is not available; use one of u2net, u2netp."
    assert [(row.status, row.model) for row in usage(session)] == [(200, "u2netp"), (200, "u2net"), (400, "")]
    assert balance(session, owner) == 50


def test_account_page_shows_api_usage(db_url):
    from clearbg_app.pages.account import account

    rendered = str(account())
    assert "API usage" in rendered and "api-usage" in rendered


def test_request_log_attributes_api_calls_to_the_key(client, session, owner, key):
    from clearbg_app.api.middleware.request_log import writer
    from clearbg_app.models import ApiKey, RequestLog

    give(session, owner, 100)
    response = client.post(ENDPOINT, json={"image_file_b64": base64.b64encode(HORSE).decode(), "crop": True}, headers={"X-Api-Key": key})
    assert response.status_code == 200 and opened(response).size < (570, 440)
    writer.flush()
    row = session.exec(select(RequestLog).where(RequestLog.path == ENDPOINT)).one()
    assert (row.user_id, row.api_key_id, row.status) == (owner.id, session.exec(select(ApiKey.id)).one(), 200)


def test_malformed_bodies_get_the_error_shape(client, session, owner, key):
    give(session, owner, 100)
    files = {name: ("a.jpg", HORSE) for name in ("image_file", "bg_image_file", "extra_file")}
    too_many = client.post(ENDPOINT, files=files, headers={"X-Api-Key": key})
    no_boundary = client.post(ENDPOINT, content=b"--x\r\n", headers={"X-Api-Key": key, "Content-Type": "multipart/form-data"})
    bad_json = client.post(ENDPOINT, content=b"{not json", headers={"X-Api-Key": key, "Content-Type": "application/json"})
    plain = client.post(ENDPOINT, content=b"hello", headers={"X-Api-Key": key, "Content-Type": "text/plain"})
    for response in (too_many, no_boundary, bad_json, plain):
        assert response.status_code == 400 and response.json()["errors"][0]["code"] == "invalid_parameter"
    assert balance(session, owner) == 100


@SQLITE_ONLY
def test_exif_rotated_photos_are_sized_and_placed_upright(client, session, owner, key):
    give(session, owner, 100)
    exif = Image.Exif()
    exif[0x0112] = 6  # stored landscape, shown portrait
    stored = Image.open(io.BytesIO(HORSE)).resize((400, 300))
    rotated = bad.encode(stored, "JPEG", exif=exif.tobytes())
    for params in ({}, {"scale": "80%"}, {"roi": "0px 0px 300px 400px"}):
        response = post(client, key, files={"image_file": ("r.jpg", rotated)}, **params)
        assert response.status_code == 200, response.text
        assert opened(response).size == (300, 400) and response.headers["X-Credits-Charged"] == "0.25"
