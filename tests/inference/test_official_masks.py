"""The default pipeline on the U^2-Net samples reproduces the official u2net masks (the default model's)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from clearbg_app.inference import decode_image, fit_within, load_model, remove_background
from clearbg_app.settings import get_settings
from tests.conftest import SAMPLES

SAMPLE_IMAGES = sorted((SAMPLES / "images").iterdir())


@pytest.fixture(scope="module")
def model():
    return load_model(get_settings().model_path)


def iou(alpha: Image.Image, reference: Image.Image) -> float:
    ours = np.asarray(alpha) > 127
    theirs = np.asarray(reference.convert("L").resize(alpha.size, Image.Resampling.BILINEAR)) > 127
    return float((ours & theirs).sum() / max((ours | theirs).sum(), 1))


@pytest.mark.parametrize("path", SAMPLE_IMAGES, ids=lambda p: p.stem)
def test_cutout_matches_official_u2net_mask(path, model):
    cutout = remove_background(decode_image(path.read_bytes(), max_pixels=50_000_000), model)
    assert cutout.mode == "RGBA"
    assert cutout.size == Image.open(path).size
    reference = Image.open(SAMPLES / "u2net_reference" / f"{path.stem}.png")
    assert iou(cutout.getchannel("A"), reference) >= 0.9


def test_preview_is_scaled_to_the_pixel_budget(model):
    decoded = decode_image((SAMPLES / "images" / "bike.jpg").read_bytes(), max_pixels=50_000_000)
    cutout = remove_background(decoded, model, max_pixels=250_000)
    width, height = cutout.size
    assert width * height <= 250_000
    assert abs(width / height - 1.5) < 0.01


@pytest.mark.parametrize(
    ("size", "budget", "expected"),
    [((3000, 2000), 250_000, (612, 408)), ((400, 300), 250_000, (400, 300)), ((1, 1), 1, (1, 1)), ((50, 20000), 10, (1, 10)), ((20000, 50), 10, (10, 1))],
)
def test_fit_within(size, budget, expected):
    assert fit_within(size, budget) == expected
