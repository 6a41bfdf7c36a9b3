"""`/admin`: accounts overview (the admin issue grows this into the full dashboard)."""

from __future__ import annotations

import reflex as rx

from clearbg_app.components.layout import page
from clearbg_app.state.admin import AdminState


def admin() -> rx.Component:
    return page(
        rx.cond(
            AdminState.forbidden,
            rx.callout("403: this area is for administrators only.", color_scheme="red", id="forbidden"),
            rx.vstack(
                rx.heading("Admin: accounts", size="7"),
                rx.table.root(
                    rx.table.header(
                        rx.table.row(
                            *(rx.table.column_header_cell(h) for h in ("Email", "Name", "Role", "Confirmed", "Created"))
                        )
                    ),
                    rx.table.body(
                        rx.foreach(
                            AdminState.users,
                            lambda user: rx.table.row(
                                *(rx.table.cell(user[key]) for key in ("email", "name", "role", "verified", "created"))
                            ),
                        )
                    ),
                    width="100%",
                    id="admin-users",
                ),
                width="100%",
            ),
        )
    )
