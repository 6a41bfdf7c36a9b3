"""Turn uploaded bytes into an upright RGB image plus its own alpha, refusing bad input early."""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from clearbg_app.inference.errors import ImageDecodeError, ImageTooLarge

SUPPORTED = "JPEG, PNG, WebP, GIF, BMP or TIFF"

# `_open` enforces the configured pixel limit itself, before decoding, with a message that gives
# the image's size; Pillow's own global guard would refuse earlier with a vaguer one.
Image.MAX_IMAGE_PIXELS = None


@dataclass(frozen=True)
class DecodedImage:
    rgb: Image.Image  # mode "RGB", EXIF orientation applied
    alpha: Image.Image | None  # mode "L" when the source had transparency
    format: str  # Pillow's format name, e.g. "JPEG"

    @property
    def size(self) -> tuple[int, int]:
        return self.rgb.size


def _open(data: bytes, max_pixels: int) -> Image.Image:
    """Open lazily and check the pixel count before any pixel is decoded."""
    if not data:
        raise ImageDecodeError("The file is empty.")
    try:
        image = Image.open(io.BytesIO(data))
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
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


def probe_image(data: bytes, *, max_pixels: int) -> tuple[str, tuple[int, int]]:
    """Format and size from the header alone; raises like `decode_image`."""
    image = _open(data, max_pixels)
    return image.format or "", image.size


def _to_8bit(image: Image.Image) -> Image.Image:
    """Greyscale of any depth ("I;16", "I", "F") scaled into 8 bits, not clipped."""
    values = np.asarray(image, dtype=np.float32)
    peak = 65535.0 if image.mode.startswith("I;16") else float(values.max(initial=0.0))
    scale = 255.0 / peak if peak > 255.0 else 1.0
    return Image.fromarray(np.clip(values * scale, 0, 255).astype(np.uint8))


def _split_alpha(image: Image.Image) -> tuple[Image.Image, Image.Image | None]:
    """RGB pixels and, when the source has transparency, its alpha."""
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif image.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        image = _to_8bit(image)
    elif image.mode in ("1", "L") and "transparency" in image.info:
        image = image.convert("LA")
    if image.mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        alpha = image.getchannel("A")
        return image.convert("RGB"), alpha
    return image.convert("RGB"), None


def decode_image(data: bytes, *, max_pixels: int) -> DecodedImage:
    """Decode `data` (first frame of animations), apply EXIF orientation, convert to RGB."""
    image = _open(data, max_pixels)
    image_format = image.format or ""
    try:
        image.seek(0)
        image.load()
    except (OSError, ValueError, SyntaxError, EOFError) as error:
        if "truncated" in str(error):
            raise ImageDecodeError("The image file is truncated; upload the complete file.") from None
        raise ImageDecodeError("The image file is damaged and cannot be decoded.") from None
    try:
        image = ImageOps.exif_transpose(image)
    except Exception:  # noqa: BLE001 - a corrupt EXIF block must not lose the image
        pass
    rgb, alpha = _split_alpha(image)
    return DecodedImage(rgb=rgb, alpha=alpha, format=image_format)
