"""Turn uploaded bytes into an upright sRGB image plus its own alpha, refusing bad input early.

The pixel limit is checked from the header, before any pixel is decoded. Each step keeps at
most the decoded image and one converted copy alive.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from clearbg_app.inference.errors import ImageDecodeError, ImageTooLarge

try:  # HEIC/HEIF through the maintained libheif plugin; AVIF is built into Pillow
    import pillow_heif

    pillow_heif.register_heif_opener()
    SUPPORTED = "JPEG, PNG, WebP, GIF, BMP, TIFF, HEIC or AVIF"
except ImportError:  # pragma: no cover - the plugin is in requirements.txt
    SUPPORTED = "JPEG, PNG, WebP, GIF, BMP, TIFF or AVIF"

HIGH_DEPTH_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")
ALPHA_MODES = ("RGBA", "LA", "PA", "La", "RGBa")
_SRGB = ImageCms.createProfile("sRGB")

# `_open` enforces the configured pixel limit itself, before decoding, with a message that gives
# the image's size; Pillow's own global guard would refuse earlier with a vaguer one.
Image.MAX_IMAGE_PIXELS = None


@dataclass(frozen=True)
class DecodedImage:
    rgb: Image.Image  # mode "RGB", sRGB, EXIF orientation applied
    alpha: Image.Image | None  # mode "L" when the source had transparency
    format: str  # Pillow's format name, e.g. "JPEG"

    @property
    def size(self) -> tuple[int, int]:
        return self.rgb.size


def _open(data: bytes, max_pixels: int, max_bytes: int | None = None) -> Image.Image:
    """Open lazily and check the size and pixel count before any pixel is decoded."""
    if not data:
        raise ImageDecodeError("The file is empty.")
    if max_bytes and len(data) > max_bytes:
        raise ImageTooLarge(f"The file is {len(data) / 1e6:.1f} MB; the limit is {max_bytes / 1e6:g} MB.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError:
        raise ImageTooLarge(_too_large_message(None, max_pixels)) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError):
        raise ImageDecodeError(f"This file is not an image we can read; send a {SUPPORTED} file.") from None
    width, height = image.size
    if width < 1 or height < 1:
        raise ImageDecodeError("The image has no pixels.")
    if width * height > max_pixels:
        raise ImageTooLarge(_too_large_message((width, height), max_pixels))
    return image


def _too_large_message(size: tuple[int, int], max_pixels: int) -> str:
    width, height = size
    return (
        f"The image is {width}x{height} pixels ({width * height / 1e6:.1f} megapixels);"
        f" the limit is {max_pixels / 1e6:g} megapixels."
    )


def probe_image(data: bytes, *, max_pixels: int, max_bytes: int | None = None) -> tuple[str, tuple[int, int]]:
    """Format and size from the header alone; raises like `decode_image`."""
    image = _open(data, max_pixels, max_bytes)
    return image.format or "", image.size


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
        return ImageCms.profileToProfile(image, profile, _SRGB, outputMode=output_mode)
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return image


def _split_alpha(image: Image.Image) -> tuple[Image.Image, Image.Image | None]:
    """RGB pixels and, when the source has transparency, its alpha."""
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif image.mode in HIGH_DEPTH_MODES:
        image = _to_8bit(image)
    elif image.mode in ("1", "L", "RGB") and "transparency" in image.info:
        image = image.convert("RGBA")
    try:
        if image.mode in ALPHA_MODES:
            return image.convert("RGB"), image.getchannel("A")
        return (image if image.mode == "RGB" else image.convert("RGB")), None
    except ValueError:
        raise ImageDecodeError(f"Images in colour mode {image.mode} are not supported; send an RGB image.") from None


def decode_image(data: bytes, *, max_pixels: int, max_bytes: int | None = None) -> DecodedImage:
    """Decode `data` (first frame or page), apply EXIF orientation and ICC profile, convert to RGB."""
    image = _open(data, max_pixels, max_bytes)
    image_format = image.format or ""
    try:
        image.seek(0)
        image.load()
    except (OSError, ValueError, SyntaxError, EOFError) as error:
        if "truncated" in str(error):
            raise ImageDecodeError("The image file is truncated; upload the complete file.") from None
        raise ImageDecodeError("The image file is damaged and cannot be decoded.") from None
    try:
        ImageOps.exif_transpose(image, in_place=True)
    except Exception:  # noqa: BLE001 - a corrupt EXIF block must not lose the image
        pass
    rgb, alpha = _split_alpha(_to_srgb(image))
    return DecodedImage(rgb=rgb, alpha=alpha, format=image_format)
