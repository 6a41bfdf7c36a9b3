"""The API's ClearBG extensions for the editor's effects (issue 16): `bg_blur` and the drop shadow
(`shadow`, remove.bg's `add_shadow`, `shadow_opacity`, `shadow_blur`, `shadow_offset`)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from clearbg_app.api.v1.openapi import PARAMETERS
from clearbg_app.http.removebg_params import ParameterError, removal_options
from clearbg_app.inference.render import DEFAULT_SHADOW, Shadow
from clearbg_app.services import credits
from tests import images as bad
from tests.factories import HORSE, SQLITE_ONLY, give, opened, post


def grey(response) -> np.ndarray:
    return np.asarray(opened(response).convert("L"), dtype=np.float32)


@SQLITE_ONLY  # image options: the DB adds nothing
def test_bg_blur_puts_the_blurred_original_behind(client, session, owner, key):
    give(session, owner, 100)
    plain = opened(post(client, key, format="jpg"))
    blurred_response = post(client, key, bg_blur="60")
    assert blurred_response.status_code == 200, blurred_response.text
    blurred = opened(blurred_response)
    assert blurred.format == "JPEG" and blurred.size == plain.size  # opaque: auto gives a JPG
    original = Image.open(bad.io.BytesIO(HORSE)).convert("L").resize(plain.size)
    corner = (slice(0, 40), slice(0, 40))  # meadow, far from the horse
    assert np.asarray(plain.convert("L"))[corner].min() > 240  # no background: white
    result = grey(blurred_response)[corner]
    assert abs(result.mean() - np.asarray(original, dtype=np.float32)[corner].mean()) < 25  # the photo's own tones
    assert result.std() < np.asarray(original, dtype=np.float32)[corner].std()  # ...smoothed


@SQLITE_ONLY
def test_add_shadow_is_the_default_shadow_and_darkens_under_the_subject(client, session, owner, key):
    give(session, owner, 100)
    plain, shadowed = grey(post(client, key, format="jpg")), grey(post(client, key, format="jpg", add_shadow="true"))
    assert plain.shape == shadowed.shape
    darker = plain - shadowed
    assert darker.max() > 40 and darker[:20, :20].max() < 3  # somewhere near the horse, not in the far corner
    assert removal_options({"add_shadow": "true"}, None).shadow == DEFAULT_SHADOW == removal_options({"shadow": "1"}, None).shadow


@SQLITE_ONLY
def test_shadow_parameters_shape_the_shadow(client, session, owner, key):
    give(session, owner, 100)
    response = post(client, key, format="png", shadow_opacity="100%", shadow_blur="0", shadow_offset="-5% 10%")
    assert response.status_code == 200, response.text
    image = opened(response)
    alpha = np.asarray(image.getchannel("A"))
    model = np.asarray(opened(post(client, key, format="png")).getchannel("A"))
    extra = (alpha > 0) & (model == 0)  # pixels only the shadow covers
    rows, columns = np.nonzero(extra)
    model_rows, model_columns = np.nonzero(model)
    assert extra.sum() > 100 and rows.mean() > model_rows.mean() and columns.mean() < model_columns.mean()  # down and left
    assert np.asarray(image.convert("RGB"))[extra].max() == 0  # black


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"bg_blur": "0"}, {"background_blur": 0.0, "shadow": None}),
        ({"bg_blur": "100"}, {"background_blur": 0.1}),
        ({"shadow": "false", "add_shadow": "0"}, {"shadow": None}),
        ({"shadow_opacity": "25%"}, {"shadow": Shadow(opacity=0.25)}),
        ({"shadow": "true", "shadow_blur": "50", "shadow_offset": "0% -20%"}, {"shadow": Shadow(blur=0.05, offset=(0.0, -0.2))}),
    ],
)
def test_good_values_parse(params, expected):
    options = removal_options(params, None)
    assert {name: getattr(options, name) for name in expected} == expected


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"bg_blur": "101"}, "bg_blur"),
        ({"bg_blur": "-5"}, "bg_blur"),
        ({"bg_blur": "strong"}, "bg_blur"),
        ({"bg_blur": "nan"}, "bg_blur"),
        ({"bg_blur": "1e9"}, "bg_blur"),
        ({"bg_blur": "10", "bg_color": "white"}, "bg_blur"),
        ({"shadow": "maybe"}, "shadow"),
        ({"add_shadow": "yes please"}, "add_shadow"),
        ({"shadow_opacity": "150%"}, "shadow_opacity"),
        ({"shadow_opacity": "0.5"}, "shadow_opacity"),
        ({"shadow_blur": "500"}, "shadow_blur"),
        ({"shadow_offset": "5%"}, "shadow_offset"),
        ({"shadow_offset": "30% 0%"}, "shadow_offset"),
        ({"shadow_offset": "5px 5px"}, "shadow_offset"),
        ({"shadow_offset": "1% 2% 3%"}, "shadow_offset"),
    ],
)
def test_bad_values_are_named_in_the_refusal(params, message):
    with pytest.raises(ParameterError, match=message):
        removal_options(params, None)


@SQLITE_ONLY
@pytest.mark.parametrize(
    ("files", "params"),
    [
        (None, {"bg_blur": "200"}),
        (None, {"shadow_offset": "left"}),
        ({"bg_image_file": ("bg.png", bad.encode(Image.new("RGB", (8, 8)), "PNG"))}, {"bg_blur": "30"}),
    ],
)
def test_bad_values_are_a_400_and_never_charged(client, session, owner, key, files, params):
    give(session, owner, 100)
    before = credits.balance(session, user_id=owner.id)
    files = {"image_file": ("horse.jpg", HORSE, "image/jpeg"), **(files or {})}
    response = post(client, key, files=files, **params)
    assert response.status_code == 400 and response.json()["errors"][0]["code"] == "invalid_parameter", response.text
    session.rollback()
    assert credits.balance(session, user_id=owner.id) == before


@SQLITE_ONLY
def test_the_extensions_are_documented_in_openapi(client):
    documented = {name for name, _, _ in PARAMETERS}
    assert {"bg_blur", "shadow", "add_shadow", "shadow_opacity", "shadow_blur", "shadow_offset"} <= documented
    schema = client.get("/api/openapi.json").json()
    text = str(schema)
    assert "bg_blur" in text and "shadow_offset" in text
