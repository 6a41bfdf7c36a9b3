"""The editor's changes to a cut-out, framework-free: erase/restore brush strokes applied to the mask at
any resolution, kept as the image's edits beside the model's own results (so reset and reload work),
an uploaded background photo, and the edited result rendered by the same `render()` the API uses.

Strokes are in the coordinates of the full-resolution image (the upright original): each is a mode
(`erase` or `restore`), a radius in pixels, a soft edge or not, and the points of its path."""

from __future__ import annotations

import io
import json
import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import PurePath

import numpy as np
from PIL import Image, ImageDraw, ImageFilter
from sqlmodel import Session

from clearbg_app.inference import Cutout, ImageDecodeError, Rendered, RenderOptions, decode_image, probe_image, render
from clearbg_app.inference.errors import InferenceError
from clearbg_app.models import ProcessedImage
from clearbg_app.services.errors import NotFound, ServiceError
from clearbg_app.settings import get_settings
from clearbg_app.storage import BlobNotFound, BlobStore, deleted_on_failure

MODES = ("erase", "restore")
MAX_STROKES = 400
MAX_POINTS_PER_STROKE = 2_000
MAX_POINTS = 40_000  # all strokes together
MIN_RADIUS = 0.5
MAX_RADIUS_SHARE = 0.25  # of the image's longer side
SOFT_SIGMA = 0.25  # a soft edge: a stroke 1 - 3 sigma wide, blurred by this share of the radius (the JS draws the same)
MAX_STROKES_JSON = 2_000_000  # characters of a stroke list as sent


class EditRejected(ServiceError):
    """Stroke data or a background photo we cannot use; nothing was changed."""


class FullResolutionMissing(ServiceError):
    """A full-size edited result was asked for before the full-resolution cut-out was made (and charged)."""


@dataclass(frozen=True)
class Stroke:
    mode: str
    radius: float
    soft: bool
    points: tuple[tuple[float, float], ...]


def _number(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise EditRejected(f"{what} must be a finite number.")
    return float(value)


def parse_strokes(raw: object, size: tuple[int, int]) -> list[Stroke]:
    """Checked strokes for an image of `size` (its full resolution): a list of at most MAX_STROKES
    objects `{"mode", "radius", "soft", "points": [[x, y], ...]}`; points outside the image are moved
    to its edge. `EditRejected` names the first problem."""
    if isinstance(raw, str):
        if len(raw) > MAX_STROKES_JSON:
            raise EditRejected("That edit is too large; undo some strokes or reset the edits.")
        try:
            raw = json.loads(raw)
        except (ValueError, RecursionError):
            raise EditRejected("The strokes are not valid JSON.") from None
    if not isinstance(raw, list):
        raise EditRejected("The strokes must be a list.")
    if len(raw) > MAX_STROKES:
        raise EditRejected(f"At most {MAX_STROKES} strokes can be kept; reset the edits or undo some strokes.")
    width, height = size
    max_radius = max(MIN_RADIUS, MAX_RADIUS_SHARE * max(size))
    strokes, total = [], 0
    for index, item in enumerate(raw, start=1):
        what = f"Stroke {index}"
        if not isinstance(item, dict):
            raise EditRejected(f"{what} must be an object with mode, radius, soft and points.")
        mode = item.get("mode")
        if mode not in MODES:
            raise EditRejected(f"{what}: mode must be erase or restore.")
        radius = _number(item.get("radius"), f"{what}: radius")
        if not MIN_RADIUS <= radius <= max_radius:
            raise EditRejected(f"{what}: radius must be {MIN_RADIUS:g} to {max_radius:g} pixels.")
        soft = item.get("soft", False)
        if not isinstance(soft, bool):
            raise EditRejected(f"{what}: soft must be true or false.")
        points = item.get("points")
        if not isinstance(points, list) or not points:
            raise EditRejected(f"{what}: points must be a non-empty list of [x, y] pairs.")
        if len(points) > MAX_POINTS_PER_STROKE or (total := total + len(points)) > MAX_POINTS:
            raise EditRejected(f"Strokes may have at most {MAX_POINTS_PER_STROKE} points each and {MAX_POINTS} in all.")
        clamped = []
        for point in points:
            if not isinstance(point, list | tuple) or len(point) != 2:
                raise EditRejected(f"{what}: each point must be an [x, y] pair.")
            x, y = (_number(value, f"{what}: a coordinate") for value in point)
            clamped.append((min(max(x, 0.0), float(width)), min(max(y, 0.0), float(height))))
        strokes.append(Stroke(mode, radius, soft, tuple(clamped)))
    return strokes


def stroke_mask(stroke: Stroke, size: tuple[int, int], scale: float) -> tuple[np.ndarray, tuple[int, int, int, int]] | None:
    """The stroke's coverage (0..1 floats) at `scale` times the source coordinates, cut to the box it
    touches in an image of `size`; None when it touches nothing."""
    radius = max(stroke.radius * scale, 0.5)
    blur = SOFT_SIGMA * radius if stroke.soft else 0.0
    reach = radius + 3 * blur + 2
    radius -= blur  # soft: solid to 3/4 of the radius, fading out around it
    xs = [x * scale for x, _ in stroke.points]
    ys = [y * scale for _, y in stroke.points]
    box = (
        max(0, math.floor(min(xs) - reach)), max(0, math.floor(min(ys) - reach)),
        min(size[0], math.ceil(max(xs) + reach)), min(size[1], math.ceil(max(ys) + reach)),
    )  # fmt: skip
    if box[2] <= box[0] or box[3] <= box[1]:
        return None
    canvas = Image.new("L", (box[2] - box[0], box[3] - box[1]), 0)
    draw = ImageDraw.Draw(canvas)
    path = [(x - box[0], y - box[1]) for x, y in zip(xs, ys, strict=True)]
    if len(path) > 1:
        draw.line(path, fill=255, width=max(1, round(2 * radius)), joint="curve")
    for x, y in path:  # round caps and joins
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=255)
    if blur:
        canvas = canvas.filter(ImageFilter.GaussianBlur(blur))
    return np.asarray(canvas, dtype=np.float32) / 255, box


def apply_strokes(cutout: Cutout, strokes: list[Stroke], *, source_size: tuple[int, int], original: Image.Image | None) -> Cutout:
    """`cutout` (any size with the source's aspect) with the strokes applied in order: erase lowers
    the alpha under the brush, restore raises it and brings back the original's colours (`original`,
    the cut-out's size, needed when a stroke restores)."""
    if not strokes:
        return cutout
    scale = cutout.alpha.width / source_size[0]
    alpha, rgb = cutout.alpha.copy(), cutout.rgb.copy()
    for stroke in strokes:  # only the box each stroke touches is converted and written back
        covered = stroke_mask(stroke, cutout.alpha.size, scale)
        if covered is None:
            continue
        mask, box = covered
        region = np.asarray(alpha.crop(box), dtype=np.float32)
        if stroke.mode == "erase":
            region *= 1 - mask
        else:
            region += (255 - region) * mask
            if original is not None:
                colours = np.asarray(rgb.crop(box), dtype=np.float32)
                colours += (np.asarray(original.crop(box), dtype=np.float32) - colours) * mask[..., None]
                rgb.paste(Image.fromarray(np.clip(colours + 0.5, 0, 255).astype(np.uint8), mode="RGB"), box[:2])
        alpha.paste(Image.fromarray(np.clip(region + 0.5, 0, 255).astype(np.uint8), mode="L"), box[:2])
    return Cutout(rgb, alpha)


def full_size(store: BlobStore, image: ProcessedImage) -> tuple[int, int]:
    """The upright size of the original: the coordinate space of the strokes."""
    return probe_image(_blob(store, image.original_key), max_pixels=get_settings().max_pixels).upright_size


def strokes_of(image: ProcessedImage) -> list[Stroke]:
    """The image's kept strokes (checked when they were stored)."""
    if not image.edit_strokes:
        return []
    return [Stroke(item["mode"], item["radius"], item["soft"], tuple(map(tuple, item["points"]))) for item in json.loads(image.edit_strokes)]


def strokes_json(image: ProcessedImage) -> list[dict]:
    """The kept strokes as the editor sends them."""
    return [asdict(stroke) | {"points": [list(point) for point in stroke.points]} for stroke in strokes_of(image)]


def set_edits(session: Session, *, store: BlobStore, image: ProcessedImage, strokes: object) -> int:
    """Replace the image's edits by `strokes` (the editor sends its whole list after each stroke,
    undo or redo); returns how many are kept. A bad list changes nothing."""
    if image.result_key is None:
        raise EditRejected("The cut-out is not ready yet.")
    checked = parse_strokes(strokes, full_size(store, image))
    image.edit_strokes = json.dumps([asdict(stroke) for stroke in checked], separators=(",", ":")) if checked else None
    session.add(image)
    session.commit()
    return len(checked)


def reset_edits(session: Session, *, image: ProcessedImage) -> None:
    """Back to the model's own cut-out."""
    image.edit_strokes = None
    session.add(image)
    session.commit()


def set_background_photo(session: Session, *, store: BlobStore, image: ProcessedImage, data: bytes) -> None:
    """Keep `data` as the image's background photo (it expires with the image), replacing any earlier
    one. Not an image, too large or a decompression bomb: `EditRejected`, nothing changed."""
    settings = get_settings()
    if len(data) > settings.max_upload_bytes:
        raise EditRejected(f"The background photo is over the {settings.max_upload_bytes / 1e6:g} MB limit.")
    try:
        info = probe_image(data, max_pixels=settings.max_pixels, max_bytes=settings.max_upload_bytes)
        decode_image(data, max_pixels=settings.max_pixels, max_bytes=settings.max_upload_bytes)
    except ImageDecodeError as error:  # ImageTooLarge is one
        raise EditRejected(f"The background photo: {error}") from None
    previous = image.background_key
    image.background_key = store.put(data, suffix="." + info.format.lower())
    session.add(image)
    with deleted_on_failure(store, [image.background_key], session.rollback):
        session.commit()
    if previous:
        store.delete(previous)


@dataclass(frozen=True)
class EditedRender:
    """What the editor asks for: `render()`'s options (no background image: `photo` uses the kept one)."""

    options: RenderOptions = field(default_factory=RenderOptions)
    photo: bool = False  # the uploaded background photo behind the subject
    full: bool = False  # full resolution (made and charged beforehand), else the preview


def _blob(store: BlobStore, key: str) -> bytes:
    try:
        return store.get(key)
    except BlobNotFound:
        raise NotFound("No such image, or it has expired.") from None


def _decoded_rgb(data: bytes, size: tuple[int, int]) -> Image.Image:
    rgb = decode_image(data, max_pixels=get_settings().max_pixels).rgb
    return rgb if rgb.size == size else rgb.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


def edited_cutout(store: BlobStore, image: ProcessedImage, *, full: bool, need_original: bool = False) -> tuple[Cutout, Image.Image | None]:
    """The model's cut-out (preview or full size) with the kept strokes applied, and the original at
    that size when restoring strokes or `need_original` ask for it."""
    key = image.full_result_key if full else image.result_key
    if key is None:
        if full:
            raise FullResolutionMissing("Get the full-resolution cut-out first; editing it then costs nothing more.")
        raise NotFound("The cut-out is not ready yet.")
    with Image.open(io.BytesIO(_blob(store, key))) as result:
        result.load()
        rgba = result.convert("RGBA")
    cutout = Cutout(rgba.convert("RGB"), rgba.getchannel("A"))
    strokes = strokes_of(image)
    original = None
    if need_original or any(stroke.mode == "restore" for stroke in strokes):
        original = _decoded_rgb(_blob(store, image.original_key), cutout.alpha.size)
    source = full_size(store, image) if strokes else cutout.alpha.size
    return apply_strokes(cutout, strokes, source_size=source, original=original), original


def render_edited(store: BlobStore, image: ProcessedImage, request: EditedRender) -> Rendered:
    """The edited cut-out rendered as `request` says, by the API's own `render()`."""
    options = request.options
    cutout, original = edited_cutout(store, image, full=request.full, need_original=bool(options.background_blur))
    if request.photo:
        if not image.background_key:
            raise EditRejected("Upload a background photo first.")
        options = replace(options, background_image=_decoded_rgb(_blob(store, image.background_key), cutout.alpha.size))
    try:
        return render(cutout, options, original=original)
    except InferenceError as error:
        raise EditRejected(str(error)) from None


def download_stem(image: ProcessedImage) -> str:
    """The upload's name without its extension, safe for a Content-Disposition header."""
    stem = PurePath(image.original_filename).stem or "image"
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in stem)[:80] or "image"


def download_name(image: ProcessedImage, request: EditedRender, background: str) -> str:
    """`horse-no-bg.png`, `horse-on-white.jpg`, `horse-on-photo-preview.webp`: what the file is."""
    what = "no-bg" if background in ("", "transparent") else f"on-{background}"
    extension = {"jpeg": "jpg"}.get(request.options.format, request.options.format)
    size = "" if request.full or (image.result_width, image.result_height) == (image.width, image.height) else "-preview"
    crop = "-cropped" if request.options.crop else ""
    shadow = "-shadow" if request.options.shadow else ""
    return f"{download_stem(image)}-{what}{shadow}{crop}{size}.{extension}"

