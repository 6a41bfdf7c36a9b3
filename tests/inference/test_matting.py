"""Optional alpha matting: it recovers a true soft edge that the coarse mask misplaces, leaves
certain regions alone, and keeps the cut-out faithful to the official masks."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from clearbg_app.inference import CutoutOptions, cut_out, decode_image, load_model
from clearbg_app.inference.matting import matte, trimap
from clearbg_app.settings import get_settings
from tests.conftest import SAMPLES

WIDTH, HEIGHT = 240, 120


def ramp(centre: float, width: float) -> np.ndarray:
    """Alpha falling from 1 (left) to 0 (right) across `width` pixels around column `centre`."""
    columns = np.arange(WIDTH, dtype=np.float64)
    row = np.clip((centre + width / 2 - columns) / width, 0, 1)
    return np.tile(row, (HEIGHT, 1))


def compose(alpha: np.ndarray) -> Image.Image:
    """A textured red subject over a blue background, mixed by `alpha`."""
    rng = np.random.default_rng(7)
    subject = np.array([0.85, 0.15, 0.1]) + rng.normal(0, 0.02, (HEIGHT, WIDTH, 3))
    background = np.array([0.1, 0.2, 0.9]) + rng.normal(0, 0.02, (HEIGHT, WIDTH, 3))
    mixed = alpha[..., None] * subject + (1 - alpha[..., None]) * background
    return Image.fromarray((np.clip(mixed, 0, 1) * 255).astype(np.uint8))


def as_image(alpha: np.ndarray) -> Image.Image:
    return Image.fromarray((alpha * 255 + 0.5).astype(np.uint8))


def test_matting_recovers_a_soft_edge_the_mask_misplaced():
    truth = ramp(centre=120, width=6)
    coarse = ramp(centre=126, width=30)  # what an upscaled low-resolution mask looks like
    matted = np.asarray(matte(compose(truth), as_image(coarse)), dtype=np.float64) / 255
    coarse_error = np.abs(coarse - truth).mean()
    matted_error = np.abs(matted - truth).mean()
    assert matted_error < coarse_error / 3, (matted_error, coarse_error)


def test_certain_regions_are_left_alone():
    coarse = ramp(centre=120, width=30)
    result = np.asarray(matte(compose(ramp(120, 6)), as_image(coarse)))
    assert (result[:, :60] == 255).all() and (result[:, -60:] == 0).all()


def test_trimap_marks_the_band_between_sure_regions():
    regions = trimap(ramp(centre=120, width=10), band=3)
    assert set(np.unique(regions)) == {0.0, 0.5, 1.0}
    band_columns = np.where(regions[0] == 0.5)[0]
    assert band_columns.min() > 100 and band_columns.max() < 140


def test_an_image_with_no_border_is_returned_as_it_is():
    solid = Image.new("L", (64, 64), 255)
    assert matte(Image.new("RGB", (64, 64), "red"), solid) is solid


@pytest.mark.parametrize("name", ["0002-01.jpg", "horse.jpg"])
def test_matted_cutout_still_matches_the_official_mask(name):
    model = load_model(get_settings().model_path)
    decoded = decode_image((SAMPLES / "images" / name).read_bytes(), max_pixels=50_000_000)
    alpha = np.asarray(cut_out(decoded, model, CutoutOptions(alpha_matting=True)).alpha) > 127
    stem = name.rsplit(".", 1)[0]
    reference = Image.open(SAMPLES / "u2net_reference" / f"{stem}.png").convert("L").resize(decoded.size)
    official = np.asarray(reference) > 127
    assert (alpha & official).sum() / (alpha | official).sum() >= 0.9
