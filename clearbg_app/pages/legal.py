"""`/privacy` and `/terms`: the documents in `docs/`, rendered as Markdown (raw HTML is not rendered)."""

from __future__ import annotations

import reflex as rx

from clearbg_app.components.layout import page
from clearbg_app.settings import PROJECT_ROOT


def document(name: str) -> rx.Component:
    text = (PROJECT_ROOT / "docs" / name).read_text(encoding="utf-8")
    return page(rx.box(rx.markdown(text), width="100%", class_name="legal-document"))


def privacy() -> rx.Component:
    return document("privacy-policy.md")


def terms() -> rx.Component:
    return document("terms.md")
