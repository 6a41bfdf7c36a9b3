"""Turn uploaded bytes into an upright sRGB image plus its own alpha, refusing bad input early.

The one entry point for untrusted image bytes (API uploads, base64, URLs, background images, batch
items, web uploads): only the formats ClearBG supports are tried (`FORMATS`, never Pillow's other
plugins), and whatever a decoder raises on a crafted file becomes `ImageDecodeError`. The pixel
limit is checked from the header, before any pixel is decoded. Each step keeps at most the decoded
image and one converted copy alive.
"""

from __future__ import annotations

import io
import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageCms, ImageOps

from clearbg_app.inference.errors import ImageDecodeError, ImageTooLarge

try:  # HEIC/HEIF through the maintained libheif plugin; AVIF is built into Pillow
    import pillow_heif

    pillow_heif.register_heif_opener()
except ImportError:  # pragma: no cover - the plugin is in requirements.txt
    pass

log = logging.getLogger(__name__)
Image.init()
# Pillow's plugin names, and how the formats are called to people. MPO (phones' multi-picture
# JPEG) opens through the JPEG plugin. Every other plugin (EPS runs Ghostscript, DDS, SPIDER, ...)
# is never tried.
FORMAT_NAMES = {"JPEG": "JPEG", "PNG": "PNG", "WEBP": "WebP", "GIF": "GIF", "BMP": "BMP", "TIFF": "TIFF", "HEIF": "HEIC", "AVIF": "AVIF"}
FORMATS = tuple(name for name in FORMAT_NAMES if name in Image.OPEN)
SUPPORTED = ", ".join(FORMAT_NAMES[name] for name in FORMATS[:-1]) + f" or {FORMAT_NAMES[FORMATS[-1]]}"
MEDIA_TYPES = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "WEBP": "image/webp",
    "GIF": "image/gif",
    "BMP": "image/bmp",
    "TIFF": "image/tiff",
    "MPO": "image/jpeg",  # phones' multi-picture JPEG, opened by the JPEG plugin
    "HEIF": "image/heic",
    "AVIF": "image/avif",
}  # every format in FORMATS, as served back
NOT_AN_IMAGE = f"This file is not an image we can read; send a {SUPPORTED} file."
DAMAGED = "The image file is damaged and cannot be decoded."

HIGH_DEPTH_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")
ALPHA_MODES = ("RGBA", "LA", "PA", "La", "RGBa")
EXIF_ORIENTATION = 0x0112
_SRGB = ImageCms.createProfile("sRGB")

# `_open` enforces the configured pixel limit itself, before decoding, with a message that gives
# the image's size; Pillow's own global guard would refuse earlier with a vaguer one.
Image.MAX_IMAGE_PIXELS = None
# Pillow warns about each oddity of a damaged file ("Corrupt EXIF data", "Truncated File Read"):
# the answer to the sender says it, the server log need not. (A filter, not `catch_warnings`,
# which is not thread-safe, and the pool decodes in several threads.)
warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")


@contextmanager
def _untrusted(message: str) -> Iterator[None]:
    """Run decoder code on untrusted bytes: any exception it raises
    (Pillow's plugins raise OSError, ValueError, but also NotImplementedError, RuntimeError,
    TypeError, OverflowError... on crafted headers) becomes `ImageDecodeError(message)`."""
    try:
        yield
    except ImageDecodeError:
        raise
    except Exception as error:  # noqa: BLE001 - the decoder's failure is the file's fault, not ours
        log.debug("decoder refused a file: %s: %s", type(error).__name__, error)
        raise ImageDecodeError("The image file is truncated; upload the complete file." if "truncated" in str(error) else message) from None


@contextmanager
def _tolerated() -> Iterator[None]:
    """Optional metadata (EXIF): any error is ignored; the image stays as stored."""
    with suppress(Exception):
        yield


@dataclass(frozen=True)
class DecodedImage:
    rgb: Image.Image  # mode "RGB", sRGB, EXIF orientation applied
    alpha: Image.Image | None  # mode "L" when the source had transparency
    format: str  # Pillow's format name, e.g. "JPEG"

    @property
    def size(self) -> tuple[int, int]:
        return self.rgb.size


@dataclass(frozen=True)
class ImageInfo:
    """What the header says: the format, the stored size and the size once EXIF orientation is applied."""

    format: str  # one of FORMATS
    size: tuple[int, int]
    upright_size: tuple[int, int]

    @property
    def media_type(self) -> str:
        return MEDIA_TYPES[self.format]


def _open(data: bytes, max_pixels: int, max_bytes: int | None = None) -> Image.Image:
    """Open lazily (supported formats only) and check the size and pixel count before any pixel is decoded."""
    if not data:
        raise ImageDecodeError("The file is empty.")
    if max_bytes and len(data) > max_bytes:
        raise ImageTooLarge(f"The file is {len(data) / 1e6:.1f} MB; the limit is {max_bytes / 1e6:g} MB.")
    with _untrusted(NOT_AN_IMAGE):
        image = Image.open(io.BytesIO(data), formats=FORMATS)
        width, height = image.size
    if width < 1 or height < 1:
        raise ImageDecodeError("The image has no pixels.")
    if width * height > max_pixels:
        raise ImageTooLarge(
            f"The image is {width}x{height} pixels ({width * height / 1e6:.1f} megapixels);"
            f" the limit is {max_pixels / 1e6:g} megapixels."
        )
    return image


def _turned(image: Image.Image) -> bool:
    """Whether the EXIF orientation swaps width and height; a corrupt EXIF block turns nothing."""
    turned = False
    with _tolerated():
        turned = image.getexif().get(EXIF_ORIENTATION) in (5, 6, 7, 8)
    return turned


def probe_image(data: bytes, *, max_pixels: int, max_bytes: int | None = None) -> ImageInfo:
    """Format and sizes from the header alone; raises like `decode_image`."""
    image = _open(data, max_pixels, max_bytes)
    width, height = image.size
    return ImageInfo(image.format or "", (width, height), (height, width) if _turned(image) else (width, height))


def _to_8bit(image: Image.Image) -> Image.Image:
    """Greyscale of any depth ("I;16", "I", "F") scaled into 8 bits, not clipped."""
    values = np.asarray(image, dtype=np.float32)
    peak = 65535.0 if image.mode.startswith("I;16") else float(values.max(initial=0.0))
    scale = 255.0 / peak if peak > 255.0 else 1.0
    return Image.fromarray(np.clip(values * scale + 0.5, 0, 255).astype(np.uint8))


def _to_srgb(image: Image.Image) -> Image.Image:
    """Convert through the embedded ICC profile; an unreadable profile is ignored."""
    icc = image.info.get("icc_profile")
    if not icc or image.mode not in ("RGB", "RGBA", "CMYK", "L", "LA"):
        return image
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        if "sRGB" in (ImageCms.getProfileDescription(profile) or "") and image.mode in ("RGB", "RGBA"):
            return image
        output_mode = "RGBA" if image.mode in ("RGBA", "LA") else "RGB"
        if image.mode == "LA":
            image = image.convert("RGBA")
        converted = ImageCms.profileToProfile(image, profile, _SRGB, outputMode=output_mode)
        return image if converted is None else converted  # None only when converting in place
    except Exception:  # noqa: BLE001 - a crafted profile makes LittleCMS raise anything; the pixels stay
        return image


def _split_alpha(image: Image.Image) -> tuple[Image.Image, Image.Image | None]:
    """RGB pixels and, when the source has transparency, its alpha."""
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif image.mode in HIGH_DEPTH_MODES:
        image = _to_8bit(image)
    elif image.mode in ("1", "L", "RGB") and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ALPHA_MODES:
        return image.convert("RGB"), image.getchannel("A")
    return (image if image.mode == "RGB" else image.convert("RGB")), None


def decode_image(data: bytes, *, max_pixels: int, max_bytes: int | None = None) -> DecodedImage:
    """Decode `data` (first frame or page), apply EXIF orientation and ICC profile, convert to RGB."""
    image = _open(data, max_pixels, max_bytes)
    image_format = image.format or ""
    with _untrusted(DAMAGED):
        image.seek(0)
        image.load()
    with _tolerated():
        ImageOps.exif_transpose(image, in_place=True)
    with _untrusted(f"Images in colour mode {image.mode} are not supported; send an RGB image."):
        rgb, alpha = _split_alpha(_to_srgb(image))
    return DecodedImage(rgb=rgb, alpha=alpha, format=image_format)
