"""Decoding: every Pillow mode, every format, EXIF, ICC, and each kind of bad file."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageCms

from clearbg_app.inference import ImageDecodeError, ImageTooLarge, decode_image, probe_image
from tests.inference.conftest import BIG_LIMIT, SAMPLES, encode


def decode(data: bytes, **limits):
    return decode_image(data, max_pixels=limits.get("max_pixels", BIG_LIMIT), max_bytes=limits.get("max_bytes"))


def pixel(image: Image.Image, xy=(0, 0)):
    return image.getpixel(xy)


def test_rgb_png_has_no_alpha():
    decoded = decode(encode(Image.new("RGB", (5, 4), (10, 20, 30))))
    assert decoded.rgb.mode == "RGB" and decoded.alpha is None and decoded.size == (5, 4)
    assert pixel(decoded.rgb) == (10, 20, 30) and decoded.format == "PNG"


@pytest.mark.parametrize("mode, colour, expected_rgb, expected_alpha", [
    ("RGBA", (10, 20, 30, 40), (10, 20, 30), 40),
    ("LA", (90, 7), (90, 90, 90), 7),
])
def test_alpha_modes_keep_their_alpha(mode, colour, expected_rgb, expected_alpha):
    decoded = decode(encode(Image.new(mode, (3, 3), colour)))
    assert pixel(decoded.rgb) == expected_rgb and pixel(decoded.alpha) == expected_alpha


def test_palette_with_transparency():
    image = Image.new("P", (4, 4), 1)
    image.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    image.putpixel((0, 0), 0)
    decoded = decode(encode(image, transparency=0))
    assert pixel(decoded.alpha) == 0 and pixel(decoded.alpha, (1, 1)) == 255
    assert pixel(decoded.rgb, (1, 1)) == (0, 0, 255)


def test_cmyk_jpeg_becomes_rgb():
    decoded = decode(encode(Image.new("CMYK", (8, 8), (255, 0, 0, 0)), "JPEG", quality=95))
    red, green, blue = pixel(decoded.rgb, (4, 4))
    assert red < 30 and green > 225 and blue > 225  # cyan


def test_sixteen_bit_png_is_scaled_not_clipped():
    values = np.array([[0, 32768, 65535]], dtype=np.uint16)
    decoded = decode(encode(Image.fromarray(values)))  # mode "I;16"
    assert [pixel(decoded.rgb, (x, 0))[0] for x in range(3)] == [0, 128, 255]


@pytest.mark.parametrize("mode, values", [
    ("I", np.array([[0, 500, 1000]], dtype=np.int32)),
    ("F", np.array([[0.0, 500.0, 1000.0]], dtype=np.float32)),
])
def test_deep_tiff_modes_scale_by_their_peak(mode, values):
    decoded = decode(encode(Image.fromarray(values), "TIFF"))
    assert Image.open(io.BytesIO(encode(Image.fromarray(values), "TIFF"))).mode == mode
    assert [pixel(decoded.rgb, (x, 0))[0] for x in range(3)] == [0, 128, 255]


@pytest.mark.parametrize("mode", ["1", "L"])
def test_bilevel_and_grey(mode):
    image = Image.new(mode, (4, 4), 0)
    image.putpixel((1, 1), 255 if mode == "L" else 1)
    decoded = decode(encode(image, "BMP"))
    assert pixel(decoded.rgb, (1, 1)) == (255, 255, 255) and pixel(decoded.rgb) == (0, 0, 0)


@pytest.mark.parametrize("image_format, params", [
    ("JPEG", {"quality": 95}), ("PNG", {}), ("WEBP", {"lossless": True}), ("BMP", {}),
    ("TIFF", {}), ("HEIF", {"quality": 95}), ("AVIF", {"quality": 95}),
])
def test_formats(image_format, params):
    decoded = decode(encode(Image.new("RGB", (32, 24), (200, 40, 40)), image_format, **params))
    assert decoded.size == (32, 24)
    assert np.abs(np.subtract(pixel(decoded.rgb, (16, 12)), (200, 40, 40))).max() < 12


def test_webp_with_alpha():
    decoded = decode(encode(Image.new("RGBA", (8, 8), (0, 255, 0, 100)), "WEBP", lossless=True))
    assert pixel(decoded.alpha) == 100


def test_animated_gif_gives_the_first_frame():
    frames = [Image.new("RGB", (6, 6), colour) for colour in ((255, 0, 0), (0, 0, 255))]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50)
    assert pixel(decode(data).rgb) == (255, 0, 0)


def test_multipage_tiff_gives_the_first_page():
    pages = [Image.new("RGB", (6, 6), colour) for colour in ((0, 255, 0), (255, 0, 255))]
    data = encode(pages[0], "TIFF", save_all=True, append_images=pages[1:])
    assert Image.open(io.BytesIO(data)).n_frames == 2
    assert pixel(decode(data).rgb) == (0, 255, 0)


def test_exif_orientation_is_applied():
    image = Image.new("RGB", (40, 20), (255, 0, 0))
    image.paste((0, 0, 255), (0, 0, 10, 20))  # blue on the left
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    decoded = decode(encode(image, "JPEG", exif=exif, quality=95))
    assert decoded.size == (20, 40)
    assert pixel(decoded.rgb, (10, 2))[2] > 200  # the blue side is now on top


def test_corrupt_exif_block_still_decodes():
    data = encode(Image.new("RGB", (8, 8), (1, 2, 3)), "JPEG", exif=b"Exif\x00\x00MM\x00*garbage-garbage")
    assert decode(data).size == (8, 8)


def test_icc_profile_is_converted_to_srgb():
    icc = Image.open(SAMPLES / "images" / "vangogh.jpeg").info["icc_profile"]  # a compact non-"sRGB"-named profile
    image = Image.new("RGB", (4, 4), (30, 200, 90))
    decoded = decode(encode(image, "PNG", icc_profile=icc))
    expected = ImageCms.profileToProfile(image, ImageCms.ImageCmsProfile(io.BytesIO(icc)), ImageCms.createProfile("sRGB"))
    assert pixel(decoded.rgb) == pixel(expected)


def test_unparseable_icc_profile_is_ignored():
    decoded = decode(encode(Image.new("RGB", (4, 4), (30, 200, 90)), "PNG", icc_profile=b"not a profile at all"))
    assert pixel(decoded.rgb) == (30, 200, 90)


def test_empty_file():
    with pytest.raises(ImageDecodeError, match="empty"):
        decode(b"")


def test_text_file_named_jpg(tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("these are my notes, not a photo\n")
    with pytest.raises(ImageDecodeError, match="not an image"):
        decode(path.read_bytes())


def test_truncated_jpeg():
    data = encode(Image.effect_noise((256, 256), 60).convert("RGB"), "JPEG")
    with pytest.raises(ImageDecodeError, match="truncated"):
        decode(data[: len(data) // 2])


def test_file_over_the_byte_limit():
    with pytest.raises(ImageTooLarge, match="MB"):
        decode(encode(Image.effect_noise((64, 64), 50)), max_bytes=1000)


def _png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims `width` x `height` pixels: a decompression bomb."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = lambda kind, body: struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))  # noqa: E731
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def test_decompression_bomb_is_refused_by_pixel_count_before_decoding():
    bomb = _png_claiming(60_000, 60_000)
    assert len(bomb) < 200
    with pytest.raises(ImageTooLarge, match="limit"):
        decode(bomb, max_pixels=50_000_000)
    with pytest.raises(ImageTooLarge, match="9000x9000"):
        probe_image(_png_claiming(9_000, 9_000), max_pixels=50_000_000)


def test_damaged_pixel_data():
    data = encode(Image.effect_noise((64, 64), 60).convert("RGB"), "PNG")
    damaged = data[:60] + bytes(b ^ 0xFF for b in data[60:200]) + data[200:]
    with pytest.raises(ImageDecodeError):
        decode(damaged)
