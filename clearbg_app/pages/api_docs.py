"""`/docs/api`: how to call the API, with curl and Python examples (the reference tables live beside the
routes in `clearbg_app.api.v1.openapi`, which also serves them as `/api/docs` and `/api/openapi.json`)."""

from __future__ import annotations

import reflex as rx

from clearbg_app.api.v1.openapi import (
    BATCH_CURL_EXAMPLE,
    BATCH_PYTHON_EXAMPLE,
    CURL_EXAMPLE,
    ERRORS,
    EXAMPLE_RESPONSES,
    PARAMETERS,
    PYTHON_EXAMPLE,
    WEBHOOK_VERIFY_EXAMPLE,
    batch_notes,
)
from clearbg_app.components.layout import page
from clearbg_app.pages.route import route
from clearbg_app.services import credits
from clearbg_app.settings import get_settings


def code(text: str, language: str) -> rx.Component:
    """A code block that wraps inside the text column, with a copy button."""
    return rx.code_block(text, language=language, can_copy=True, wrap_long_lines=True, width="100%")


def _table(headings: tuple[str, ...], rows: list[tuple[str, ...]]) -> rx.Component:
    return rx.table.root(
        rx.table.header(rx.table.row(*(rx.table.column_header_cell(h) for h in headings))),
        rx.table.body(*(rx.table.row(*(rx.table.cell(cell) for cell in row)) for row in rows)),
        width="100%",
    )


def allowance_note() -> rx.Component:
    """The free allowance, so a first call's 402 is no surprise."""
    monthly = credits.format_credits(credits.to_units(get_settings().free_monthly_credits))
    if monthly == "0":
        return rx.text("There is no free allowance on this server: buy credits on the pricing page first.", id="docs-allowance")
    return rx.text(
        f"Every confirmed account gets {monthly} free credits a month, granted the moment you confirm your email "
        "address; what is left lapses at the end of the month, when the next arrive. ",
        rx.link("Your credits", href="/credits"), " shows your balance and when the allowance lapses.",
        id="docs-allowance",
    )


@route("/docs/api", "API · ClearBG")
def api_docs() -> rx.Component:
    base = get_settings().public_url.rstrip("/")
    parameters = [(name, ", ".join(schema.get("enum", [])) or schema["type"], text) for name, schema, text in PARAMETERS]
    return page(
        rx.heading("ClearBG API", size="7"),
        rx.text(
            "A remove.bg-compatible HTTP API: point a remove.bg client at ", rx.code(f"{base}/api"),
            " and send your key in the X-Api-Key header (create keys on your account page). "
            "A preview costs 0.25 credit, full resolution 1 credit; errors are never charged.",
        ),  # fmt: skip
        allowance_note(),
        rx.heading("curl", size="4"),
        code(CURL_EXAMPLE.format(base=base), "bash"),
        rx.heading("Python", size="4"),
        code(PYTHON_EXAMPLE.format(base=base), "python"),
        rx.heading("Example responses", size="4"),
        code(EXAMPLE_RESPONSES["removebg"], "http"),
        code(EXAMPLE_RESPONSES["removebg_error"], "http"),
        rx.heading("POST /api/v1.0/removebg parameters", size="4"),
        _table(("Parameter", "Values", "Meaning"), parameters),
        rx.heading("GET /api/v1.0/account", size="4"),
        rx.text("Your credits and the free API calls left."),
        code(f"curl -H 'X-Api-Key: YOUR_KEY' --fail-with-body {base}/api/v1.0/account", "bash"),
        code(EXAMPLE_RESPONSES["account"], "http"),
        rx.heading("Batch jobs", size="4", id="batches"),
        *(rx.text(note) for note in batch_notes()),
        code(BATCH_CURL_EXAMPLE.format(base=base), "bash"),
        code(BATCH_PYTHON_EXAMPLE.format(base=base), "python"),
        code(EXAMPLE_RESPONSES["batch"], "http"),
        rx.heading("Verifying a batch webhook", size="4"),
        code(WEBHOOK_VERIFY_EXAMPLE, "python"),
        rx.heading("Errors", size="4"),
        _table(("Status", "Codes", "When"), [(str(status), codes, text) for status, codes, text in ERRORS]),
        rx.text(
            "Also: ", rx.link("the reference as plain HTML", href="/api/docs"), " and ",
            rx.link("the OpenAPI document", href="/api/openapi.json"), ".",
        ),  # fmt: skip
    )
