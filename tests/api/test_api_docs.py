"""The API's description (OpenAPI, HTML, the Reflex page) and a client written from remove.bg's docs."""

from __future__ import annotations

import json
import subprocess

import pytest
import requests
from openapi_spec_validator import validate
from PIL import Image
from starlette.testclient import TestClient

from clearbg_app.api import build_api
from clearbg_app.api.v1.openapi import PARAMETERS, openapi_document
from clearbg_app.http.removebg_params import removal_options
from clearbg_app.inference.registry import DEFAULT_MODEL, FAST_MODEL

MODELS = (DEFAULT_MODEL, FAST_MODEL)
from clearbg_app.api.deps import ApiDeps
from clearbg_app.services.ratelimit import RateLimiter
from tests.conftest import SAMPLES
from tests.factories import balance, give
from tests.loopback import serve_asgi


def test_openapi_document_is_valid_and_lists_every_parameter():
    document = openapi_document()
    validate(document)
    body = document["paths"]["/api/v1.0/removebg"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert set(body["properties"]) == {name for name, _, _ in PARAMETERS}
    assert {"400", "402", "403", "413", "429", "503"} <= set(document["paths"]["/api/v1.0/removebg"]["post"]["responses"])


@pytest.mark.parametrize(("name", "value"), [(n, v) for n, s, _ in PARAMETERS for v in s.get("enum", [])])
def test_every_documented_value_is_accepted(name, value):
    removal_options({name: value}, None, models=MODELS)


def test_the_model_extension_is_documented_and_its_example_accepted():
    [(schema, text)] = [(schema, text) for name, schema, text in PARAMETERS if name == "model"]
    assert "ClearBG extension" in text and removal_options({"model": schema["example"]}, None, models=MODELS).model == "u2net"


def test_served_docs_are_self_contained(data_dir):
    client = TestClient(build_api(ApiDeps(limiter=RateLimiter())))
    assert client.get("/api/openapi.json").json()["info"]["title"] == "ClearBG API"
    page = client.get("/api/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert all(name in page.text for name, _, _ in PARAMETERS)
    assert "<script" not in page.text and 'src="http' not in page.text and "<link" not in page.text


def test_docs_page_has_curl_and_python_examples(data_dir):
    from clearbg_app.pages.api_docs import api_docs

    rendered = str(api_docs())
    assert "curl -H" in rendered and "requests.post" in rendered and "image_file" in rendered


def test_a_client_written_from_remove_bg_docs_works_unchanged(db_url, session, owner, key, pool, tmp_path):
    give(session, owner, 100)
    with serve_asgi(build_api(ApiDeps(pool=pool, limiter=RateLimiter())), "ClearBG API") as base:
        # remove.bg's Python sample, with only the base URL changed
        response = requests.post(
            f"{base}/api/v1.0/removebg",
            files={"image_file": open(SAMPLES / "images" / "horse.jpg", "rb")},
            data={"size": "auto"},
            headers={"X-Api-Key": key},
        )
        if response.status_code == requests.codes.ok:
            with open(tmp_path / "no-bg.png", "wb") as out:
                out.write(response.content)
        else:
            print("Error:", response.status_code, response.text)
    result = Image.open(tmp_path / "no-bg.png")
    assert (result.format, result.mode, result.size) == ("PNG", "RGBA", (770, 595))
    assert balance(session, owner) == 0


def test_the_docs_curl_example_shows_why_a_call_was_refused(db_url, session, owner, key, pool, tmp_path):
    """The first call of a user without credits: the docs' curl line exits non-zero and leaves the
    JSON explanation where the image would have gone (no silent `-f`)."""
    from clearbg_app.api.v1.openapi import CURL_EXAMPLE

    photo = tmp_path / "photo.jpg"
    photo.write_bytes((SAMPLES / "images" / "horse.jpg").read_bytes())
    with serve_asgi(build_api(ApiDeps(pool=pool, limiter=RateLimiter())), "ClearBG API") as base:
        command = CURL_EXAMPLE.format(base=base).split("\n#")[0].replace("YOUR_KEY", key).replace("/path/to/photo.jpg", str(photo))
        assert " -f " not in command and "--fail-with-body" in command
        done = subprocess.run(["bash", "-c", command], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 22  # curl's "HTTP error" exit
    assert json.loads((tmp_path / "no-bg.png").read_text())["errors"][0]["code"] == "insufficient_credits"


def test_the_docs_tell_of_the_free_allowance(data_dir):
    from clearbg_app.pages.api_docs import api_docs

    rendered = str(api_docs())
    assert "12.5 free credits a month, granted the moment you confirm your email" in rendered
    assert "--fail-with-body" in rendered and " -f " not in rendered


def test_the_example_responses_have_the_real_shapes(db_url, session, owner, key, pool, clock):
    """Each documented example response parses and has the keys the API really answers with."""
    from clearbg_app.api.v1.openapi import EXAMPLE_RESPONSES
    from tests.factories import api_client

    def body(name: str) -> dict:
        return json.loads(EXAMPLE_RESPONSES[name].split("\n\n", 1)[1])

    client = api_client(pool)
    account = client.get("/api/v1.0/account", headers={"X-Api-Key": key}).json()
    assert body("account")["data"]["attributes"].keys() == account["data"]["attributes"].keys()
    assert body("account")["data"]["attributes"]["credits"].keys() == account["data"]["attributes"]["credits"].keys()
    refused = client.post("/api/v1.0/removebg", files={"image_file": ("h.jpg", (SAMPLES / "images" / "horse.jpg").read_bytes())},
                          data={"size": "preview"}, headers={"X-Api-Key": key})  # fmt: skip
    assert refused.status_code == 402 and EXAMPLE_RESPONSES["removebg_error"].startswith("HTTP/1.1 402")
    assert body("removebg_error")["errors"][0].keys() == refused.json()["errors"][0].keys()
    assert body("removebg_error")["errors"][0]["code"] == refused.json()["errors"][0]["code"]
    assert refused.json()["errors"][0]["detail"] == body("removebg_error")["errors"][0]["detail"]
    give(session, owner, 100)
    batch = client.post("/api/v1.0/batches", files={"image_file": ("cat.jpg", (SAMPLES / "images" / "horse.jpg").read_bytes())},
                        headers={"X-Api-Key": key})  # fmt: skip
    assert batch.status_code == 202
    example = body("batch")["data"]
    assert set(example) <= set(batch.json()["data"]) and set(example["items"][0]) <= set(batch.json()["data"]["items"][0])


def test_one_base_url_everywhere(data_dir, monkeypatch):
    from clearbg_app.api.v1.openapi import docs_html
    from clearbg_app.settings import get_settings

    monkeypatch.setenv("CLEARBG_PUBLIC_URL", "https://bg.example.org")
    get_settings.cache_clear()
    client = TestClient(build_api(ApiDeps(limiter=RateLimiter())))
    page = client.get("/api/docs").text  # asked for as http://testserver: still the public URL
    assert "https://bg.example.org/api/v1.0/removebg" in page and "testserver" not in page
    assert client.get("/api/openapi.json").json()["servers"] == [{"url": "https://bg.example.org"}]
    assert page.index("<h2>Examples</h2>") < page.index("<h2>POST /api/v1.0/removebg</h2>")  # examples first
    assert docs_html("https://bg.example.org") == page
