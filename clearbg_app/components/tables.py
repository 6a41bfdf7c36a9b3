"""Tables of rows from a state list: headings, then one table row per item."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import reflex as rx


def rows_table(
    rows, headings: Iterable[str], row: Callable[[rx.Var], rx.Component], *, empty: str = "Nothing here yet.", **props
) -> rx.Component:
    """`rows` is a state var holding a list; `row(item)` renders one item as an `rx.table.row`; an empty
    list shows one row saying so (`empty`)."""
    headings = tuple(headings)
    return rx.table.root(  # Radix scrolls a wide table inside itself, not the page
        rx.table.header(rx.table.row(*(rx.table.column_header_cell(heading) for heading in headings))),
        rx.table.body(
            rx.foreach(rows, row),
            rx.cond(
                rows.length() == 0,
                rx.table.row(rx.table.cell(rx.text(empty, color_scheme="gray", size="2"), col_span=len(headings)), class_name="empty-row"),
            ),
        ),
        width="100%",
        **props,
    )


def dict_table(rows, columns: tuple[tuple[str, str], ...], **props) -> rx.Component:  # props: `empty`, table props
    """`rows` is a state var holding a list of dicts; each column shows `row[key]` under `heading`."""
    return rows_table(
        rows,
        (heading for heading, _ in columns),
        lambda row: rx.table.row(*(rx.table.cell(row[key]) for _, key in columns)),
        **props,
    )
