"""From decoded image to cut-out: the model's mask, refined to full resolution with clean edges."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageChops, ImageFilter

from clearbg_app.inference import matting, refine
from clearbg_app.inference.decode import DecodedImage
from clearbg_app.inference.model import REDUCING_GAP, SegmentationModel

Box = tuple[int, int, int, int]  # left, top, right, bottom in pixels


@dataclass(frozen=True)
class CutoutOptions:
    """How to compute the mask. The defaults are ClearBG's standard mode."""

    quality: bool = False  # quality mode: several passes combined per pixel
    tidy: bool = True  # drop small islands and steepen the soft band (wins on both halves of coco_subjects)
    refine_edges: bool = True  # guided-filter upsampling and colour decontamination; False: plain bilinear
    post_process: bool = False  # a clean, nearly binary mask (specks removed, steep edges)
    alpha_matting: bool = False  # re-estimate the border's alpha from its colours (hair, fur); slow
    roi: Box | None = None  # only look for the subject inside this box


@dataclass
class Cutout:
    """Full-resolution foreground colours and alpha, ready for `render`."""

    rgb: Image.Image  # mode "RGB"; semi-transparent pixels carry decontaminated colours
    alpha: Image.Image  # mode "L"


def fit_within(size: tuple[int, int], max_pixels: int | None) -> tuple[int, int]:
    """`size` scaled down (aspect kept) so it has at most `max_pixels` pixels."""
    width, height = size
    if not max_pixels or width * height <= max_pixels:
        return size
    factor = math.sqrt(max_pixels / (width * height))
    new_width = max(1, min(int(width * factor), max_pixels))
    new_height = max(1, min(int(height * factor), max_pixels // new_width))
    return new_width, new_height


CONTEXT_MARGIN = 8  # the context pass pads each side by 1/8 of the photo (a 1.25x canvas)


def _context_pass(rgb: Image.Image, model: SegmentationModel) -> np.ndarray:
    """The model's mask for the photo centred on a 1.25x canvas of its own edge pixels, mapped back to
    the photo's square frame at the model's side: the subject seen smaller and with room around it."""
    limit = 2 * model.side  # pad a small copy: the model sees model.side pixels anyway
    factor = min(1.0, limit / max(rgb.size))
    size = (max(1, round(rgb.width * factor)), max(1, round(rgb.height * factor)))
    small = rgb if size == rgb.size else rgb.resize(size, Image.Resampling.LANCZOS, reducing_gap=REDUCING_GAP)
    pixels = np.asarray(small)
    height, width = pixels.shape[:2]
    pad_y, pad_x = height // CONTEXT_MARGIN, width // CONTEXT_MARGIN
    canvas = Image.fromarray(np.pad(pixels, ((pad_y, pad_y), (pad_x, pad_x), (0, 0)), mode="edge"))
    mask = Image.fromarray(model.run(model.prepare(canvas)), mode="F").resize(canvas.size, Image.Resampling.BILINEAR)
    frame = mask.crop((pad_x, pad_y, pad_x + width, pad_y + height)).resize((model.side, model.side), Image.Resampling.BILINEAR)
    return np.asarray(frame, dtype=np.float32)


def most_confident(masks: list[np.ndarray]) -> np.ndarray:
    """Per pixel, the value of the mask that is surest (farthest from 0.5)."""
    stack = np.stack(masks)
    choice = np.abs(stack - 0.5).argmax(axis=0)
    return np.take_along_axis(stack, choice[np.newaxis], axis=0)[0]


def predict_mask(rgb: Image.Image, model: SegmentationModel, *, quality: bool = False) -> np.ndarray:
    """The model's mask at its side; with `quality`, three passes (the photo, its mirror image and the
    context pass) fused per pixel by the surest one.

    Measured on coco_subjects (bench/README.md): this fusion beats the single pass on both halves; the
    mirror average (quality mode's rule before), mirror max or min, means and medians were worse."""
    tensor = model.prepare(rgb)
    mask = model.run(tensor)
    if quality:
        mirrored = model.run(np.ascontiguousarray(tensor[..., ::-1]))[:, ::-1]
        mask = most_confident([mask, mirrored, _context_pass(rgb, model)])
    return mask


ISLAND_FRACTION = 0.05  # foreground pieces smaller than this share of the largest one are dropped
BAND_CONTRAST = 2.0  # slope of the soft band around 0.5 (1 = the model's own)


def tidy_mask(mask: np.ndarray) -> np.ndarray:
    """The model's mask with small disconnected islands removed and the soft band steepened around 0.5.

    Measured on coco_subjects (bench/quality.py, bench/README.md): each step is no worse than the bare
    model on both halves in IoU and MAE; holes filling and other contrasts or thresholds were not."""
    from scipy import ndimage

    labels, count = ndimage.label(mask > 0.5)
    if count > 1:
        areas = np.bincount(labels.ravel())[1:]
        small = np.concatenate([[False], areas < ISLAND_FRACTION * areas.max()])
        mask = np.where(small[labels], 0.0, mask).astype(np.float32)
    return np.clip((mask - 0.5) * BAND_CONTRAST + 0.5, 0, 1).astype(np.float32)


def clean_mask(mask: np.ndarray) -> np.ndarray:
    """Post-processing: a morphological opening removes specks, a steep ramp hardens the edge."""
    image = Image.fromarray((mask * 255).astype(np.uint8), mode="L")
    opened = image.filter(ImageFilter.MinFilter(3)).filter(ImageFilter.MaxFilter(3))
    values = np.asarray(opened, dtype=np.float32) / 255
    return np.clip((values - 0.5) * 4 + 0.5, 0, 1)


def _plain_alpha(mask: np.ndarray, size: tuple[int, int]) -> Image.Image:
    """The mask resized to the image without looking at the image (what rembg does)."""
    alpha = Image.fromarray((mask * 255 + 0.5).astype(np.uint8), mode="L")
    return alpha.resize(size, Image.Resampling.BILINEAR)


def _mask_to_alpha(rgb: Image.Image, mask: np.ndarray, options: CutoutOptions) -> Image.Image:
    """Full-resolution alpha; with edge refinement, also decontaminates `rgb` in place. Matting
    reads the colours as they were, before decontamination."""
    original = rgb.copy() if options.alpha_matting and options.refine_edges else rgb
    if options.refine_edges:
        guide = refine.guide_image(rgb)
        plan = refine.prepare_refinement(guide, refine.to_guide(mask, guide), rgb.size)
        alpha = refine.apply_refinement(rgb, plan)
    else:
        alpha = _plain_alpha(mask, rgb.size)
    return matting.matte(original, alpha) if options.alpha_matting else alpha


def _clamp_box(box: Box, size: tuple[int, int]) -> Box | None:
    left, top = max(0, int(box[0])), max(0, int(box[1]))
    right, bottom = min(size[0], int(box[2])), min(size[1], int(box[3]))
    return (left, top, right, bottom) if right > left and bottom > top else None


def cut_out(
    image: DecodedImage,
    model: SegmentationModel,
    options: CutoutOptions = CutoutOptions(),
    *,
    max_pixels: int | None = None,
    consume: bool = False,
    timings: dict[str, float] | None = None,
) -> Cutout:
    """Mask and foreground colours at the image's size (or scaled down to `max_pixels`).

    With `consume`, the decoded image's pixels are corrected in place instead of copied
    (the pool does this: it owns the image and keeps memory to one copy). Stage durations
    in seconds are added to `timings` under "inference" and "refine".
    """
    clock = time.perf_counter()
    out_size = fit_within(image.size, max_pixels)
    rgb = image.rgb
    if out_size != image.size:
        rgb = rgb.resize(out_size, Image.Resampling.LANCZOS, reducing_gap=REDUCING_GAP)
    elif not consume and options.refine_edges:
        rgb = rgb.copy()
    roi = _clamp_box(options.roi, out_size) if options.roi else None
    if options.roi and roi is None:  # nothing to look at: all background
        if timings is not None:
            timings.update(inference=0.0, refine=time.perf_counter() - clock)
        return Cutout(rgb, Image.new("L", out_size, 0))
    region = rgb.crop(roi) if roi else rgb
    mask = predict_mask(region, model, quality=options.quality)
    if timings is not None:
        timings["inference"] = time.perf_counter() - clock
        clock = time.perf_counter()
    if options.tidy:
        mask = tidy_mask(mask)
    if options.post_process:
        mask = clean_mask(mask)
    alpha = _mask_to_alpha(region, mask, options)
    if roi:
        rgb.paste(region, roi[:2])
        full_alpha = Image.new("L", out_size, 0)
        full_alpha.paste(alpha, roi[:2])
        alpha = full_alpha
    if image.alpha is not None:
        source_alpha = image.alpha if out_size == image.size else image.alpha.resize(out_size)
        alpha = ImageChops.multiply(alpha, source_alpha)
    if timings is not None:
        timings["refine"] = time.perf_counter() - clock
    return Cutout(rgb, alpha)


def remove_background(
    image: DecodedImage,
    model: SegmentationModel,
    *,
    max_pixels: int | None = None,
    options: CutoutOptions = CutoutOptions(),
) -> Image.Image:
    """An RGBA cut-out, the input's size or scaled down to `max_pixels`."""
    cutout = cut_out(image, model, options, max_pixels=max_pixels)
    result = cutout.rgb.convert("RGBA")
    result.putalpha(cutout.alpha)
    return result
