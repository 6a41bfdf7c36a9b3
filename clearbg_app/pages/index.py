"""`/`: drop a photo, see the cut-out over a checkerboard, download the PNG."""

from __future__ import annotations

import reflex as rx

from clearbg_app.components.layout import page
from clearbg_app.inference.decode import SUPPORTED
from clearbg_app.settings import get_settings
from clearbg_app.state.base import SessionState
from clearbg_app.state.remove import UPLOAD_ID, RemoveState

ACCEPT = {
    "image/jpeg": [".jpg", ".jpeg"],
    "image/png": [".png"],
    "image/webp": [".webp"],
    "image/gif": [".gif"],
    "image/bmp": [".bmp"],
    "image/tiff": [".tif", ".tiff"],
    "image/heic": [".heic", ".heif"],
    "image/avif": [".avif"],
}

CHECKERBOARD = {
    "background_color": "white",
    "background_image": (
        "linear-gradient(45deg, #d4d4d8 25%, transparent 25%), linear-gradient(-45deg, #d4d4d8 25%, transparent 25%),"
        " linear-gradient(45deg, transparent 75%, #d4d4d8 75%), linear-gradient(-45deg, transparent 75%, #d4d4d8 75%)"
    ),
    "background_size": "20px 20px",
    "background_position": "0 0, 0 10px, 10px -10px, -10px 0px",
}


def rejection_codes(rejections: rx.Var) -> rx.Var:
    """Only the error codes of refused files: the rejections hold the File objects themselves,
    which must not travel over the websocket."""
    return rx.Var(f"{rejections}.flatMap((rejection) => rejection.errors.map((error) => error.code))").to(list[str])


def drop_zone() -> rx.Component:
    return rx.upload(
        rx.vstack(
            rx.icon("image-up", size=40),
            rx.text("Drop a photo here, or click to choose one", weight="medium"),
            rx.text(SUPPORTED, size="2", color_scheme="gray"),
            align="center",
            spacing="2",
        ),
        id=UPLOAD_ID,
        accept=ACCEPT,
        multiple=False,
        max_files=1,
        max_size=get_settings().max_upload_bytes,
        on_drop_rejected=lambda rejections: RemoveState.drop_rejected(rejection_codes(rejections)),
        on_drop=RemoveState.handle_upload(
            rx.upload_files(upload_id=UPLOAD_ID, on_upload_progress=RemoveState.upload_progress)
        ),
        border="2px dashed var(--gray-7)",
        border_radius="12px",
        padding="3em",
        width="100%",
        cursor="pointer",
    )


def progress() -> rx.Component:
    return rx.hstack(
        rx.spinner(size="3"),
        rx.text(
            rx.cond(
                RemoveState.stage == "uploading",
                f"Uploading… {RemoveState.uploaded_percent}%",
                "Removing the background…",
            ),
            id="progress-text",
        ),
        align="center",
        id="progress",
    )


def panel(title: str, image: rx.Component) -> rx.Component:
    return rx.card(
        rx.vstack(rx.text(title, weight="bold"), image, spacing="2"),
        width="100%",
    )


def full_resolution() -> rx.Component:
    """The full-size cut-out for a price shown before the click; signed-in users only."""
    label = rx.cond(
        RemoveState.full_stage == "working",
        "Making the full-size cut-out…",
        "Full resolution " + RemoveState.full_size + " · " + RemoveState.full_price + " credit",
    )
    return rx.cond(
        RemoveState.full_price != "",
        rx.cond(
            SessionState.signed_in,
            rx.cond(
                RemoveState.full_stage == "done",
                rx.button(
                    rx.icon("download"),
                    "Download full resolution",
                    size="3",
                    id="full-download-button",
                    on_click=rx.download(url=RemoveState.full_download_url),
                ),
                rx.button(
                    label,
                    size="3",
                    variant="outline",
                    id="full-button",
                    loading=RemoveState.full_stage == "working",
                    on_click=RemoveState.get_full_resolution,
                ),
            ),
            rx.link(
                "Sign in for full resolution (" + RemoveState.full_price + " credit)",
                href="/login?next=/",
                size="2",
                id="full-sign-in",
            ),
        ),
    )


def results() -> rx.Component:
    return rx.vstack(
        rx.grid(
            panel("Original", rx.image(src=RemoveState.original_url, alt="Original", width="100%", id="original-image")),
            panel(
                "Background removed",
                rx.box(
                    rx.image(src=RemoveState.result_url, alt="Cut-out", width="100%", id="result-image"),
                    style=CHECKERBOARD,
                    width="100%",
                ),
            ),
            columns="2",
            spacing="4",
            width="100%",
        ),
        rx.hstack(
            rx.button(
                rx.icon("download"),
                rx.cond(RemoveState.full_price != "", "Download preview", "Download PNG"),
                size="3",
                white_space="nowrap",
                id="download-button",
                on_click=rx.download(url=RemoveState.download_url),
            ),
            full_resolution(),
            rx.button("Remove another background", variant="soft", size="3", on_click=RemoveState.reset_page),
            rx.text(
                "Free preview: ", RemoveState.result_size, " px, made in ", RemoveState.seconds, " s.",
                size="2",
                color_scheme="gray",
            ),
            align="center",
            spacing="3",
        ),
        width="100%",
        spacing="4",
    )


def index() -> rx.Component:
    return page(
        rx.heading("Remove the background of any photo", size="8"),
        rx.text("Drop an image: ClearBG finds the subject and gives you a transparent PNG in seconds."),
        drop_zone(),
        rx.cond(
            RemoveState.error != "",
            rx.callout(RemoveState.error, icon="triangle-alert", color_scheme="red", id="error-message", width="100%"),
        ),
        rx.cond((RemoveState.stage == "uploading") | (RemoveState.stage == "working"), progress()),
        rx.cond(RemoveState.stage == "done", results()),
    )
