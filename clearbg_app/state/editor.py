"""The editor under the result: strokes sent to the images service, the background and effects the
server renders, and the download choices. Holds only the choices and a version number, never pixels
or strokes: the page's URLs (`preview_url`, `download_url`) carry the choices to `/api/images/…/edited`."""

from __future__ import annotations

import asyncio
import uuid
from urllib.parse import urlencode

import reflex as rx

from clearbg_app.db import session_scope
from clearbg_app.services import image_edits, images
from clearbg_app.services.errors import ServiceError
from clearbg_app.settings import get_settings
from clearbg_app.state.credits import BalanceState
from clearbg_app.state.remove import RemoveState, _full_resolution
from clearbg_app.storage import get_blob_store

BACKGROUNDS = ("transparent", "white", "black", "colour", "photo", "blur")
SWATCHES = ("#ffffff", "#000000", "#81d4fa", "#f8bbd0", "#c8e6c9", "#fff59d", "#d7ccc8")
DOWNLOAD_FORMATS = ("png", "webp", "jpg")
PHOTO_UPLOAD_ID = "background_photo"


def _clamped(value, low: int, high: int, default: int) -> int:
    try:
        number = round(float(value))
    except (TypeError, ValueError):
        return default
    return min(high, max(low, number))


def upright_size(full_size: str, preview_size: str) -> tuple[int, int]:
    """The full-size image as the editor shows it (the strokes' coordinates) from the stored size
    ("WxH"), turned when EXIF orientation made the upright preview the other way round."""
    try:
        width, height = (int(part) for part in full_size.split("x"))
        preview_width, preview_height = (int(part) for part in preview_size.split("x"))
    except ValueError:
        return 1, 1
    turned = width != height and (width > height) != (preview_width > preview_height)
    return (height, width) if turned else (width, height)


class EditorState(RemoveState):
    """Choices of the editor for the image on the page (`RemoveState.image_id`)."""

    edit_version: int = 0
    edit_error: str = ""
    background: str = "transparent"
    colour: str = "#81d4fa"
    blur: int = 40
    shadow: bool = False
    shadow_opacity: int = 50
    shadow_blur: int = 20
    shadow_distance: int = 2  # percent of the longer side, down (and half of it to the right)
    photo_for: str = ""  # the image whose background photo is uploaded
    photo_fit: str = "fill"  # fill (cover, cropped) or fit (all of it, letterboxed)
    download_format: str = "png"
    download_size: str = "preview"
    crop: bool = False
    margin: int = 5

    def _render_query(self) -> dict[str, str]:
        query: dict[str, str] = {}
        if self.background in ("white", "black"):
            query["bg"] = {"white": "ffffff", "black": "000000"}[self.background]
        elif self.background == "colour":
            query["bg"] = self.colour.lstrip("#")
        elif self.background == "photo" and self.photo_for == self.image_id:
            query.update(bg="photo", photo_fit=self.photo_fit)
        elif self.background == "blur":
            query.update(bg="blur", blur=str(self.blur))
        if self.shadow:
            offset = self.shadow_distance
            query.update(shadow="1", shadow_opacity=f"{self.shadow_opacity}%", shadow_blur=str(self.shadow_blur),
                         shadow_offset=f"{offset / 2:g}% {offset}%")  # fmt: skip
        return query

    @rx.var
    def preview_url(self) -> str:
        if not self.image_id:
            return ""
        return f"/api/images/{self.image_id}/edited?" + urlencode({**self._render_query(), "v": str(self.edit_version)})

    @rx.var
    def cutout_url(self) -> str:
        return f"/api/images/{self.image_id}/result" if self.image_id else ""

    @rx.var
    def download_url(self) -> str:
        if not self.image_id:
            return ""
        query = {**self._render_query(), "format": self.download_format, "size": self.download_size, "download": "1"}
        if self.crop:
            query.update(crop="1", margin=str(self.margin))
        return f"/api/images/{self.image_id}/edited?" + urlencode({**query, "v": str(self.edit_version)})

    @rx.var
    def full_width(self) -> int:
        return upright_size(self.full_size, self.result_size)[0]

    @rx.var
    def full_height(self) -> int:
        return upright_size(self.full_size, self.result_size)[1]

    @rx.var
    def has_photo(self) -> bool:
        return bool(self.image_id) and self.photo_for == self.image_id

    @rx.var
    def full_needed(self) -> bool:
        """The full-size download needs the full-resolution cut-out made (and charged) first."""
        return self.download_size == "full" and self.full_price != "" and self.full_stage != "done"

    @rx.event
    async def save_strokes(self, strokes: list):
        """The editor's whole stroke list after a stroke, undo, redo or reset: kept by the images service
        (checked there: a bad list changes nothing); the preview is then rendered afresh."""
        image_id, visitor, user = self.image_id, self._visitor_hash(), self._current_user()
        if not image_id:
            return
        try:
            await asyncio.to_thread(_save_strokes, uuid.UUID(image_id), visitor, user.id if user else None, strokes)
        except ServiceError as error:
            self.edit_error = str(error)
            return
        self.edit_error = ""
        self.edit_version += 1

    @rx.event
    def set_background(self, value: str) -> None:
        if value in BACKGROUNDS:
            self.background = value

    @rx.event
    def set_photo_fit(self, value: str) -> None:
        if value in ("fill", "fit"):
            self.photo_fit = value

    @rx.event
    def pick_colour(self, value: str) -> None:
        """A swatch or the picker's `#rrggbb`."""
        text = str(value).strip().lower()
        if len(text) == 7 and text[0] == "#" and all(ch in "0123456789abcdef" for ch in text[1:]):
            self.colour, self.background = text, "colour"

    @rx.event
    def set_blur(self, value: float) -> None:
        self.blur = _clamped(value, 0, 100, 40)

    @rx.event
    def set_shadow(self, value: bool) -> None:
        self.shadow = bool(value)

    @rx.event
    def set_shadow_opacity(self, value: float) -> None:
        self.shadow_opacity = _clamped(value, 0, 100, 50)

    @rx.event
    def set_shadow_blur(self, value: float) -> None:
        self.shadow_blur = _clamped(value, 0, 100, 20)

    @rx.event
    def set_shadow_distance(self, value: float) -> None:
        self.shadow_distance = _clamped(value, 0, 20, 2)

    @rx.event
    def set_download_format(self, value: str) -> None:
        if value in DOWNLOAD_FORMATS:
            self.download_format = value

    @rx.event
    def set_download_size(self, value: str) -> None:
        if value in ("preview", "full"):
            self.download_size = value

    @rx.event
    def set_crop(self, value: bool) -> None:
        self.crop = bool(value)

    @rx.event
    def set_margin(self, value: float) -> None:
        self.margin = _clamped(value, 0, 50, 5)

    @rx.event
    async def upload_photo(self, files: list[rx.UploadFile]):
        """A background photo for this image, checked by the images service (not an image, too large,
        a decompression bomb: a clear message, nothing kept)."""
        if not files or not self.image_id:
            return
        limit = get_settings().max_upload_bytes
        data = files[0].file.read(limit + 1)
        user = self._current_user()
        try:
            await asyncio.to_thread(_set_photo, uuid.UUID(self.image_id), self._visitor_hash(), user.id if user else None, data)
        except ServiceError as error:
            self.edit_error = str(error)
            return
        self.edit_error, self.photo_for, self.background = "", self.image_id, "photo"
        self.edit_version += 1

    @rx.event
    def download(self):
        """The chosen file; at full size, the full-resolution cut-out is made (and charged, once) first."""
        if self.full_needed:
            return EditorState.download_full
        return rx.download(url=self.download_url)

    @rx.event(background=True)
    async def download_full(self):
        async with self:
            user, image_id = self._current_user(), self.image_id
            if user is None:
                return rx.redirect("/login?next=/")
            if not image_id or self.full_stage == "working":
                return
            self.full_stage, self.error = "working", ""
        try:
            await self._when_not_busy(_full_resolution, uuid.UUID(image_id), self._visitor_hash(), user.id)
        except ServiceError as error:
            async with self:
                self.full_stage, self.error = "", str(error)
            return
        async with self:
            self.full_stage = "done"
            url = self.download_url
        return [BalanceState.refresh_balance, rx.download(url=url)]


def _owned(session, image_id: uuid.UUID, visitor: str | None, user_id: uuid.UUID | None):
    return images.owned_image(session, image_id=image_id, visitor_hash=visitor, user_id=user_id)


def _save_strokes(image_id: uuid.UUID, visitor: str | None, user_id: uuid.UUID | None, strokes: list) -> int:
    with session_scope() as session:
        image = _owned(session, image_id, visitor, user_id)
        return image_edits.set_edits(session, store=get_blob_store(), image=image, strokes=strokes)


def _set_photo(image_id: uuid.UUID, visitor: str | None, user_id: uuid.UUID | None, data: bytes) -> None:
    with session_scope() as session:
        image = _owned(session, image_id, visitor, user_id)
        image_edits.set_background_photo(session, store=get_blob_store(), image=image, data=data)

