"""`/docs/api`: how to call the API, with curl and Python examples (the reference tables live beside the
routes in `clearbg_app.api.openapi`, which also serves them as `/api/docs` and `/api/openapi.json`)."""

from __future__ import annotations

import reflex as rx

from clearbg_app.api.openapi import (
    BATCH_CURL_EXAMPLE,
    BATCH_PYTHON_EXAMPLE,
    CURL_EXAMPLE,
    ERRORS,
    PARAMETERS,
    PYTHON_EXAMPLE,
    WEBHOOK_VERIFY_EXAMPLE,
    batch_notes,
)
from clearbg_app.components.layout import page
from clearbg_app.services import credits
from clearbg_app.settings import get_settings


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
        rx.code_block(CURL_EXAMPLE.format(base=base), language="bash"),
        rx.heading("Python", size="4"),
        rx.code_block(PYTHON_EXAMPLE.format(base=base), language="python"),
        rx.heading("POST /api/v1.0/removebg parameters", size="4"),
        _table(("Parameter", "Values", "Meaning"), parameters),
        rx.heading("Batch jobs", size="4", id="batches"),
        *(rx.text(note) for note in batch_notes()),
        rx.code_block(BATCH_CURL_EXAMPLE.format(base=base), language="bash"),
        rx.code_block(BATCH_PYTHON_EXAMPLE.format(base=base), language="python"),
        rx.heading("Verifying a batch webhook", size="4"),
        rx.code_block(WEBHOOK_VERIFY_EXAMPLE, language="python"),
        rx.heading("Errors", size="4"),
        _table(("Status", "Codes", "When"), [(str(status), codes, text) for status, codes, text in ERRORS]),
        rx.text(
            "Also: ", rx.link("the reference as plain HTML", href="/api/docs"), " and ",
            rx.link("the OpenAPI document", href="/api/openapi.json"), ".",
        ),  # fmt: skip
    )
