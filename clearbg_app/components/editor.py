"""The result view as an editor: the local React component (`editor.jsx`: compare slider, zoom/pan,
erase/restore brush, undo/redo) wrapped for Reflex, with the background, effect and download
controls beside it, all rendered on the server through `render()`."""

from __future__ import annotations

import reflex as rx

from clearbg_app.state.editor import PHOTO_UPLOAD_ID, SWATCHES, EditorState

EDITOR_CSS = """
.clearbg-editor{display:flex;flex-direction:column;gap:8px;width:100%}
.clearbg-editor-tools{display:flex;flex-wrap:wrap;gap:6px;align-items:center}
.clearbg-editor-button{font:inherit;font-size:14px;min-height:32px;min-width:32px;padding:0 10px;border-radius:8px;
  border:1px solid var(--gray-7);background:var(--color-panel-solid);color:var(--gray-12);cursor:pointer}
.clearbg-editor-button[data-active=true]{background:var(--accent-9);border-color:var(--accent-9);color:white}
.clearbg-editor-button:disabled{opacity:.45;cursor:default}
.clearbg-editor-button:focus-visible,.clearbg-editor-split:focus-visible{outline:2px solid var(--accent-9);outline-offset:2px}
.clearbg-editor-label{display:inline-flex;gap:6px;align-items:center;font-size:14px;color:var(--gray-11)}
.clearbg-editor-stage{border-radius:12px;border:1px solid var(--gray-6)}
"""


class Editor(rx.Component):
    """`Editor` from the local module `editor.jsx`."""

    library = "$/public" + rx.asset("editor.jsx", shared=True)
    tag = "Editor"

    image_id: rx.Var[str]
    original_url: rx.Var[str]
    cutout_url: rx.Var[str]
    preview_url: rx.Var[str]
    full_width: rx.Var[int]
    full_height: rx.Var[int]
    backdrop_colour: rx.Var[str]
    on_strokes_change: rx.EventHandler[lambda strokes: [strokes]]


def _labelled(label: str, control: rx.Component) -> rx.Component:
    return rx.el.label(rx.text(label, size="2", color_scheme="gray"), control, display="flex", gap="8px", align_items="center")


def _range(label: str, value, handler, low: int, high: int, id: str) -> rx.Component:
    return _labelled(
        label,
        rx.el.input(type="range", min=low, max=high, value=value, on_change=handler, aria_label=label, id=id, width="9em"),
    )


def _select(label: str, options: list[tuple[str, str]], value, handler, id: str) -> rx.Component:
    return _labelled(
        label,
        rx.el.select(
            *[rx.el.option(text, value=key) for key, text in options],
            value=value, on_change=handler, aria_label=label, id=id,
            style={"font": "inherit", "padding": "4px 8px", "border_radius": "8px", "border": "1px solid var(--gray-7)"},
        ),
    )


def background_controls() -> rx.Component:
    """Transparent, white, black, any colour (swatches and a picker), an uploaded photo, the blurred
    original; and the soft shadow."""
    return rx.vstack(
        rx.hstack(
            _select(
                "Background",
                [("transparent", "Transparent"), ("white", "White"), ("black", "Black"), ("colour", "Colour"),
                 ("photo", "Photo"), ("blur", "Blurred original")],
                EditorState.background, EditorState.set_background, "background-select",
            ),
            rx.hstack(
                *[
                    rx.el.button(
                        type="button", aria_label=f"Colour {colour}", title=colour, on_click=EditorState.pick_colour(colour),
                        style={"width": "24px", "height": "24px", "border_radius": "50%", "border": "1px solid var(--gray-8)",
                               "background": colour, "cursor": "pointer"},
                    )
                    for colour in SWATCHES
                ],
                rx.el.input(type="color", value=EditorState.colour, on_change=EditorState.pick_colour, aria_label="Background colour",
                            id="colour-picker", style={"width": "32px", "height": "28px", "border": "none", "padding": "0"}),
                spacing="1",
                align="center",
            ),
            wrap="wrap",
            align="center",
            spacing="4",
        ),
        rx.cond(
            EditorState.background == "photo",
            _select("Photo fit", [("fill", "Fill"), ("fit", "Fit")], EditorState.photo_fit, EditorState.set_photo_fit, "photo-fit"),
        ),
        rx.cond(
            EditorState.background == "photo",
            rx.upload(
                rx.text(rx.cond(EditorState.has_photo, "Background photo set; drop another to replace it", "Drop a background photo here"),
                        size="2"),
                id=PHOTO_UPLOAD_ID,
                multiple=False,
                max_files=1,
                on_drop=EditorState.upload_photo(rx.upload_files(upload_id=PHOTO_UPLOAD_ID)),
                border="1px dashed var(--gray-7)",
                border_radius="8px",
                padding="0.75em",
                cursor="pointer",
            ),
        ),
        rx.cond(EditorState.background == "blur", _range("Blur", EditorState.blur, EditorState.set_blur, 0, 100, "blur-range")),
        rx.hstack(
            _labelled("Shadow", rx.switch(checked=EditorState.shadow, on_change=EditorState.set_shadow, aria_label="Shadow", id="shadow-switch")),
            rx.cond(
                EditorState.shadow,
                rx.hstack(
                    _range("Opacity", EditorState.shadow_opacity, EditorState.set_shadow_opacity, 0, 100, "shadow-opacity"),
                    _range("Softness", EditorState.shadow_blur, EditorState.set_shadow_blur, 0, 100, "shadow-blur"),
                    _range("Offset", EditorState.shadow_distance, EditorState.set_shadow_distance, 0, 20, "shadow-offset"),
                    wrap="wrap",
                    spacing="4",
                ),
            ),
            wrap="wrap",
            align="center",
            spacing="4",
        ),
        spacing="3",
        width="100%",
    )


def download_controls(full_available) -> rx.Component:
    """Format, size, crop to the subject with a margin, and the download; the file name says what it is."""
    return rx.hstack(
        _select("Format", [("png", "PNG"), ("webp", "WebP"), ("jpg", "JPG")], EditorState.download_format,
                EditorState.set_download_format, "download-format"),
        rx.cond(
            full_available,
            _select("Size", [("preview", "Preview"), ("full", "Full resolution")], EditorState.download_size,
                    EditorState.set_download_size, "download-size"),
        ),
        _labelled("Crop to subject", rx.checkbox(checked=EditorState.crop, on_change=EditorState.set_crop, aria_label="Crop to subject",
                                                 id="crop-checkbox")),
        rx.cond(EditorState.crop, _range("Margin", EditorState.margin, EditorState.set_margin, 0, 50, "crop-margin")),
        rx.button(
            rx.icon("download"),
            "Download",
            size="3",
            white_space="nowrap",
            id="download-button",
            aria_label="Download",
            loading=EditorState.full_stage == "working",
            on_click=EditorState.download,
        ),
        wrap="wrap",
        align="center",
        spacing="4",
        class_name="action-row",  # phones: full-width controls (assets/clearbg.css)
        width="100%",
    )


def editor(full_available) -> rx.Component:
    return rx.vstack(
        rx.el.style(EDITOR_CSS),
        Editor.create(
            image_id=EditorState.image_id,
            original_url=EditorState.original_url,
            cutout_url=EditorState.cutout_url,
            preview_url=EditorState.preview_url,
            full_width=EditorState.full_width,
            full_height=EditorState.full_height,
            backdrop_colour=EditorState.colour,
            on_strokes_change=EditorState.save_strokes,
            key=EditorState.image_id,
        ),
        rx.cond(
            EditorState.edit_error != "",
            rx.callout(EditorState.edit_error, icon="triangle-alert", color_scheme="red", id="edit-error", width="100%"),
        ),
        download_controls(full_available),
        background_controls(),
        width="100%",
        spacing="3",
        id="editor",
    )
