"""Optional alpha matting for hair and fur: closed-form matting (Levin, Lischinski and Weiss, 2008,
via pymatting) re-estimates alpha in the uncertain band around the subject's outline.

The segmentation mask knows *where* the subject is; matting finds *how much* of each border pixel
belongs to it, from the colours on either side, which recovers strands the mask blurs or cuts.
It is slow (a sparse linear system over the band), so it runs on a copy of at most
`MATTING_MAX_PIXELS` and only the band is scaled back; outside the band the alpha is unchanged.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageFilter

from clearbg_app.inference.errors import InferenceError

MATTING_MAX_PIXELS = 300_000
SURE = 0.95  # alpha above this (or below 1 - this) counts as certain before erosion
BAND_FRACTION = 0.012  # half-width of the uncertain band, as a fraction of the working image's diagonal


def _working_size(size: tuple[int, int], max_pixels: int) -> tuple[int, int]:
    width, height = size
    if width * height <= max_pixels:
        return size
    factor = (max_pixels / (width * height)) ** 0.5
    return max(1, round(width * factor)), max(1, round(height * factor))


def trimap(alpha: np.ndarray, band: int) -> np.ndarray:
    """1 where surely subject, 0 where surely background, 0.5 in the band between (float64)."""
    sure_fg = Image.fromarray(((alpha > SURE) * 255).astype(np.uint8))
    sure_bg = Image.fromarray(((alpha < 1 - SURE) * 255).astype(np.uint8))
    size = 2 * band + 1
    fg = np.asarray(sure_fg.filter(ImageFilter.MinFilter(size))) > 0
    bg = np.asarray(sure_bg.filter(ImageFilter.MinFilter(size))) > 0
    result = np.full(alpha.shape, 0.5)
    result[fg], result[bg] = 1.0, 0.0
    return result


def matte(rgb: Image.Image, alpha: Image.Image, *, max_pixels: int = MATTING_MAX_PIXELS) -> Image.Image:
    """`alpha` with its uncertain band re-estimated by closed-form matting; the same size and mode."""
    try:
        from pymatting import estimate_alpha_cf
    except ImportError:  # pragma: no cover - pymatting is in requirements.txt
        raise InferenceError("Alpha matting is not installed on this server.") from None
    work = _working_size(rgb.size, max_pixels)
    image = np.asarray(rgb.resize(work, Image.Resampling.BILINEAR), dtype=np.float64) / 255
    coarse = np.asarray(alpha.resize(work, Image.Resampling.BILINEAR), dtype=np.float64) / 255
    band = max(2, round(BAND_FRACTION * (work[0] ** 2 + work[1] ** 2) ** 0.5))
    regions = trimap(coarse, band)
    unknown = regions == 0.5
    if not unknown.any() or not (regions == 1).any() or not (regions == 0).any():
        return alpha  # nothing to separate: all subject, all background, or no border
    matted = np.clip(estimate_alpha_cf(image, regions), 0, 1)
    matted_full = Image.fromarray((matted * 255 + 0.5).astype(np.uint8)).resize(rgb.size, Image.Resampling.BILINEAR)
    band_full = Image.fromarray((unknown * 255).astype(np.uint8)).resize(rgb.size, Image.Resampling.NEAREST)
    return Image.composite(matted_full, alpha, band_full)
