"""`/admin`: accounts overview (the admin issue grows this into the full dashboard)."""

from __future__ import annotations

import reflex as rx

from clearbg_app.components.layout import page
from clearbg_app.components.tables import dict_table
from clearbg_app.state.admin import AdminState


def admin() -> rx.Component:
    return page(
        rx.cond(
            AdminState.forbidden,
            rx.callout("403: this area is for administrators only.", color_scheme="red", id="forbidden"),
            rx.vstack(
                rx.heading("Admin: accounts", size="7"),
                dict_table(
                    AdminState.users,
                    (("Email", "email"), ("Name", "name"), ("Role", "role"), ("Confirmed", "verified"), ("Created", "created")),
                    id="admin-users",
                ),
                width="100%",
            ),
        )
    )
