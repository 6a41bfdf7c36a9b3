"""Hostile and odd image files, made in code: every supported format in its colour-mode variants,
every format Pillow knows but ClearBG refuses, and, for each of them, truncated and garbage-filled
copies, headers claiming huge sizes, decompression bombs, bad EXIF and animation. Files a fuzzer
found that cannot be rebuilt by a few lines of code live in `tests/corpus/`, checked in.

Each case says what the decoder must do with it: "decodes" (a supported file), "refused" (not a
format we read: `ImageDecodeError`), "too_large" (`ImageTooLarge` before decoding) or "either"
(damaged: decoded or refused, never anything else)."""

from __future__ import annotations

import io
import random
import struct
import zlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image

import clearbg_app.inference.decode  # noqa: F401 - registers the HEIF plugin (saving HEIC needs it too)

CORPUS = Path(__file__).parent / "corpus"
SUPPORTED_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF", "HEIF", "AVIF")  # what README and the page promise
MAX_PIXELS = 50_000_000  # the default limit (50 MP)


@dataclass(frozen=True)
class Crafted:
    name: str
    data: bytes
    expect: str  # decodes, refused, too_large, either


def encode(image: Image.Image, image_format: str, **params) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, image_format, **params)
    return buffer.getvalue()


def _photo(size=(48, 32)) -> Image.Image:
    """Noise with a bright block: compresses badly, decodes into something a model can look at."""
    image = Image.effect_noise(size, 50).convert("RGB")
    image.paste((240, 200, 30), (size[0] // 4, size[1] // 4, size[0] * 3 // 4, size[1] * 3 // 4))
    return image


def _exif(orientation: int | None = None, garbage: bool = False) -> bytes | Image.Exif:
    if garbage:
        return b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\xff\xff" + b"\xde\xad" * 40
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif


def supported_variants() -> list[Crafted]:
    """Valid files of every supported format, in the modes people send: all must decode."""
    photo = _photo()
    grey16 = Image.fromarray(np.asarray(photo.convert("L"), dtype=np.uint16) * 257)
    frames = [photo, photo.transpose(Image.Transpose.FLIP_LEFT_RIGHT), photo.rotate(90)]
    cases = [
        ("jpeg-rgb", photo, "JPEG", {"quality": 90}),
        ("jpeg-grey", photo.convert("L"), "JPEG", {}),
        ("jpeg-cmyk", photo.convert("CMYK"), "JPEG", {}),
        ("jpeg-progressive", photo, "JPEG", {"progressive": True}),
        ("jpeg-exif-rotated", photo, "JPEG", {"exif": _exif(6)}),
        ("jpeg-exif-garbage", photo, "JPEG", {"exif": _exif(garbage=True)}),
        ("jpeg-exif-orientation-out-of-range", photo, "JPEG", {"exif": _exif(99)}),
        ("jpeg-icc-garbage", photo, "JPEG", {"icc_profile": b"\x00" * 200}),
        ("mpo-two-pictures", photo, "MPO", {"save_all": True, "append_images": [photo.rotate(180)]}),
        ("png-rgb", photo, "PNG", {}),
        ("png-rgba", photo.convert("RGBA"), "PNG", {}),
        ("png-la", photo.convert("LA"), "PNG", {}),
        ("png-palette-transparent", photo.quantize(16), "PNG", {"transparency": 0}),
        ("png-16bit", grey16, "PNG", {}),
        ("png-1bit", photo.convert("1"), "PNG", {}),
        ("png-icc-garbage", photo, "PNG", {"icc_profile": b"not a profile"}),
        ("png-animated", frames[0], "PNG", {"save_all": True, "append_images": frames[1:]}),
        ("webp-lossy", photo, "WEBP", {}),
        ("webp-lossless-alpha", photo.convert("RGBA"), "WEBP", {"lossless": True}),
        ("webp-animated", frames[0], "WEBP", {"save_all": True, "append_images": frames[1:]}),
        ("gif-palette", photo, "GIF", {}),
        ("gif-transparent", photo.quantize(16), "GIF", {"transparency": 0}),
        ("gif-animated", frames[0], "GIF", {"save_all": True, "append_images": frames[1:], "duration": 50, "loop": 0}),
        ("bmp-rgb", photo, "BMP", {}),
        ("bmp-1bit", photo.convert("1"), "BMP", {}),
        ("bmp-palette", photo.quantize(16), "BMP", {}),
        ("tiff-rgb", photo, "TIFF", {}),
        ("tiff-rgba-lzw", photo.convert("RGBA"), "TIFF", {"compression": "tiff_lzw"}),
        ("tiff-cmyk", photo.convert("CMYK"), "TIFF", {}),
        ("tiff-16bit", grey16, "TIFF", {}),
        ("tiff-float", photo.convert("F"), "TIFF", {}),
        ("tiff-jpeg", photo, "TIFF", {"compression": "jpeg"}),
        ("tiff-group4", photo.convert("1"), "TIFF", {"compression": "group4"}),
        ("tiff-multipage", frames[0], "TIFF", {"save_all": True, "append_images": frames[1:]}),
        ("heic", photo, "HEIF", {"quality": 80}),
        ("heic-alpha", photo.convert("RGBA"), "HEIF", {"quality": 80}),
        ("avif", photo, "AVIF", {"quality": 80}),
        ("avif-alpha", photo.convert("RGBA"), "AVIF", {"quality": 80}),
    ]
    return [Crafted(name, encode(image, fmt, **params), "decodes") for name, image, fmt, params in cases]


def unsupported_files() -> list[Crafted]:
    """Valid files of formats Pillow reads but ClearBG does not: all must be refused, unread."""
    photo = _photo()
    cases = [
        ("dds", photo, "DDS"), ("dds-rgba", photo.convert("RGBA"), "DDS"), ("spider", photo.convert("F"), "SPIDER"),
        ("tga", photo, "TGA"), ("pcx", photo, "PCX"), ("ico", photo, "ICO"), ("ppm", photo, "PPM"),
        ("sgi", photo, "SGI"), ("qoi", photo, "QOI"), ("jpeg2000", photo, "JPEG2000"), ("eps", photo, "EPS"),
        ("pdf", photo, "PDF"), ("xbm", photo.convert("1"), "XBM"), ("icns", photo.resize((16, 16)), "ICNS"),
        ("blp", photo.quantize(16), "BLP"), ("dib", photo, "DIB"), ("msp", photo.convert("1"), "MSP"),
    ]  # fmt: skip
    files = [Crafted(f"unsupported-{name}", encode(image, fmt), "refused") for name, image, fmt in cases]
    texts = {
        "text": b"This is a shopping list, not a photo.\nmilk\neggs\n",
        "svg": b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>',
        "html": b"<!doctype html><title>x</title><img src=x onerror=alert(1)>",
        "zip": b"PK\x03\x04" + b"\x00" * 60,
        "nul-bytes": b"\x00" * 1024,
        "one-byte": b"\xff",
    }
    return files + [Crafted(f"not-an-image-{name}", data, "refused") for name, data in texts.items()]


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def huge_headers() -> list[Crafted]:
    """Tiny files whose headers claim more pixels than the limit: refused before any pixel is decoded."""
    png = b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", 60_000, 60_000, 8, 2, 0, 0, 0))
    png += _png_chunk(b"IDAT", zlib.compress(b"\0" * 64)) + _png_chunk(b"IEND", b"")
    gif = b"GIF89a" + struct.pack("<HH", 65535, 65535) + b"\x00\x00\x00" + b",\x00\x00\x00\x00" + struct.pack("<HH", 65535, 65535) + b"\x00\x02\x02\x44\x01\x00;"
    bmp_info = struct.pack("<IiiHHIIiiII", 40, 40_000, 40_000, 1, 24, 0, 0, 0, 0, 0, 0)
    bmp = b"BM" + struct.pack("<IHHI", 54 + 64, 0, 0, 54) + bmp_info + b"\0" * 64
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 17, 8, 65_000, 65_000, 3) + b"\x01\x22\x00\x02\x11\x01\x03\x11\x01"
    jpeg = b"\xff\xd8" + sof + b"\xff\xd9"
    tiff_tags = [(256, 4, 1, 100_000), (257, 4, 1, 100_000), (258, 3, 1, 8), (259, 3, 1, 1), (262, 3, 1, 1), (273, 4, 1, 8), (277, 3, 1, 1), (279, 4, 1, 1)]
    tiff = b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", len(tiff_tags))
    tiff += b"".join(struct.pack("<HHII", *tag) for tag in tiff_tags) + b"\x00\x00\x00\x00"
    claimed = {"png": png, "gif": gif, "bmp": bmp, "jpeg": jpeg, "tiff": tiff}
    return [Crafted(f"huge-header-{name}", data, "too_large") for name, data in claimed.items()]


def decompression_bombs() -> list[Crafted]:
    """Real, valid images over the pixel limit that compress to a few kilobytes."""
    return [
        Crafted("bomb-png-1bit", encode(Image.new("1", (8_000, 8_000)), "PNG", optimize=False), "too_large"),
        Crafted("bomb-gif", encode(Image.new("P", (8_000, 7_000)), "GIF"), "too_large"),
    ]


def damaged_copies(sources: list[Crafted], seed: int = 12) -> list[Crafted]:
    """Each file cut after its header, cut in half, with garbage after its first 16 bytes, and with
    bytes flipped in its header: decoded or refused, nothing else."""
    rng = random.Random(seed)
    damaged = []
    for source in sources:
        data = source.data
        flipped = bytearray(data)
        for _ in range(6):
            position = rng.randrange(min(len(data), 128))
            flipped[position] = rng.choice((0x00, 0xFF, 0x7F, 0x80, rng.randrange(256)))
        for kind, copy in {
            "header-only": data[:32],
            "half": data[: len(data) // 2],
            "garbage-body": data[:16] + rng.randbytes(256),
            "flipped-header": bytes(flipped),
        }.items():
            damaged.append(Crafted(f"{source.name}-{kind}", copy, "either"))
    return damaged


def fuzzer_finds() -> list[Crafted]:
    """Files found by fuzzing that crashed Pillow's plugins with something other than an image
    error (kept in `tests/corpus/`, named after the format and the exception)."""
    expect = {True: "refused", False: "either"}
    return [
        Crafted(f"corpus-{path.stem}", path.read_bytes(), expect[path.name.split("-")[0].upper() not in SUPPORTED_FORMATS])
        for path in sorted(CORPUS.glob("*.bin"))
    ]


@cache
def all_crafted() -> tuple[Crafted, ...]:
    valid = supported_variants() + unsupported_files()
    return tuple(valid + huge_headers() + decompression_bombs() + damaged_copies(valid) + fuzzer_finds())
