"""Rendering: every format and composition option, checked by decoding the result."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
from PIL import Image

from clearbg_app.inference import Cutout, InferenceError, RenderOptions, render
from clearbg_app.inference.render import Shadow


@pytest.fixture
def cutout():
    """A 200x100 red image whose subject is the opaque square (50..100, 20..70), with a soft edge column."""
    rgb = Image.new("RGB", (200, 100), (220, 20, 20))
    alpha = Image.new("L", (200, 100), 0)
    alpha.paste(255, (50, 20, 100, 70))
    alpha.paste(128, (100, 20, 101, 70))
    return Cutout(rgb, alpha)


def opened(rendered):
    return Image.open(io.BytesIO(rendered.content))


def test_png_is_rgba_of_the_input_size(cutout):
    rendered = render(cutout)
    image = opened(rendered)
    assert (image.format, image.mode, image.size) == ("PNG", "RGBA", (200, 100))
    assert rendered.media_type == "image/png" and rendered.extension == "png"
    assert image.getpixel((60, 30)) == (220, 20, 20, 255) and image.getpixel((5, 5))[3] == 0
    assert image.getpixel((100, 30))[3] == 128


def test_webp_keeps_alpha(cutout):
    image = opened(render(cutout, RenderOptions(format="webp", quality=100)))
    assert image.format == "WEBP" and image.mode == "RGBA" and image.getpixel((5, 5))[3] == 0


def test_jpeg_sits_on_white_or_the_chosen_colour(cutout):
    white = opened(render(cutout, RenderOptions(format="jpeg")))
    assert white.mode == "RGB" and min(white.getpixel((5, 5))) > 245
    blue = opened(render(cutout, RenderOptions(format="jpeg", background=(0, 0, 255))))
    assert blue.getpixel((5, 5))[2] > 240 and blue.getpixel((60, 30))[0] > 200


def test_zip_holds_colour_jpeg_and_alpha_png(cutout):
    rendered = render(cutout, RenderOptions(format="zip"))
    with zipfile.ZipFile(io.BytesIO(rendered.content)) as archive:
        assert sorted(archive.namelist()) == ["alpha.png", "color.jpg"]
        colour = Image.open(io.BytesIO(archive.read("color.jpg")))
        alpha = Image.open(io.BytesIO(archive.read("alpha.png")))
    assert (colour.format, colour.mode, alpha.mode) == ("JPEG", "RGB", "L")
    assert np.array_equal(np.asarray(alpha), np.asarray(cutout.alpha))


def test_mask_only(cutout):
    mask = opened(render(cutout, RenderOptions(format="mask")))
    assert mask.mode == "L" and np.array_equal(np.asarray(mask), np.asarray(cutout.alpha))


def test_crop_to_subject_with_margin(cutout):
    assert opened(render(cutout, RenderOptions(crop=True))).size == (51, 50)
    with_margin = opened(render(cutout, RenderOptions(crop=True, margin=0.1)))
    assert with_margin.size == (61, 60)


def test_crop_of_an_empty_mask_keeps_the_image(cutout):
    empty = Cutout(cutout.rgb, Image.new("L", cutout.rgb.size, 0))
    assert opened(render(empty, RenderOptions(crop=True))).size == (200, 100)


def test_subject_scaled_and_placed_on_a_canvas(cutout):
    options = RenderOptions(crop=True, canvas=(400, 400), subject_scale=0.5, position=(0.25, 0.75))
    image = opened(render(cutout, options))
    assert image.size == (400, 400)
    left, top, right, bottom = image.getchannel("A").getbbox()
    assert right - left == pytest.approx(200, abs=2)
    assert (left + right) / 2 == pytest.approx(100, abs=2) and (top + bottom) / 2 == pytest.approx(300, abs=2)


def test_background_image_fills_behind(cutout):
    backdrop = Image.new("RGB", (20, 10), (0, 255, 0))
    image = opened(render(cutout, RenderOptions(background_image=backdrop)))
    assert image.mode == "RGB" and image.getpixel((5, 5)) == (0, 255, 0) and image.getpixel((60, 30)) == (220, 20, 20)


@pytest.mark.parametrize("options", [{"format": "gif"}, {"canvas": (0, 5)}, {"subject_scale": 0}, {"margin": -1}])
def test_bad_options_are_refused(options):
    with pytest.raises(InferenceError):
        RenderOptions(**options)


def test_side_margins_mix_fractions_and_pixels(cutout):
    margins = ((0.1, 0), (0.0, 10), (0.0, 0), (0.0, 5))  # top 10% of 50 px, right 10 px, left 5 px
    assert opened(render(cutout, RenderOptions(crop=True, side_margins=margins))).size == (66, 55)


def test_subject_keeps_its_size_when_only_positioned(cutout):
    image = opened(render(cutout, RenderOptions(crop=True, canvas=(200, 100), subject_scale=None, position=(0.5, 0.5))))
    left, top, right, bottom = image.getchannel("A").getbbox()
    assert (right - left, bottom - top) == (51, 50) and (left, top) == (74, 25)


def test_semi_transparent_background_colour(cutout):
    image = opened(render(cutout, RenderOptions(background=(0, 0, 255), background_opacity=119)))
    assert image.mode == "RGBA" and image.getpixel((5, 5)) == (0, 0, 255, 119)
    assert image.getpixel((60, 30)) == (220, 20, 20, 255)


# The editor's backgrounds and effects (issue 16): a blurred original and a soft drop shadow.


@pytest.fixture
def striped():
    """A 200x100 photo of black and white vertical stripes, 4 px wide."""
    pixels = np.zeros((100, 200, 3), dtype=np.uint8)
    pixels[:, (np.arange(200) // 4) % 2 == 0] = 255
    return Image.fromarray(pixels, mode="RGB")


def test_blurred_original_fills_behind_the_subject(cutout, striped):
    sharp = np.asarray(striped.convert("L"), dtype=np.float32)
    image = opened(render(cutout, RenderOptions(format="png", background_blur=0.05), original=striped))
    assert image.mode == "RGB"  # opaque: the photo is behind everything
    background = np.asarray(image.convert("L"), dtype=np.float32)[:, 120:]
    assert sharp[:, 120:].std() > 120 and background.std() < 20  # the stripes are smoothed away
    assert abs(background.mean() - sharp[:, 120:].mean()) < 12  # ...into their average grey
    assert image.getpixel((60, 30)) == (220, 20, 20)  # the subject is untouched


def test_blur_follows_a_crop_and_a_half_size_original(cutout, striped):
    small = striped.resize((100, 50))
    image = opened(render(cutout, RenderOptions(format="jpeg", background_blur=0.05, crop=True, margin=0.2), original=small))
    assert image.size == (71, 70) and image.getpixel((35, 35))[0] > 200  # subject 51x50, 10 px around
    corner = np.asarray(image.convert("L"), dtype=np.float32)[:8, :8]
    assert 100 < corner.mean() < 160 and corner.std() < 20  # the margin shows the blurred stripes


@pytest.mark.parametrize(
    "bad",
    [
        {"background_blur": -0.01},
        {"background_blur": 0.5},
        {"background_blur": 0.05, "background": (0, 0, 0)},
    ],
)
def test_bad_blur_options_are_refused(bad):
    with pytest.raises(InferenceError):
        RenderOptions(**bad)


def test_blur_without_the_original_is_refused(cutout):
    with pytest.raises(InferenceError, match="original"):
        render(cutout, RenderOptions(background_blur=0.02))


def test_shadow_darkens_a_white_background_below_right_of_the_subject(cutout):
    shadow = Shadow(opacity=0.6, blur=0.01, offset=(0.05, 0.1))  # 10 px right, 20 px down
    plain = np.asarray(opened(render(cutout, RenderOptions(format="jpeg", quality=100))).convert("L"), dtype=np.int16)
    shaded = np.asarray(opened(render(cutout, RenderOptions(format="jpeg", quality=100, shadow=shadow))).convert("L"), dtype=np.int16)
    assert plain[80, 90] > 245 and 255 * 0.4 - 15 < shaded[80, 90] < 255 * 0.4 + 15  # under the moved square
    assert abs(shaded[10, 10] - plain[10, 10]) < 3 and abs(shaded[5, 190] - plain[5, 190]) < 3  # far away: nothing
    assert abs(shaded[40, 70] - plain[40, 70]) < 3  # the subject covers its own shadow


def test_shadow_on_a_transparent_png_is_black_and_translucent(cutout):
    image = opened(render(cutout, RenderOptions(shadow=Shadow(opacity=0.5, blur=0, offset=(0.05, 0.1)))))
    assert image.mode == "RGBA"
    assert image.getpixel((95, 85)) == (0, 0, 0, 128)  # shadow only: black at half opacity
    assert image.getpixel((60, 30)) == (220, 20, 20, 255) and image.getpixel((5, 5))[3] == 0


def test_shadow_with_a_translucent_colour(cutout):
    image = opened(render(cutout, RenderOptions(background=(255, 255, 255), background_opacity=128, shadow=Shadow(opacity=1.0, blur=0, offset=(0.05, 0.1)))))
    r, g, b, a = image.getpixel((95, 85))
    assert (r, g, b) == (0, 0, 0) and a == 255  # a fully opaque shadow over a half-transparent white
    assert image.getpixel((5, 5)) == (255, 255, 255, 128)


@pytest.mark.parametrize("bad", [{"opacity": 1.5}, {"opacity": -0.1}, {"blur": 0.3}, {"offset": (0.5, 0)}, {"offset": (0.1,)}])
def test_bad_shadows_are_refused(bad):
    with pytest.raises(InferenceError):
        Shadow(**bad)


def test_a_background_photo_fills_or_fits(cutout):
    tall = Image.new("RGB", (50, 100), (0, 200, 0))  # half as wide as the 200x100 cut-out is
    filled = opened(render(cutout, RenderOptions(format="png", background_image=tall)))
    fitted = opened(render(cutout, RenderOptions(format="png", background_image=tall, background_fit="fit")))
    assert filled.getpixel((2, 2)) == (0, 200, 0) and filled.getpixel((197, 97)) == (0, 200, 0)  # covered, cropped
    assert fitted.getpixel((2, 2)) == (255, 255, 255) and fitted.getpixel((110, 10)) == (0, 200, 0)  # letterboxed in white
    with pytest.raises(InferenceError, match="fill or to fit"):
        RenderOptions(background_fit="stretch")
