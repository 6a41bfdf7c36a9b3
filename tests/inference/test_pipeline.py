"""The cut-out: agreement with the official masks, quality mode, clean edges, options, odd sizes."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from clearbg_app.inference import CutoutOptions, DecodedImage, cut_out, decode_image, remove_background
from clearbg_app.inference.pipeline import _context_pass, most_confident
from clearbg_app.inference.quality import as_unit, green_bleed, iou, on_green
from tests.inference.conftest import BIG_LIMIT, SAMPLE_IMAGES, reference_mask, subject_image


def decoded_sample(path):
    return decode_image(path.read_bytes(), max_pixels=BIG_LIMIT)


def plain(image: Image.Image, alpha: Image.Image | None = None) -> DecodedImage:
    return DecodedImage(rgb=image, alpha=alpha, format="PNG")


@pytest.fixture(scope="module")
def default_alphas(model):
    return {path.stem: as_unit(cut_out(decoded_sample(path), model).alpha) for path in SAMPLE_IMAGES}


@pytest.mark.parametrize("path", SAMPLE_IMAGES, ids=lambda p: p.stem)
def test_default_mode_matches_official_u2net_masks(default_alphas, path):
    alpha = default_alphas[path.stem]
    reference = reference_mask("u2net_reference", path, alpha.shape[::-1])
    assert iou(alpha, reference) >= 0.9


def test_quality_mode_stays_with_the_models_own_masks(model):
    """u2net_reference is a regression check, not a quality target (coco_subjects is: test_quality_coco)."""
    scores = []
    for path in SAMPLE_IMAGES:
        alpha = as_unit(cut_out(decoded_sample(path), model, CutoutOptions(quality=True)).alpha)
        scores.append(iou(alpha, reference_mask("u2net_reference", path, alpha.shape[::-1])))
    assert np.mean(scores) >= 0.9 and min(scores) >= 0.8, scores


def test_refined_edges_carry_less_background_colour(model):
    path = next(p for p in SAMPLE_IMAGES if p.stem == "horse")
    photo = decoded_sample(path).rgb
    truth = Image.open(path.parents[1] / "u2net_reference" / "horse.png").convert("L").resize(photo.size)
    screen = on_green(photo, truth)
    refined = cut_out(plain(screen), model)
    unrefined = cut_out(plain(screen), model, CutoutOptions(refine_edges=False))
    band = (as_unit(refined.alpha) > 0.05) & (as_unit(refined.alpha) < 0.95) & (as_unit(truth) > 0.05)
    assert band.sum() > 500
    ours, theirs = green_bleed(refined.rgb, photo, band), green_bleed(unrefined.rgb, photo, band)
    assert ours < theirs / 2, (ours, theirs)


def test_post_process_makes_a_nearly_binary_mask(model):
    image = decoded_sample(next(p for p in SAMPLE_IMAGES if p.stem == "horse"))
    def soft_share(options):
        alpha = np.asarray(cut_out(image, model, options).alpha)
        return ((alpha > 10) & (alpha < 245)).mean()
    post = soft_share(CutoutOptions(post_process=True))
    assert post < soft_share(CutoutOptions(tidy=False)) * 0.8  # against the model's own soft band
    assert post < soft_share(CutoutOptions()) * 0.9  # the default's band is already steeper (tidy_mask)


def test_region_of_interest_limits_the_subject(model):
    image = subject_image((300, 200))
    cutout = cut_out(plain(image), model, CutoutOptions(roi=(0, 0, 150, 200)))
    alpha = np.asarray(cutout.alpha)
    assert alpha[:, 150:].max() == 0 and alpha[:, :150].max() == 255
    empty = cut_out(plain(image), model, CutoutOptions(roi=(400, 400, 500, 500)))
    assert empty.alpha.getbbox() is None


def test_preview_size_and_public_rgba_result(model):
    image = plain(subject_image((400, 300)))
    result = remove_background(image, model, max_pixels=30_000)
    assert result.mode == "RGBA" and result.width * result.height <= 30_000
    full = remove_background(image, model)
    assert full.size == (400, 300) and full.getpixel((200, 150))[3] == 255 and full.getpixel((2, 2))[3] == 0
    assert image.rgb.getpixel((0, 0)) == (30, 160, 60)  # the caller's image is not modified


def test_only_mask_of_the_source_alpha_is_respected(model):
    image = subject_image()
    transparent = Image.new("L", image.size, 0)
    assert cut_out(plain(image, transparent), model).alpha.getbbox() is None


@pytest.mark.parametrize("quality", [False, True], ids=["default", "quality"])
@pytest.mark.parametrize("size, colour", [((1, 1), (200, 10, 10)), ((20_000, 50), (90, 90, 200)), ((300, 200), (255, 255, 255)), ((7, 3_000), (0, 0, 0))])
def test_odd_images_give_a_full_size_result(model, size, colour, quality):
    cutout = cut_out(plain(Image.new("RGB", size, colour)), model, CutoutOptions(quality=quality))
    assert cutout.alpha.size == size and cutout.rgb.size == size


def test_most_confident_takes_the_surest_pass_per_pixel():
    masks = [np.array([[0.5, 0.9, 0.2]], np.float32), np.array([[0.3, 0.6, 0.45]], np.float32), np.array([[0.55, 0.05, 0.5]], np.float32)]
    np.testing.assert_allclose(most_confident(masks), [[0.3, 0.05, 0.2]])


def test_context_pass_lands_on_the_photos_own_frame(model):
    """The padded pass, mapped back, covers the subject where the plain pass does (not shifted or scaled)."""
    image = subject_image((400, 300))
    plain_mask = model.predict(image)
    context = _context_pass(image, model)
    assert context.shape == plain_mask.shape
    assert iou(context, plain_mask) > 0.85


def test_panorama_finds_its_subject(model):
    image = Image.new("RGB", (20_000, 50), (30, 160, 60))
    image.paste(subject_image((400, 50), background=(30, 160, 60)), (9_800, 0))
    alpha = np.asarray(cut_out(plain(image), model).alpha)
    assert alpha[:, :9_000].max() < 128 and alpha[:, 9_900:10_100].max() > 128
