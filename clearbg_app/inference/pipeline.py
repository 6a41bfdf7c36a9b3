"""From decoded image to cut-out: infer the mask at the model's side, scale it to the output."""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

from clearbg_app.inference.decode import DecodedImage
from clearbg_app.inference.model import SegmentationModel


def fit_within(size: tuple[int, int], max_pixels: int | None) -> tuple[int, int]:
    """`size` scaled down (aspect kept) so it has at most `max_pixels` pixels."""
    width, height = size
    if not max_pixels or width * height <= max_pixels:
        return size
    factor = math.sqrt(max_pixels / (width * height))
    new_width = max(1, min(int(width * factor), max_pixels))
    new_height = max(1, min(int(height * factor), max_pixels // new_width))
    return new_width, new_height


def remove_background(
    image: DecodedImage, model: SegmentationModel, *, max_pixels: int | None = None
) -> Image.Image:
    """An RGBA cut-out, the input's size or scaled down to `max_pixels`."""
    mask = model.predict(image.rgb)
    out_size = fit_within(image.size, max_pixels)
    alpha = Image.fromarray((mask * 255).round().astype(np.uint8))
    alpha = alpha.resize(out_size, Image.Resampling.LANCZOS)
    rgb = image.rgb if out_size == image.size else image.rgb.resize(out_size, Image.Resampling.LANCZOS)
    if image.alpha is not None:
        source_alpha = image.alpha if out_size == image.size else image.alpha.resize(out_size)
        alpha = Image.fromarray(
            (np.asarray(alpha, np.uint16) * np.asarray(source_alpha, np.uint16) // 255).astype(np.uint8)
        )
    result = rgb.copy()
    result.putalpha(alpha)
    return result
