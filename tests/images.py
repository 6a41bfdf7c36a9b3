"""Test inputs made on the fly: the odd-but-valid images users send, and the bad ones."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from tests.samples import sample_bytes


def encode(image: Image.Image, fmt: str, **params) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def horse() -> Image.Image:
    return Image.open(io.BytesIO(sample_bytes("horse.jpg"))).convert("RGB")


def cmyk_jpeg() -> bytes:
    return encode(horse().convert("CMYK"), "JPEG", quality=90)


def palette_png_with_transparency() -> bytes:
    palette = horse().quantize(colors=64)
    return encode(palette, "PNG", transparency=0)


def png_16bit() -> bytes:
    grey = np.asarray(horse().convert("L"), dtype=np.uint16) * 257
    return encode(Image.fromarray(grey), "PNG")


def animated_gif() -> bytes:
    first = horse().resize((385, 298))
    frames = [first, first.transpose(Image.Transpose.FLIP_LEFT_RIGHT), first.rotate(10)]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


def truncated_jpeg() -> bytes:
    data = sample_bytes("horse.jpg")
    return data[: len(data) // 2]


def text_as_jpeg() -> bytes:
    return b"This is a shopping list, not a photo.\nmilk\neggs\n" * 20


def decompression_bomb() -> bytes:
    """A real PNG of 20000x20000 (400 MP) one-bit pixels that compresses to a few kilobytes."""
    return encode(Image.new("1", (20000, 20000)), "PNG", optimize=False)


def oversized_file(limit: int) -> bytes:
    """A valid JPEG padded past `limit` bytes (trailing bytes after the image)."""
    data = sample_bytes("horse.jpg")
    return data + b"\0" * (limit - len(data) + 1)
