"""The decoder against hostile files: every supported format in its odd variants decodes, every
other format is refused unread, and nothing a crafted file makes a plugin raise gets past
`ImageDecodeError` (the API's 400 `invalid_image`)."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from clearbg_app.inference import ImageDecodeError, ImageTooLarge, decode_image, probe_image
from clearbg_app.inference.decode import FORMATS, MEDIA_TYPES, SUPPORTED
from tests.crafted_images import MAX_PIXELS, SUPPORTED_FORMATS, all_crafted, encode


def outcome(data: bytes) -> str:
    try:
        decoded = decode_image(data, max_pixels=MAX_PIXELS)
    except ImageTooLarge:
        return "too_large"
    except ImageDecodeError as error:
        assert str(error).endswith(".") and len(str(error)) < 200  # a sentence for the sender
        return "refused"
    assert decoded.rgb.mode == "RGB" and (decoded.alpha is None or decoded.alpha.size == decoded.size)
    return "decodes"


@pytest.mark.parametrize("case", all_crafted(), ids=lambda case: case.name)
def test_a_crafted_file_decodes_or_is_refused_with_an_image_error(case):
    got = outcome(case.data)  # any other exception fails the test: it was a 500 before
    assert got == case.expect or (case.expect == "either" and got in ("decodes", "refused", "too_large"))


@pytest.mark.parametrize("case", all_crafted(), ids=lambda case: case.name)
def test_probing_agrees_with_decoding(case):
    try:
        info = probe_image(case.data, max_pixels=MAX_PIXELS)
    except ImageDecodeError:
        return  # a refused header is never decoded
    assert info.format in FORMATS or info.format == "MPO"
    if case.expect == "decodes":
        assert decode_image(case.data, max_pixels=MAX_PIXELS).size == info.upright_size


def test_the_allow_list_is_what_the_docs_promise():
    assert set(FORMATS) == set(SUPPORTED_FORMATS)
    assert SUPPORTED == "JPEG, PNG, WebP, GIF, BMP, TIFF, HEIC or AVIF"
    assert set(FORMATS) | {"MPO"} == set(MEDIA_TYPES)  # every accepted upload has its content type


@pytest.mark.parametrize("image_format", ["DDS", "SPIDER", "EPS", "TGA", "ICO", "JPEG2000"])
def test_formats_outside_the_list_are_never_opened(image_format):
    data = encode(Image.new("RGB" if image_format != "SPIDER" else "F", (8, 8)), image_format)
    assert Image.open(io.BytesIO(data)).format == image_format  # Pillow itself would read it
    with pytest.raises(ImageDecodeError, match=f"send a {SUPPORTED} file"):
        decode_image(data, max_pixels=MAX_PIXELS)


def test_exif_rotation_is_read_from_the_header():
    exif = Image.Exif()
    exif[0x0112] = 8
    info = probe_image(encode(Image.new("RGB", (40, 20)), "JPEG", exif=exif), max_pixels=MAX_PIXELS)
    assert (info.format, info.size, info.upright_size) == ("JPEG", (40, 20), (20, 40))
