"""Composition and encoding of a cut-out: format, crop, canvas placement, background."""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass

from PIL import Image, ImageFilter, ImageOps

from clearbg_app.inference.errors import InferenceError
from clearbg_app.inference.pipeline import Box, Cutout
from clearbg_app.inference.png import encode_png

FORMATS = ("png", "webp", "jpeg", "zip", "mask")
MEDIA_TYPES = {
    "png": "image/png",
    "webp": "image/webp",
    "jpeg": "image/jpeg",
    "zip": "application/zip",
    "mask": "image/png",
}
EXTENSIONS = {"png": "png", "webp": "webp", "jpeg": "jpg", "zip": "zip", "mask": "png"}
Colour = tuple[int, int, int]
Margin = tuple[float, int]  # a fraction of the subject's extent on that axis, plus pixels
WHITE: Colour = (255, 255, 255)
BLACK: Colour = (0, 0, 0)
MAX_BLUR = 0.1  # blur radii and shadow offsets are fractions of the result's longer side, at most this
MAX_SHADOW_OFFSET = 0.2


@dataclass(frozen=True)
class Shadow:
    """A soft drop shadow under the subject: the alpha, moved by `offset`, blurred and dimmed.
    Lengths are fractions of the result's longer side, so a preview and the full size look alike."""

    opacity: float = 0.5  # 0 to 1
    blur: float = 0.02  # the Gaussian radius
    offset: tuple[float, float] = (0.01, 0.02)  # right and down

    def __post_init__(self) -> None:
        if not 0 <= self.opacity <= 1 or not 0 <= self.blur <= MAX_BLUR:
            raise InferenceError(f"The shadow's opacity must be 0 to 1 and its blur 0 to {MAX_BLUR}.")
        if len(self.offset) != 2 or any(abs(value) > MAX_SHADOW_OFFSET for value in self.offset):
            raise InferenceError(f"The shadow's offset must be two fractions from -{MAX_SHADOW_OFFSET} to {MAX_SHADOW_OFFSET}.")


DEFAULT_SHADOW = Shadow()  # what remove.bg's add_shadow=true gives


@dataclass(frozen=True)
class RenderOptions:
    """What the result file looks like. Defaults: a transparent PNG the size of the input."""

    format: str = "png"  # png, webp, jpeg (on a background), zip (color.jpg + alpha.png), mask
    background: Colour | None = None  # fill behind the subject; jpeg uses white when unset
    background_opacity: int = 255  # of `background` (png, webp); jpeg is always opaque
    background_image: Image.Image | None = None  # behind the subject, scaled as `background_fit` says
    background_fit: str = "fill"  # fill: cover the output (cropped); fit: all of it, letterboxed in `background` or white
    background_blur: float = 0.0  # > 0: the original photo, blurred by this radius (a fraction of the longer side)
    shadow: Shadow | None = None  # a soft drop shadow under the subject (png, webp, jpeg)
    crop: bool = False  # crop to the subject's bounding box
    margin: float = 0.0  # with crop: extra space around the subject, as a fraction of its larger side
    side_margins: tuple[Margin, Margin, Margin, Margin] | None = None  # with crop: top, right, bottom, left
    canvas: tuple[int, int] | None = None  # output size; the subject is scaled to fit and placed in it
    subject_scale: float | None = 1.0  # with canvas: the share of the canvas the subject may fill; None: keep its size
    position: tuple[float, float] = (0.5, 0.5)  # with canvas: the subject's centre, as canvas fractions
    png_compress_level: int = 1  # zlib level: fast; 6 gives files ~10% smaller for ~2x the time
    quality: int = 90  # jpeg and webp

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise InferenceError(f"Unknown output format {self.format!r}; use one of {', '.join(FORMATS)}.")
        if self.canvas and min(self.canvas) < 1:
            raise InferenceError("The canvas must be at least 1x1 pixels.")
        if (self.subject_scale is not None and not 0 < self.subject_scale <= 1) or self.margin < 0:
            raise InferenceError("The subject scale must be in (0, 1] and the margin not negative.")
        if not 0 <= self.background_opacity <= 255:
            raise InferenceError("The background opacity must be 0 to 255.")
        if self.background_fit not in ("fill", "fit"):
            raise InferenceError("The background photo is scaled to fill or to fit.")
        if not 0 <= self.background_blur <= MAX_BLUR:
            raise InferenceError(f"The background blur must be 0 to {MAX_BLUR}.")
        if self.background_blur and (self.background is not None or self.background_image is not None):
            raise InferenceError("Blur the original or fill with a colour or an image, not both.")
        if self.side_margins and (len(self.side_margins) != 4 or any(min(side) < 0 for side in self.side_margins)):
            raise InferenceError("Side margins are four (fraction, pixels) pairs, none negative.")


@dataclass(frozen=True)
class Rendered:
    content: bytes
    media_type: str
    extension: str
    size: tuple[int, int]
    foreground: Box | None = None  # the subject's bounding box in the result; None when nothing is opaque


def subject_box(alpha: Image.Image, margin: float, side_margins: tuple[Margin, ...] | None = None) -> Box:
    """The subject's bounding box grown by `margin` (a fraction of its larger side) or by
    `side_margins` (top, right, bottom, left), clamped; the whole image when it is empty."""
    box = alpha.getbbox()
    if box is None:
        return (0, 0, *alpha.size)
    width, height = box[2] - box[0], box[3] - box[1]
    if side_margins:
        top, right, bottom, left = (
            round(fraction * extent) + pixels
            for (fraction, pixels), extent in zip(side_margins, (height, width, height, width), strict=True)
        )
    else:
        top = right = bottom = left = round(margin * max(width, height))
    return (max(0, box[0] - left), max(0, box[1] - top), min(alpha.width, box[2] + right), min(alpha.height, box[3] + bottom))


def _region(image: Image.Image, box: Box) -> Image.Image:
    return image if box == (0, 0, *image.size) else image.crop(box)


def _place(rgb: Image.Image, alpha: Image.Image, canvas: tuple[int, int], options: RenderOptions) -> tuple[Image.Image, Image.Image]:
    """The subject scaled to fit the canvas (times `subject_scale`) and centred at `position`."""
    canvas_w, canvas_h = canvas
    if options.subject_scale is None:
        factor = 1.0
    else:
        factor = min(canvas_w / rgb.width, canvas_h / rgb.height) * options.subject_scale
    size = (max(1, round(rgb.width * factor)), max(1, round(rgb.height * factor)))
    if size != rgb.size:
        rgb = rgb.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
        alpha = alpha.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
    corner = (round(options.position[0] * canvas_w - size[0] / 2), round(options.position[1] * canvas_h - size[1] / 2))
    canvas_rgb, canvas_alpha = Image.new("RGB", canvas), Image.new("L", canvas, 0)
    canvas_rgb.paste(rgb, corner)
    canvas_alpha.paste(alpha, corner)
    return canvas_rgb, canvas_alpha


def _radius(fraction: float, size: tuple[int, int]) -> float:
    return fraction * max(size)


def _backdrop(options: RenderOptions, size: tuple[int, int], original: Image.Image | None) -> Image.Image | None:
    """What goes behind the subject, opaque: the blurred original, a photo, a colour; None: nothing."""
    if options.background_blur:
        if original is None:
            raise ValueError("a blurred background needs the original photo (render it with original=...)")
        source = ImageOps.fit(original.convert("RGB"), size, Image.Resampling.LANCZOS) if original.size != size else original.convert("RGB")
        return source.filter(ImageFilter.GaussianBlur(_radius(options.background_blur, size)))
    if options.background_image is not None:
        photo = options.background_image.convert("RGB")
        if options.background_fit == "fill":
            return ImageOps.fit(photo, size, Image.Resampling.LANCZOS)
        return ImageOps.pad(photo, size, Image.Resampling.LANCZOS, color=options.background or WHITE)
    colour = options.background or (WHITE if options.format == "jpeg" else None)
    return Image.new("RGB", size, colour) if colour else None


def _shadow_mask(alpha: Image.Image, shadow: Shadow) -> Image.Image:
    """The shadow's opacity per pixel: the subject's alpha moved, blurred and scaled by the opacity."""
    moved = Image.new("L", alpha.size, 0)
    dx, dy = (round(_radius(value, alpha.size)) for value in shadow.offset)
    moved.paste(alpha, (dx, dy))
    if shadow.blur:
        moved = moved.filter(ImageFilter.GaussianBlur(_radius(shadow.blur, alpha.size)))
    return moved.point([round(value * shadow.opacity) for value in range(256)])


def _composite(rgb: Image.Image, alpha: Image.Image, options: RenderOptions, original: Image.Image | None) -> bytes:
    """The subject over its shadow over its backdrop, encoded as png, webp or jpeg."""
    image_format = {"png": "PNG", "webp": "WEBP", "jpeg": "JPEG"}[options.format]
    backdrop = _backdrop(options, rgb.size, original)
    shadow = _shadow_mask(alpha, options.shadow) if options.shadow and options.shadow.opacity else None
    if backdrop is not None and (options.background_opacity == 255 or image_format == "JPEG"):
        if shadow is not None:
            backdrop.paste(BLACK, None, shadow)
        backdrop.paste(rgb, (0, 0), alpha)
        return _encode(backdrop, image_format, options)
    if backdrop is None and shadow is None:
        return _encode(rgb, image_format, options, alpha)
    base = Image.new("RGBA", rgb.size, (0, 0, 0, 0))
    if backdrop is not None:
        backdrop.putalpha(options.background_opacity)
        base = backdrop
    if shadow is not None:
        layer = Image.new("RGBA", rgb.size, (*BLACK, 0))
        layer.putalpha(shadow)
        base = Image.alpha_composite(base, layer)
    foreground = rgb.convert("RGBA")
    foreground.putalpha(alpha)
    composed = Image.alpha_composite(base, foreground)
    return _encode(composed.convert("RGB"), image_format, options, composed.getchannel("A"))


def _encode(image: Image.Image, image_format: str, options: RenderOptions, alpha: Image.Image | None = None) -> bytes:
    """PNG through the parallel writer (with `alpha` as its alpha channel); others through Pillow."""
    if image_format == "PNG":
        return encode_png(image, alpha, level=options.png_compress_level)
    if alpha is not None:
        image = image.convert("RGBA")
        image.putalpha(alpha)
    buffer = io.BytesIO()
    image.save(buffer, image_format, quality=options.quality)
    return buffer.getvalue()


def _zip(rgb: Image.Image, alpha: Image.Image, options: RenderOptions) -> bytes:
    """remove.bg's ZIP: the foreground colours as JPEG and the mask as PNG."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("color.jpg", _encode(rgb, "JPEG", options))
        archive.writestr("alpha.png", _encode(alpha, "PNG", options))
    return buffer.getvalue()


def render(cutout: Cutout, options: RenderOptions = RenderOptions(), *, original: Image.Image | None = None) -> Rendered:
    """Encode `cutout` as `options` say, touching full-size pixels once per step. `original` (the
    photo as it was, any size with the cut-out's aspect) is needed for a blurred-original background."""
    if options.background_blur and original is None:
        raise InferenceError("A blurred background needs the original photo.")
    box = subject_box(cutout.alpha, options.margin, options.side_margins) if options.crop else (0, 0, *cutout.alpha.size)
    rgb, alpha = _region(cutout.rgb, box), _region(cutout.alpha, box)
    if original is not None and options.background_blur:
        if original.size != cutout.alpha.size:
            original = original.resize(cutout.alpha.size, Image.Resampling.BILINEAR)
        original = _region(original, box)
    if options.canvas:
        rgb, alpha = _place(rgb, alpha, options.canvas, options)
    if options.format == "mask":
        content = _encode(alpha, "PNG", options)
    elif options.format == "zip":
        content = _zip(rgb, alpha, options)
    else:
        content = _composite(rgb, alpha, options, original)
    return Rendered(content, MEDIA_TYPES[options.format], EXTENSIONS[options.format], alpha.size, alpha.getbbox())
