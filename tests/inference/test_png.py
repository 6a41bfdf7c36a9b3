"""The parallel PNG writer: Pillow decodes exactly the pixels written, for every shape and mode."""

from __future__ import annotations

import io
import zlib

import numpy as np
import pytest
from PIL import Image

from clearbg_app.inference import png


def noise(mode: str, size: tuple[int, int]) -> Image.Image:
    channels = {"L": 1, "RGB": 3}[mode]
    values = np.random.default_rng(sum(size)).integers(0, 256, (size[1], size[0], channels), dtype=np.uint8)
    return Image.fromarray(values.squeeze(axis=2) if channels == 1 else values, mode=mode)


@pytest.mark.parametrize("size", [(1, 1), (7, 1), (1, 9), (123, 77)])
@pytest.mark.parametrize("with_alpha", [False, True])
@pytest.mark.parametrize("strip_bytes", [10, png.STRIP_BYTES])
def test_round_trip(monkeypatch, size, with_alpha, strip_bytes):
    monkeypatch.setattr(png, "STRIP_BYTES", strip_bytes)  # 10 bytes: one row per strip
    colour, alpha = noise("RGB", size), noise("L", size) if with_alpha else None
    decoded = Image.open(io.BytesIO(png.encode_png(colour, alpha)))
    expected = colour.copy()
    if alpha is not None:
        expected.putalpha(alpha)
    assert decoded.mode == expected.mode and np.array_equal(np.asarray(decoded), np.asarray(expected))


def test_greyscale_mask():
    mask = noise("L", (40, 30))
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(png.encode_png(mask)))), np.asarray(mask))


def test_adler32_combination_matches_zlib():
    first, second = b"left part " * 999, b"right" * 12345
    combined = png._adler32_combine(zlib.adler32(first), zlib.adler32(second), len(second))
    assert combined == zlib.adler32(first + second)
