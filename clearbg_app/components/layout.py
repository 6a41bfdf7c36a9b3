"""The frame around every page: header, content, footer."""

from __future__ import annotations

import reflex as rx


def header() -> rx.Component:
    return rx.hstack(
        rx.link(rx.heading("ClearBG", size="6"), href="/", underline="none"),
        rx.spacer(),
        rx.text("Background removal you can host yourself", color_scheme="gray", size="2"),
        align="center",
        width="100%",
        padding_y="1em",
    )


def footer() -> rx.Component:
    return rx.hstack(
        rx.text("ClearBG: uploads and results are deleted automatically after one hour.", size="1", color_scheme="gray"),
        width="100%",
        padding_y="2em",
    )


def page(*children: rx.Component) -> rx.Component:
    """A centered column with the header and footer."""
    return rx.container(
        rx.vstack(header(), *children, footer(), spacing="5", width="100%"),
        size="3",
    )
