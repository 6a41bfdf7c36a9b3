"""A table of rows from a state list of dicts: one column per (heading, key)."""

from __future__ import annotations

import reflex as rx


def dict_table(rows, columns: tuple[tuple[str, str], ...], **props) -> rx.Component:
    """`rows` is a state var holding a list of dicts; each column shows `row[key]` under `heading`."""
    return rx.table.root(
        rx.table.header(rx.table.row(*(rx.table.column_header_cell(heading) for heading, _ in columns))),
        rx.table.body(rx.foreach(rows, lambda row: rx.table.row(*(rx.table.cell(row[key]) for _, key in columns)))),
        width="100%",
        **props,
    )
