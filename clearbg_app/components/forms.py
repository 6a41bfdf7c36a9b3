"""Form pieces shared by the account pages. Forms post to `/auth/*` routes (real HTML forms), so the
server can set the HttpOnly session cookie."""

from __future__ import annotations

import reflex as rx
from reflex_components_core.el.elements.base import BaseHTML

from clearbg_app.state.base import SessionState


class NativeForm(BaseHTML):
    """A plain `<form>` the browser submits itself (`rx.el.form` always prevents that)."""

    tag = "form"
    action: rx.Var[str]
    method: rx.Var[str]


native_form = NativeForm.create


def message_callout(message: rx.Var, kind: rx.Var, *, id: str) -> rx.Component:
    """A green "info" or red error message, shown only when there is one."""
    return rx.cond(
        message != "",
        rx.callout(
            message,
            icon=rx.cond(kind == "info", "info", "triangle-alert"),
            color_scheme=rx.cond(kind == "info", "green", "red"),
            id=id,
            width="100%",
        ),
    )


def flash_callout() -> rx.Component:
    """The message the last redirect carried, if any."""
    return message_callout(SessionState.flash_message, SessionState.flash_kind, id="flash-message")


def field(label: str, name: str, *, type: str = "text", **props) -> rx.Component:
    return rx.vstack(
        rx.text(label, as_="label", html_for=name, size="2", weight="medium"),
        rx.input(name=name, id=name, type=type, width="100%", size="3", **props),
        spacing="1",
        width="100%",
    )


def checkbox(name: str, *children: rx.Component | str, id: str | None = None, value: str = "on") -> rx.Component:
    """A required checkbox with its label text."""
    return rx.el.label(
        rx.hstack(
            rx.el.input(type="checkbox", name=name, id=id or name, value=value, required=True),
            rx.text(*children, size="2"),
            align="center",
            spacing="2",
        ),
        html_for=id or name,
    )


def post_form(action: str, *children: rx.Component, **props) -> rx.Component:
    """A plain HTML form posting to one of our routes."""
    return native_form(
        rx.vstack(*children, spacing="4", width="100%"),
        action=action,
        method="post",
        width="100%",
        **props,
    )


def submit(label: str, **props) -> rx.Component:
    return rx.button(label, type="submit", size="3", **props)
