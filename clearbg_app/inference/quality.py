"""Quality measures shared by the tests and the benchmark."""

from __future__ import annotations

import numpy as np
from PIL import Image

GREEN = (0, 255, 0)


def as_unit(alpha: Image.Image | np.ndarray) -> np.ndarray:
    """A mask as float32 in [0, 1]."""
    return np.asarray(alpha, dtype=np.float32) / 255


def iou(alpha: np.ndarray, reference: np.ndarray) -> float:
    """Intersection over union of the two masks thresholded at one half."""
    ours, theirs = alpha >= 0.5, reference >= 0.5
    union = np.logical_or(ours, theirs).sum()
    return float(np.logical_and(ours, theirs).sum() / union) if union else 1.0


def mae(alpha: np.ndarray, reference: np.ndarray) -> float:
    return float(np.abs(alpha - reference).mean())


def on_green(photo: Image.Image, alpha: Image.Image) -> Image.Image:
    """`photo`'s subject (cut by `alpha`) composited on pure green: the bleed test's input."""
    screen = Image.new("RGB", photo.size, GREEN)
    screen.paste(photo, (0, 0), alpha)
    return screen


def green_bleed(result: Image.Image, photo: Image.Image, band: np.ndarray) -> float:
    """How much greener than the true subject the result's semi-transparent pixels are.

    Mean over the `band` pixels of (G - max(R, B)) in the result minus the same in the
    original photo, in 8-bit levels: 0 means no background colour leaked into the edges.
    """
    def greenness(image: Image.Image) -> np.ndarray:
        values = np.asarray(image.convert("RGB"), dtype=np.float32)[band]
        return values[:, 1] - np.maximum(values[:, 0], values[:, 2])

    return float((greenness(result) - greenness(photo)).mean()) if band.any() else 0.0
