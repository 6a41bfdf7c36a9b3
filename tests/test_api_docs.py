"""The API's description (OpenAPI, HTML, the Reflex page) and a client written from remove.bg's docs."""

from __future__ import annotations

import pytest
import requests
from openapi_spec_validator import validate
from PIL import Image
from starlette.testclient import TestClient

from clearbg_app.api import build_api
from clearbg_app.api.openapi import PARAMETERS, openapi_document
from clearbg_app.api.v1 import PublicApi
from clearbg_app.http.removebg_params import removal_options
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
    removal_options({name: value}, None)


def test_served_docs_are_self_contained(data_dir):
    client = TestClient(build_api(PublicApi(limiter=RateLimiter())))
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
    with serve_asgi(build_api(PublicApi(pool=pool, limiter=RateLimiter())), "ClearBG API") as base:
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
