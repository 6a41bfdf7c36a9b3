"""The editor in Chromium (issue 16): the compare slider, zoom, the erase/restore brush with undo,
reset and reload, backgrounds, blur and shadow, checked in the files the page downloads; and the
"bike walk": zoom in, erase the boardwalk, white background with a shadow, full-resolution JPG,
charged once. Screenshots at 1366 and 390 px go to test-artifacts/."""

from __future__ import annotations

import json
import statistics

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import expect
from sqlmodel import Session, select

from clearbg_app.db import make_engine
from clearbg_app.models import EntryKind, LedgerEntry, User
from clearbg_app.services import credits
from tests.browser.conftest import ARTIFACTS
from tests.browser.factories import sign_up_confirmed
from tests.conftest import SAMPLES

pytestmark = pytest.mark.browser

HORSE, BIKE = SAMPLES / "images" / "horse.jpg", SAMPLES / "images" / "bike.jpg"
HORSE_FULL, BIKE_FULL = (770, 595), (3000, 2000)
HORSE_BODY = (0.45, 0.5)  # fractions of the image: opaque in the model's cut-out
BOARDWALK = ((515, 1559), (0, 1900))  # bike.jpg: the plank left under the rear wheel, in full-size pixels
WIDTHS = (1366, 390)


def shoot(page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}-{page.viewport_size['width']}.png"), full_page=True)


def drop(page, path) -> None:
    page.goto("/")
    page.get_by_text("Drop a photo here").wait_for()
    page.locator("input[type=file]").first.set_input_files(str(path))
    page.wait_for_function("() => document.querySelector('#result-image')?.naturalWidth > 0", timeout=90_000)
    expect(page.locator(".clearbg-editor-stage")).to_have_attribute("data-pending", "false")


def editor(page):
    return page.locator(".clearbg-editor")


def settled(page, strokes: int) -> None:
    """The editor holds `strokes` strokes and shows the server's preview of them."""
    expect(editor(page)).to_have_attribute("data-strokes", str(strokes))
    expect(page.locator(".clearbg-editor-stage")).to_have_attribute("data-pending", "false", timeout=30_000)


def screen_point(page, point: tuple[float, float], full: tuple[int, int]) -> tuple[float, float]:
    """Where the full-size image pixel `point` is on the screen, at the editor's zoom and pan."""
    box = page.locator(".clearbg-editor-stage").bounding_box()
    zoom = float(editor(page).get_attribute("data-zoom"))
    pan_x, pan_y = (float(value) for value in editor(page).get_attribute("data-pan").split(","))
    scale = box["width"] / full[0]
    return box["x"] + pan_x + zoom * point[0] * scale, box["y"] + pan_y + zoom * point[1] * scale


def stroke(page, start, end, full, steps: int = 12) -> None:
    page.mouse.move(*screen_point(page, start, full))
    page.mouse.down()
    page.mouse.move(*screen_point(page, end, full), steps=steps)
    page.mouse.up()


def download(page, tmp_path, name: str | None = None) -> tuple[Image.Image, str]:
    with page.expect_download(timeout=90_000) as info:
        page.get_by_role("button", name="Download", exact=True).click()
    saved = tmp_path / (name or info.value.suggested_filename)
    info.value.save_as(saved)
    image = Image.open(saved)
    image.load()
    return image, info.value.suggested_filename


def alpha_at(image: Image.Image, fraction: tuple[float, float]) -> int:
    return image.getchannel("A").getpixel((int(image.width * fraction[0]), int(image.height * fraction[1])))


def choose(page, label: str, value: str) -> None:
    page.get_by_label(label, exact=True).select_option(value)


def test_slider_zoom_brush_undo_reset_and_reload(page, tmp_path):
    page.set_viewport_size({"width": 390, "height": 844})
    drop(page, HORSE)
    shoot(page, "editor-horse")
    page.set_viewport_size({"width": 1366, "height": 900})
    shoot(page, "editor-horse")
    slider = page.get_by_role("slider", name="Before and after")
    before_layer = "() => document.querySelector('#original-image').parentElement.parentElement.style.clipPath"
    slider.focus()
    page.keyboard.press("End")
    for _ in range(5):
        page.keyboard.press("ArrowLeft")
    expect(slider).to_have_attribute("aria-valuenow", "90")
    assert page.evaluate(before_layer) == "inset(0px 10% 0px 0px)"
    box = page.locator(".clearbg-editor-stage").bounding_box()
    handle = slider.bounding_box()
    page.mouse.move(handle["x"] + handle["width"] / 2, handle["y"] + handle["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.25, handle["y"] + handle["height"] / 2, steps=5)
    page.mouse.up()
    assert abs(int(slider.get_attribute("aria-valuenow")) - 25) <= 1  # dragging moves the split
    page.keyboard.press("Home")
    expect(slider).to_have_attribute("aria-valuenow", "0")

    page.get_by_role("button", name="Zoom in", exact=True).click()
    expect(editor(page)).to_have_attribute("data-zoom", "1.500")
    content = "() => document.querySelector('#result-image').parentElement.style.transform"
    assert "scale(1.5)" in page.evaluate(content)
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.wheel(0, -200)
    expect(editor(page)).not_to_have_attribute("data-zoom", "1.500")
    assert float(editor(page).get_attribute("data-zoom")) > 1.5
    page.get_by_role("button", name="Zoom out", exact=True).click()
    page.get_by_role("button", name="Fit", exact=True).click()
    expect(editor(page)).to_have_attribute("data-zoom", "1.000")

    body = (HORSE_BODY[0] * HORSE_FULL[0], HORSE_BODY[1] * HORSE_FULL[1])
    left, right = (body[0] - 80, body[1]), (body[0] + 80, body[1])
    page.get_by_label("Brush size").fill("60")
    page.get_by_role("button", name="Erase", exact=True).click()
    stroke(page, left, right, HORSE_FULL)
    settled(page, 1)
    timings = [int(page.locator(".clearbg-editor-stage").get_attribute("data-update-ms"))]
    shoot(page, "editor-erased")
    erased, name = download(page, tmp_path, "erased.png")
    assert name == "horse-no-bg-preview.png" and erased.mode == "RGBA"
    assert alpha_at(erased, HORSE_BODY) == 0

    page.get_by_role("button", name="Restore", exact=True).click()
    page.get_by_label("Brush size").fill("90")
    stroke(page, left, right, HORSE_FULL)
    settled(page, 2)
    timings.append(int(page.locator(".clearbg-editor-stage").get_attribute("data-update-ms")))
    restored, _ = download(page, tmp_path, "restored.png")
    assert alpha_at(restored, HORSE_BODY) == 255

    page.keyboard.press("Control+z")  # undo the restore
    settled(page, 1)
    assert alpha_at(download(page, tmp_path, "undone.png")[0], HORSE_BODY) == 0
    page.keyboard.press("Control+Shift+z")  # redo it
    settled(page, 2)
    page.get_by_role("button", name="Undo", exact=True).click()
    settled(page, 1)

    page.reload()
    page.wait_for_function("() => document.querySelector('#result-image')?.naturalWidth > 0", timeout=60_000)
    settled(page, 1)  # the edit is kept by the server
    assert alpha_at(download(page, tmp_path, "reloaded.png")[0], HORSE_BODY) == 0

    page.get_by_role("button", name="Reset edits", exact=True).click()
    settled(page, 0)
    assert alpha_at(download(page, tmp_path, "reset.png")[0], HORSE_BODY) == 255
    (ARTIFACTS / "editor-stroke-to-preview-ms.json").write_text(json.dumps({"horse_preview_ms": timings}))


def test_colour_blur_and_shadow_backgrounds(page, tmp_path):
    page.set_viewport_size({"width": 1366, "height": 900})
    drop(page, HORSE)
    choose(page, "Background", "colour")
    page.get_by_role("button", name="Colour #81d4fa", exact=True).click()
    choose(page, "Format", "jpg")
    settled(page, 0)
    shoot(page, "editor-colour")
    on_colour, name = download(page, tmp_path)
    assert name == "horse-on-colour-preview.jpg" and on_colour.format == "JPEG"
    corners = [(1, 1), (on_colour.width - 2, 1), (1, on_colour.height - 2), (on_colour.width - 2, on_colour.height - 2)]
    for corner in corners:
        assert max(abs(a - b) for a, b in zip(on_colour.getpixel(corner), (0x81, 0xD4, 0xFA), strict=True)) < 8

    choose(page, "Background", "white")
    plain = np.asarray(download(page, tmp_path, "white.jpg")[0].convert("L"), dtype=np.int16)
    page.get_by_role("switch", name="Shadow").click()
    page.get_by_label("Opacity").fill("80")
    page.get_by_label("Offset").fill("6")
    settled(page, 0)
    shoot(page, "editor-shadow")
    shadowed_image, name = download(page, tmp_path)
    assert name == "horse-on-white-shadow-preview.jpg"
    shadowed = np.asarray(shadowed_image.convert("L"), dtype=np.int16)
    assert ((plain > 245) & (shadowed < 180)).sum() > 1000  # a dark shadow where the background was white
    assert abs(shadowed[2, 2] - plain[2, 2]) < 4  # ...not in the far corner
    page.get_by_role("switch", name="Shadow").click()

    choose(page, "Background", "blur")
    page.get_by_label("Blur", exact=True).fill("80")
    settled(page, 0)
    shoot(page, "editor-blur")
    blurred_image, name = download(page, tmp_path)
    assert name == "horse-on-blur-preview.jpg"
    blurred = np.asarray(blurred_image.convert("L"), dtype=np.float32)[-40:, :40]
    photo = np.asarray(Image.open(HORSE).convert("L").resize(blurred_image.size), dtype=np.float32)[-40:, :40]
    assert abs(blurred.mean() - photo.mean()) < 20 and blurred.std() < photo.std() * 0.6  # the meadow, smoothed


def test_a_bad_background_photo_gets_a_clear_message(page, tmp_path):
    drop(page, HORSE)
    choose(page, "Background", "photo")
    fake = tmp_path / "holiday.jpg"
    fake.write_bytes(b"not a picture at all" * 50)
    page.locator("#background_photo input[type=file]").set_input_files(str(fake))
    expect(page.locator("#edit-error")).to_contain_text("not an image we can read", timeout=30_000)
    green = tmp_path / "green.png"
    Image.new("RGB", (64, 48), (0, 200, 0)).save(green)
    page.locator("#background_photo input[type=file]").set_input_files(str(green))
    expect(page.locator("#edit-error")).to_have_count(0, timeout=30_000)
    settled(page, 0)
    on_photo, name = download(page, tmp_path)
    assert name == "horse-on-photo-preview.png" and on_photo.getpixel((2, 2))[:3] == (0, 200, 0)


def balance(app_data_dir, email: str) -> tuple[int, int]:
    """The account's balance and how many charges it has had."""
    engine = make_engine(f"sqlite:///{app_data_dir / 'clearbg.db'}")
    with Session(engine) as session:
        user = session.exec(select(User).where(User.email == email)).one()
        have = credits.balance(session, user_id=user.id)
        charges = [entry for entry in session.exec(select(LedgerEntry).where(LedgerEntry.user_id == user.id)).all() if entry.amount_units < 0]
    engine.dispose()
    return have, len(charges)


def test_bike_walk_zoom_erase_white_shadow_full_resolution_jpg(page, smtp, app_url, app_data_dir, tmp_path):
    """Done when: drop the bike, zoom in, erase the boardwalk under the wheel, white background with a
    soft shadow, full-resolution JPG; charged once. Screenshots of each step at 1366 and 390 px."""
    email = "rider@example.com"
    sign_up_confirmed(page, smtp, app_url, email)
    engine = make_engine(f"sqlite:///{app_data_dir / 'clearbg.db'}")
    with Session(engine) as session:
        user = session.exec(select(User).where(User.email == email)).one()
        credits.grant(session, user_id=user.id, units=500, kind=EntryKind.PURCHASE, reason="test", reference="editor-walk")
        session.commit()
    engine.dispose()
    page.set_viewport_size({"width": 1366, "height": 900})
    drop(page, BIKE)
    shoot(page, "walk-1-dropped")

    page.get_by_role("button", name="Zoom in", exact=True).click()
    expect(editor(page)).to_have_attribute("data-zoom", "1.500")
    page.get_by_role("slider", name="Before and after").focus()
    page.keyboard.press("Home")
    page.get_by_role("button", name="Move", exact=True).click()
    box = page.locator(".clearbg-editor-stage").bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.5)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + box["height"] * 0.2, steps=6)  # pan to the lower left
    page.mouse.up()
    shoot(page, "walk-2-zoomed")
    page.get_by_role("button", name="Erase", exact=True).click()
    page.get_by_label("Brush size").fill("70")
    timings = []
    for _ in range(3):  # the plank, then two passes over it (undo two, to measure and to check undo)
        stroke(page, *BOARDWALK, BIKE_FULL)
        settled(page, len(timings) + 1)
        timings.append(int(page.locator(".clearbg-editor-stage").get_attribute("data-update-ms")))
    page.get_by_role("button", name="Undo", exact=True).click()
    settled(page, 2)
    page.get_by_role("button", name="Undo", exact=True).click()
    settled(page, 1)
    shoot(page, "walk-3-erased")
    page.get_by_role("button", name="Fit", exact=True).click()

    choose(page, "Background", "white")
    page.get_by_role("switch", name="Shadow").click()
    choose(page, "Format", "jpg")
    choose(page, "Size", "full")
    settled(page, 1)
    shoot(page, "walk-4-white-shadow")
    before, charges_before = balance(app_data_dir, email)
    result, name = download(page, tmp_path)
    after, charges_after = balance(app_data_dir, email)
    assert name == "bike-on-white-shadow.jpg" and result.format == "JPEG" and result.size == BIKE_FULL
    assert charges_after == charges_before + 1 and after < before  # the full resolution, charged
    (x0, y0), (x1, y1) = BOARDWALK
    plank = [(round(x0 + t * (x1 - x0)), round(y0 + t * (y1 - y0))) for t in (0.2, 0.4, 0.6, 0.8)]
    photo = Image.open(BIKE).convert("RGB")
    assert all(photo.getpixel(point)[2] < 190 for point in plank)  # brown wood in the photo (and in the model's cut-out)
    assert all(min(result.getpixel(point)) > 225 for point in plank), [result.getpixel(point) for point in plank]  # erased: white
    assert all(min(result.getpixel(corner)) > 245 for corner in ((2, 2), (2997, 2)))  # white corners
    again, _ = download(page, tmp_path, "again.jpg")
    assert again.size == BIKE_FULL and balance(app_data_dir, email) == (after, charges_after)  # charged once
    shoot(page, "walk-5-downloaded")
    page.set_viewport_size({"width": 390, "height": 844})
    page.get_by_role("button", name="Zoom in", exact=True).click()
    shoot(page, "walk-6-phone")
    (ARTIFACTS / "editor-walk-stroke-to-preview-ms.json").write_text(
        json.dumps({"bike_preview_ms": timings, "median_ms": statistics.median(timings)})
    )


def test_the_brush_works_from_the_keyboard(page, tmp_path):
    """Tab to the image, Erase, Space puts the brush down, the arrow keys draw, Space lifts it: the stroke is
    kept and erases what it crossed; Escape drops a stroke that was not lifted."""
    page.set_viewport_size({"width": 1366, "height": 900})
    drop(page, HORSE)
    assert alpha_at(download(page, tmp_path, "unedited.png")[0], (0.5, 0.5)) == 255  # the horse's middle
    page.get_by_label("Brush size").fill("60")
    page.get_by_role("button", name="Erase", exact=True).click()
    stage = page.get_by_role("application")
    stage.focus()
    page.keyboard.press("Space")  # the brush goes down at the centre of the image
    for key in ("ArrowLeft", "ArrowRight", "ArrowRight", "ArrowLeft"):
        page.keyboard.press(key)
    page.keyboard.press("Space")  # lifted: one stroke
    settled(page, 1)
    assert alpha_at(download(page, tmp_path, "keyboard.png")[0], (0.5, 0.5)) == 0
    page.keyboard.press("Enter")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Escape")  # dropped, not kept
    settled(page, 1)
    slider = page.get_by_role("slider", name="Before and after")
    slider.focus()
    page.keyboard.press("Home")  # the slider's keys stay the slider's
    expect(slider).to_have_attribute("aria-valuenow", "0")
    settled(page, 1)


def test_two_fingers_pinch_to_zoom(page):
    """A pinch (two touch points moving apart, sent as real touch input) zooms in about its centre."""
    page.set_viewport_size({"width": 390, "height": 844})
    drop(page, HORSE)
    stage = page.locator(".clearbg-editor-stage")
    stage.scroll_into_view_if_needed()  # touch input goes to a point in the viewport: nothing scrolls it there
    box = stage.bounding_box()
    cx, cy = box["x"] + box["width"] * 0.72, box["y"] + box["height"] / 2  # beside the slider, which sits in the middle
    on_stage = "([x, y]) => Boolean(document.elementFromPoint(x, y)?.closest('.clearbg-editor-stage'))"
    assert page.evaluate(on_stage, [cx - 20, cy]) and page.evaluate(on_stage, [cx + 60, cy])  # both fingers land on it
    cdp = page.context.new_cdp_session(page)

    def touch(kind: str, spread: float) -> None:
        points = [] if kind == "touchEnd" else [{"x": cx - spread, "y": cy, "id": 1}, {"x": cx + spread, "y": cy, "id": 2}]
        cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": points})

    touch("touchStart", 20)  # 40 px apart, then 120
    for spread in (25, 35, 50, 60):
        touch("touchMove", spread)
    touch("touchEnd", 0)
    expect(editor(page)).not_to_have_attribute("data-zoom", "1.000")
    assert float(editor(page).get_attribute("data-zoom")) > 1.5  # the fingers moved 3x apart (Chromium coalesces some moves)
